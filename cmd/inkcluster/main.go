// Command inkcluster is `make cluster`: a 3-node NATS JetStream cluster and
// two each of command-api, query-api and projector on loopback, with stream
// and bucket at 3 replicas, supervised until Ctrl-C (see internal/cluster).
// -h lists its flags; each also reads INKSTREAM_CLUSTER_<FLAG>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/inkstream/inkstream/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cluster.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, cluster.ErrUsage):
		fmt.Fprintln(os.Stderr, "inkcluster:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "inkcluster:", err)
		os.Exit(1)
	}
}
