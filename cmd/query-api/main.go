// Command query-api runs inkstream's query-api role against a NATS JetStream server or
// cluster. -h lists its flags; each also reads INKSTREAM_<FLAG>.
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "query-api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	return app.RunRole(ctx, "query-api", args, getenv, stderr, config.ParseQueryAPI, app.StartQueryAPI)
}
