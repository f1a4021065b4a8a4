package app

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/projector"
)

func adminConnect(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer) (config.Projector, *natsx.Conn, natsx.Resources, error) {
	cfg, err := config.ParseAdmin("inkstream "+name, args, getenv, stderr)
	if err != nil {
		return cfg, nil, natsx.Resources{}, err
	}
	conn, err := natsx.Connect(ctx, cfg.NATS, cfg.Logger(stderr))
	if err != nil {
		return cfg, nil, natsx.Resources{}, err
	}
	res, err := natsx.Provision(ctx, conn.JS, cfg.NATS)
	if err != nil {
		conn.NC.Close()
		return cfg, nil, natsx.Resources{}, err
	}
	return cfg, conn, res, nil
}

// Rebuild rebuilds the read model from the stream from scratch: it purges
// the bucket and resets the projector consumer, then projects in this
// process too (running projectors share the work) and reports progress on
// stdout until the read model has caught up with the stream as it was when
// the rebuild began. The query API keeps serving meanwhile.
func Rebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, conn, res, err := adminConnect(ctx, "rebuild", args, getenv, stderr)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	log := cfg.Logger(stderr)
	target, err := projector.Reset(ctx, conn.JS, res.KV, res.Stream)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintf(stdout, "rebuild: bucket purged, consumer reset; folding %d stream sequences\n", target)
	pctx, stop := context.WithCancel(ctx)
	p := projector.New(conn.JS, res.KV, natsx.NewEventStore(conn.JS, res.Stream),
		projector.Options{Batch: cfg.Batch, CacheSize: cfg.CacheSize, Provision: true}, prometheus.NewRegistry(), log)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Run(pctx) }()
	err = projector.WaitCaughtUp(ctx, conn.JS, target, func(pr projector.Progress) {
		rate := float64(pr.Done) / max(pr.Elapsed.Seconds(), 1e-3)
		fmt.Fprintf(stdout, "rebuild: %d/%d (%.0f%%) in %s, %.0f events/s\n", pr.Done, pr.Total, 100*float64(pr.Done)/float64(max(pr.Total, 1)), pr.Elapsed.Round(1e6), rate)
	})
	stop()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintln(stdout, "rebuild: done")
	return nil
}

// Verify folds the stream and compares it with every KV snapshot; it prints
// each difference and fails when there is one.
func Verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	_, conn, res, err := adminConnect(ctx, "verify", args, getenv, stderr)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	diffs, n, err := projector.Verify(ctx, conn.JS, res.Stream, res.KV)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, d := range diffs {
		fmt.Fprintln(stdout, "verify:", d)
	}
	fmt.Fprintf(stdout, "verify: %d articles, %d differences\n", n, len(diffs))
	if len(diffs) > 0 {
		return fmt.Errorf("verify: %d differences between the stream and the read model", len(diffs))
	}
	return nil
}
