// Command inkstream is the development all-in-one: an embedded NATS
// JetStream server (file store in ./data, clients on 127.0.0.1:4222) with the
// command API, the query API and a projector in one process. `make run`
// starts it. The subcommands rebuild and verify maintain the read model.
package main

import (
	"context"
	"io"
	"os"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/config"
)

func main() {
	app.Main("inkstream", func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
		return run(ctx, args, getenv, os.Stdout, stderr)
	})
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "rebuild":
			return app.Rebuild(ctx, args[1:], getenv, stdout, stderr)
		case "verify":
			return app.Verify(ctx, args[1:], getenv, stdout, stderr)
		case "token":
			return app.Token(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	cfg, err := config.ParseAllInOne("inkstream", args, getenv, stderr)
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
	return a.Stop()
}
