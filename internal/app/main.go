package app

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/inkstream/inkstream/internal/obs"
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
	log := cfg.Logger(stderr)
	stopTracing, err := Tracing(ctx, name, getenv, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	r, err := start(ctx, cfg, log)
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

// Tracing turns tracing on for the process service when the standard
// OTEL_EXPORTER_OTLP_* variables (read with getenv) name a collector, and
// says so in the log. stop flushes the spans not yet sent; it is never nil.
func Tracing(ctx context.Context, service string, getenv func(string) string, log *slog.Logger) (stop func(), err error) {
	shutdown, err := obs.SetupTracing(ctx, service, getenv)
	if err != nil {
		return func() {}, err
	}
	if obs.Tracing() {
		log.Info("tracing: spans go to an OTLP collector", "service", service)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("tracing: flushing spans", "err", err)
		}
	}, nil
}
