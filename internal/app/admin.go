package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/obs"
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
// the bucket and moves the projector consumer past the stream's end
// (running projectors fold only what comes after), then folds the whole
// stream in this process, in windows of -projector-cache-bytes, writing
// one snapshot per article per window, and reports progress on stdout. The
// query API keeps serving meanwhile: its view keeps the old snapshots, and
// a read that misses it is replayed from the stream.
func Rebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, conn, res, err := adminConnect(ctx, "rebuild", args, getenv, stderr)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	log := cfg.Logger(stderr)
	target, err := natsx.ResetForRebuild(ctx, conn.JS)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintf(stdout, "rebuild: bucket purged, projectors moved past seq %d; folding %d stream sequences\n", target, target)
	start := time.Now()
	rep, err := projector.Rebuild(ctx, natsx.NewLog(conn.JS), natsx.NewSnapshots(conn.JS, res.KV), int(cfg.CacheBytes),
		obs.NewSkips(prometheus.NewRegistry(), log), func(seq uint64) {
			elapsed := time.Since(start)
			fmt.Fprintf(stdout, "rebuild: %d/%d (%.0f%%) in %s, %.0f events/s\n", seq, target, 100*float64(seq)/float64(max(target, 1)),
				elapsed.Round(time.Millisecond), float64(seq)/max(elapsed.Seconds(), 1e-3))
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuild: %d events folded into %d snapshots in %d windows, %d skipped, in %s (%.0f events/s)\n",
		rep.Events, rep.Articles, rep.Windows, rep.Skipped, rep.Elapsed.Round(time.Millisecond), float64(rep.Events)/max(rep.Elapsed.Seconds(), 1e-3))
	fmt.Fprintln(stdout, "rebuild: done")
	return nil
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
