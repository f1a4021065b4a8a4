package app

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

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
	target, err := natsx.ResetReadModel(ctx, conn.JS)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintf(stdout, "rebuild: bucket purged, consumer reset; folding %d stream sequences\n", target)
	pctx, stop := context.WithCancel(ctx)
	p := projector.New(natsx.NewConsumer(conn.JS, true, log), natsx.NewSnapshots(conn.JS, res.KV), natsx.NewEventStore(conn.JS),
		projector.Options{Batch: cfg.Batch, CacheBytes: uint64(cfg.CacheBytes)}, prometheus.NewRegistry(), log)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Run(pctx) }()
	err = waitCaughtUp(ctx, natsx.NewLog(conn.JS), target, func(done uint64, elapsed time.Duration) {
		rate := float64(done) / max(elapsed.Seconds(), 1e-3)
		fmt.Fprintf(stdout, "rebuild: %d/%d (%.0f%%) in %s, %.0f events/s\n", done, target, 100*float64(done)/float64(max(target, 1)), elapsed.Round(time.Millisecond), rate)
	})
	stop()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintln(stdout, "rebuild: done")
	return nil
}

// waitCaughtUp polls the consumer until it has acknowledged every message
// up to target, calling progress about once a second.
func waitCaughtUp(ctx context.Context, log *natsx.Log, target uint64, progress func(done uint64, elapsed time.Duration)) error {
	start := time.Now()
	last := time.Time{}
	for {
		done, err := log.AckFloor(ctx)
		if err == nil {
			if time.Since(last) >= time.Second || done >= target {
				progress(min(done, target), time.Since(start))
				last = time.Now()
			}
			if done >= target {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Verify folds the stream and compares it with every KV snapshot; it prints
// each difference and each skipped message and fails when there is a
// difference.
func Verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	_, conn, res, err := adminConnect(ctx, "verify", args, getenv, stderr)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	rep, err := projector.Verify(ctx, natsx.NewLog(conn.JS), natsx.NewEventStore(conn.JS), natsx.NewSnapshots(conn.JS, res.KV))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintln(stdout, "verify: warning: skipped", s)
	}
	for _, d := range rep.Differences {
		fmt.Fprintln(stdout, "verify:", d)
	}
	fmt.Fprintf(stdout, "verify: %d articles, %d differences, %d skipped messages\n", rep.Articles, len(rep.Differences), len(rep.Skipped))
	if len(rep.Differences) > 0 {
		return fmt.Errorf("verify: %d differences between the stream and the read model", len(rep.Differences))
	}
	return nil
}
