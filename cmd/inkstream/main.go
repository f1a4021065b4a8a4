// Command inkstream is the development all-in-one: an embedded NATS
// JetStream server (file store in ./data, clients on 127.0.0.1:4222) with the
// command API, the query API and a projector in one process. `make run`
// starts it. Its subcommands are for operators: provision, rebuild and
// verify work on any inkstream NATS server or cluster as its admin user;
// creds makes NATS credentials for a deployment; token prints a
// development bearer token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

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
  token       print a development bearer token signed with the all-in-one's key
Without one, inkstream runs the all-in-one.
`

func main() {
	app.Main("inkstream", func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
		return runIO(ctx, args, getenv, os.Stdin, os.Stdout, stderr)
	})
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
		case "token":
			return app.Token(ctx, args[1:], getenv, stdout, stderr)
		}
		return fmt.Errorf("%w: unknown subcommand %q (inkstream -h lists them)", config.ErrUsage, args[0])
	}
	cfg, err := config.ParseAllInOne("inkstream", args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) && !errors.Is(err, config.ErrVersion) {
		fmt.Fprint(stderr, subcommands)
	}
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	stopTracing, err := app.Tracing(ctx, "inkstream", getenv, log)
	if err != nil {
		return err
	}
	defer stopTracing()
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
