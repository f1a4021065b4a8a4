// Command inkbench is inkstream's benchmark (`make bench`): it starts
// nats-server (one, or a 3-node cluster with -only cluster) and the
// services from -bin as separate processes on loopback, loads them next to
// raw Fiber and raw JetStream baselines, runs `inkstream rebuild`, fills a
// bucket with a million articles for the query API's memory, and writes
// every figure against DESIGN.md's performance targets to
// bench/runs/<UTC time>.md and .json (-out, -name; -publish: bench/results*).
// -h lists its flags; -only picks the parts; -short runs the loads and the
// replay in under two minutes.
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
