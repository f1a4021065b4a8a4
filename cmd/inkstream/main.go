// Command inkstream is the development all-in-one: an embedded NATS
// JetStream server (file store in ./data, clients on 127.0.0.1:4222) with the
// command API, the query API and a projector in one process. `make run`
// starts it. Its subcommands are for operators: provision, rebuild and
// verify work on any inkstream NATS server or cluster as its admin user;
// creds makes NATS credentials for a deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/config"
)

// subcommands is the list -h prints after the all-in-one's flags.
const subcommands = `
Subcommands (inkstream <subcommand> -h lists each one's flags):
  provision   create or update stream, bucket and consumer (admin; never lowers replicas)
  rebuild     rebuild the read model from the stream (admin; asks on a terminal unless -yes)
  verify      compare the read model with the stream: exit 0 consistent, 1 differences, 2 could not run
  creds       make the NATS users' credentials for a deployment (nkeys, the server's accounts, CLI contexts)
Without one, inkstream runs the all-in-one.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal stops cleanly; a second one, while that takes its
	// time, kills at once.
	go func() { <-ctx.Done(); stop() }()
	err := runIO(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "inkstream:", err)
	}
	os.Exit(exitCode(os.Args[1:], err))
}

// exitCode is the exit status of a run of args that returned err: 0, 2 for
// a usage error (and for verify, any failure but differences), 1 else.
func exitCode(args []string, err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, config.ErrUsage):
		return 2
	case len(args) > 0 && args[0] == "verify" && !errors.Is(err, app.ErrDifferences):
		return 2
	}
	return 1
}

// run is runIO with nothing to read: no admin command asks.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, getenv, nil, stdout, stderr)
}

func runIO(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		switch args[0] {
		case "provision", "rebuild", "verify":
			return app.Admin(ctx, args[0], args[1:], getenv, app.Stdio{In: stdin, Out: stdout, Err: stderr})
		case "creds":
			return app.Creds(args[1:], getenv, stdout, stderr)
		}
		return fmt.Errorf("%w: unknown subcommand %q (inkstream -h lists them)", config.ErrUsage, args[0])
	}
	cfg, err := config.ParseAllInOne("inkstream", args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, subcommands)
	}
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	a, err := app.StartAllInOne(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped")
			return nil // stopped by a signal while starting: a clean stop
		}
		return err
	}
	log.Info("inkstream is running",
		"command_api", "http://"+a.CommandAPI.Addr, "query_api", "http://"+a.QueryAPI.Addr,
		"projector", "http://"+a.Projector.Addr, "nats", a.NATSURL)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-a.Done():
	}
	if err := a.Stop(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
