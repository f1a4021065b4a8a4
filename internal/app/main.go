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
// stop, as is one while running.
func RunRole[C Config](ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	parse func(string, []string, func(string) string, io.Writer) (C, error),
	start func(context.Context, C, *slog.Logger) (*Running, error),
) error {
	cfg, err := parse(name, args, getenv, stderr)
	if err != nil {
		return err
	}
	r, err := start(ctx, cfg, cfg.Logger(stderr))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	select {
	case <-ctx.Done():
	case <-r.Done():
	}
	return r.Stop()
}
