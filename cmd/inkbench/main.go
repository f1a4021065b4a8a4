// Command inkbench is inkstream's benchmark (`make bench`): it starts
// nats-server and the services from -bin as separate processes on loopback,
// loads them next to raw Fiber and raw JetStream baselines, and writes the
// figures against its performance targets to bench/runs/<UTC time>.md and .json
// (-out, -name). -h lists its flags; -short runs in about a minute.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/inkstream/inkstream/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "inkbench:", err)
		stop()
		os.Exit(1)
	}
}
