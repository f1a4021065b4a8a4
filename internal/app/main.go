package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/obs"
)

// Main is the body of a command's main(): it calls run with the process's
// arguments (without the program name), its environment and its standard
// error, and a context that SIGINT and SIGTERM cancel. An error other than
// flag.ErrHelp (-h) is printed as "name: error" and the process exits 1.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// RunCommandAPI is cmd/command-api: the command API role until ctx ends.
func RunCommandAPI(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return RunRole(ctx, "command-api", args, getenv, stderr, config.ParseCommandAPI, StartCommandAPI)
}

// RunQueryAPI is cmd/query-api: the query API role until ctx ends.
func RunQueryAPI(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return RunRole(ctx, "query-api", args, getenv, stderr, config.ParseQueryAPI, StartQueryAPI)
}

// RunProjector is cmd/projector: a projector until ctx ends.
func RunProjector(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return RunRole(ctx, "projector", args, getenv, stderr, config.ParseProjector, StartProjector)
}

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
