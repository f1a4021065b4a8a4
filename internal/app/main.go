package app

import (
	"context"
	"io"
	"log/slog"
)

// Config is what every role's configuration can do.
type Config interface {
	Logger(w io.Writer) *slog.Logger
}

// RunRole is the body of a role's main: parse the configuration from args
// and the environment, start the role, and run it until ctx ends (a
// signal) or the role stops on its own. A signal during start-up is a clean
// stop, as is one while running; the last line it logs is "stopped".
func RunRole[C Config](ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	parse func(string, []string, func(string) string, io.Writer) (C, error),
	start func(context.Context, C, *slog.Logger) (*Running, error),
) error {
	cfg, err := parse(name, args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	r, err := start(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped")
			return nil
		}
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-r.Done():
	}
	if err := r.Stop(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
