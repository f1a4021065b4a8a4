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
// error, and a context that the first SIGINT or SIGTERM cancels (a second
// one, while the command stops, kills it at once). An error other than
// flag.ErrHelp (-h) is printed as "name: error"; the process exits with
// ExitStatus.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, name+":", err)
	}
	os.Exit(ExitStatus(err))
}

// ExitStatus is the exit status of a command that returned err: 0 for
// none and for -h, 2 for a usage error (config.ErrUsage), the status an
// error carries (verify that could not run: 2), else 1.
func ExitStatus(err error) int {
	var s statusError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, config.ErrUsage):
		return 2
	case errors.As(err, &s):
		return s.status
	}
	return 1
}

// statusError is an error that ends a command with its own exit status.
type statusError struct {
	status int
	err    error
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

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
	stopTracing, err := Tracing(ctx, name, getenv, log)
	if err != nil {
		return err
	}
	defer stopTracing()
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
