package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/projector"
	"github.com/inkstream/inkstream/pkg/events"
)

// ErrDifferences is what Verify returns when the read model differs from
// the fold of the stream (exit status 1; Admin makes any other failure of
// verify exit 2).
var ErrDifferences = errors.New("the read model differs from the stream")

// ErrNotConfirmed is what Rebuild returns when its confirmation is refused.
var ErrNotConfirmed = errors.New("not confirmed")

// Stdio are an admin command's standard streams. It asks for confirmation
// only when In and Err are terminals, and draws a progress bar only on a
// terminal Out: on anything else it prints plain lines.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// isTerminal reports whether x is a terminal.
func isTerminal(x any) bool {
	f, ok := x.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Admin runs an admin command (config.AdminCommands): provision, rebuild
// or verify. Each connects as the admin user, gives up after
// -connect-timeout when NATS cannot be reached, and never lowers the
// replicas of anything.
func Admin(ctx context.Context, command string, args []string, getenv func(string) string, std Stdio) error {
	switch command {
	case "provision":
		return provision(ctx, args, getenv, std)
	case "rebuild":
		return rebuild(ctx, args, getenv, std)
	case "verify":
		return couldNotRun(verify(ctx, args, getenv, std))
	}
	return fmt.Errorf("%w: unknown admin command %q", config.ErrUsage, command)
}

// Provision is `inkstream provision`: it creates or updates the stream,
// the bucket and the consumer, never lowering replicas.
func Provision(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return provision(ctx, args, getenv, Stdio{Out: stdout, Err: stderr})
}

// Rebuild is `inkstream rebuild` without a terminal to ask on (-yes or not).
func Rebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return rebuild(ctx, args, getenv, Stdio{Out: stdout, Err: stderr})
}

// Verify is `inkstream verify`.
func Verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return verify(ctx, args, getenv, Stdio{Out: stdout, Err: stderr})
}

// couldNotRun marks a failure of verify other than differences: exit status 2.
func couldNotRun(err error) error {
	if err == nil || errors.Is(err, ErrDifferences) || errors.Is(err, config.ErrUsage) {
		return err
	}
	return statusError{status: 2, err: err}
}

// adminConnect parses an admin command's flags and connects, within
// -connect-timeout.
func adminConnect(ctx context.Context, command string, args []string, getenv func(string) string, stderr io.Writer) (config.Admin, *natsx.Conn, error) {
	cfg, err := config.ParseAdmin(command, args, getenv, stderr)
	if err != nil {
		return cfg, nil, err
	}
	conn, err := natsx.Connect(ctx, cfg.NATS, cfg.Logger(stderr))
	if err != nil {
		return cfg, nil, fmt.Errorf("%s: %w", command, err)
	}
	return cfg, conn, nil
}

// lookup finds the resources an admin command works on; what is missing
// fails it within -connect-timeout, naming what.
func lookup(ctx context.Context, command string, cfg config.Admin, conn *natsx.Conn, stderr io.Writer) (natsx.Resources, error) {
	lctx, cancel := context.WithTimeout(ctx, cfg.NATS.ConnectTimeout)
	defer cancel()
	res, err := natsx.Lookup(lctx, conn.JS, cfg.NATS, false, cfg.Logger(stderr))
	if err != nil {
		return res, fmt.Errorf("%s: %w (has it been provisioned? inkstream provision)", command, err)
	}
	return res, nil
}

func provision(ctx context.Context, args []string, getenv func(string) string, std Stdio) error {
	cfg, conn, err := adminConnect(ctx, "provision", args, getenv, std.Err)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	res, err := natsx.Provision(ctx, conn.JS, cfg.NATS, cfg.Logger(std.Err))
	if err != nil {
		return err
	}
	kvr, _ := natsx.BucketReplicas(ctx, res.KV)
	fmt.Fprintf(std.Out, "provision: stream %s (%d replicas), bucket %s (%d replicas), consumer %s\n",
		natsx.Stream, res.Stream.CachedInfo().Config.Replicas, natsx.Bucket, kvr, natsx.ConsumerName)
	return nil
}

// rebuild rebuilds the read model from the stream from scratch: it purges
// the bucket and moves the projector consumer past the stream's end,
// keeping its replicas (running projectors fold only what comes after),
// then folds the whole stream in this process, in windows of
// -projector-cache-bytes, writing one snapshot per article per window,
// and reports progress. The query API keeps serving meanwhile: its view
// keeps the old snapshots, and a read that misses it is replayed from the
// stream. On a terminal it asks first, unless -yes.
func rebuild(ctx context.Context, args []string, getenv func(string) string, std Stdio) error {
	cfg, conn, err := adminConnect(ctx, "rebuild", args, getenv, std.Err)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	log := cfg.Logger(std.Err)
	res, err := lookup(ctx, "rebuild", cfg, conn, std.Err)
	if err != nil {
		return err
	}
	if !cfg.Yes && isTerminal(std.In) && isTerminal(std.Err) {
		last := res.Stream.CachedInfo().State.LastSeq
		fmt.Fprintf(std.Err, "rebuild: this purges bucket %s and moves consumer %s on %s past the stream's end, then folds %d stream sequences again.\n"+
			"The query API keeps serving its snapshots meanwhile. Continue? [y/N] ", natsx.Bucket, natsx.ConsumerName, cfg.NATS.RedactedURL(), last)
		answer, _ := bufio.NewReader(std.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return fmt.Errorf("rebuild: %w: nothing changed", ErrNotConfirmed)
		}
	}
	target, err := natsx.ResetForRebuild(ctx, conn.JS)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintf(std.Out, "rebuild: bucket purged, projectors moved past seq %d; folding %d stream sequences\n", target, target)
	if cfg.CPUProfile != "" {
		stop, err := cpuProfile(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		defer stop()
	}
	bar := newProgress(std.Out, "rebuild", target)
	rep, err := projector.Rebuild(ctx, natsx.NewLog(conn.JS), natsx.NewSnapshots(conn.JS, res.KV), int(cfg.CacheBytes),
		obs.NewSkips(prometheus.NewRegistry(), log), bar.set)
	bar.finish()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintf(std.Out, "rebuild: %d events folded into %d snapshots in %d windows, %d skipped, in %s (%.0f events/s)\n",
		rep.Events, rep.Articles, rep.Windows, rep.Skipped, rep.Elapsed.Round(time.Millisecond), float64(rep.Events)/max(rep.Elapsed.Seconds(), 1e-3))
	fmt.Fprintln(std.Out, "rebuild: done")
	return nil
}

// progress shows how far a long job has come: a bar on a terminal, else a
// line about once a second and one at the end.
type progress struct {
	out   io.Writer
	job   string
	total uint64
	start time.Time
	bar   *progressbar.ProgressBar // on a terminal
	last  time.Time
	done  uint64
}

func newProgress(out io.Writer, job string, total uint64) *progress {
	p := &progress{out: out, job: job, total: total, start: time.Now()}
	if isTerminal(out) {
		p.bar = progressbar.NewOptions64(int64(max(total, 1)), progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(job), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }))
	}
	return p
}

// set records that done of total are done.
func (p *progress) set(done uint64) {
	done = min(done, p.total)
	p.done = done
	if p.bar != nil {
		_ = p.bar.Set64(int64(done))
		return
	}
	if time.Since(p.last) >= time.Second || done == p.total {
		p.last = time.Now()
		elapsed := time.Since(p.start)
		fmt.Fprintf(p.out, "%s: %d/%d (%.0f%%) in %s, %.0f events/s\n", p.job, done, p.total,
			100*float64(done)/float64(max(p.total, 1)), elapsed.Round(time.Millisecond), float64(done)/max(elapsed.Seconds(), 1e-3))
	}
}

// finish ends the bar (the plain lines need nothing more).
func (p *progress) finish() {
	if p.bar != nil && p.done >= p.total {
		_ = p.bar.Finish()
	}
}

// countingLog is a stream reader that reports each message it hands on.
type countingLog struct {
	*natsx.Log
	seen func(seq uint64)
}

func (c countingLog) ReadAll(ctx context.Context, each func(events.Message) error) (uint64, error) {
	return c.Log.ReadAll(ctx, func(m events.Message) error {
		c.seen(m.Seq)
		return each(m)
	})
}

// verify folds the stream and compares it with every KV snapshot; it
// prints each difference and each skipped message, and returns
// ErrDifferences when there is a difference. It writes nothing: it looks
// the stream and bucket up, and reads them.
func verify(ctx context.Context, args []string, getenv func(string) string, std Stdio) error {
	cfg, conn, err := adminConnect(ctx, "verify", args, getenv, std.Err)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	res, err := lookup(ctx, "verify", cfg, conn, std.Err)
	if err != nil {
		return err
	}
	bar := newProgress(std.Err, "verify: reading the stream", res.Stream.CachedInfo().State.LastSeq)
	rep, err := projector.Verify(ctx, countingLog{natsx.NewLog(conn.JS), bar.set}, natsx.NewEventStore(conn.JS), natsx.NewSnapshots(conn.JS, res.KV))
	bar.finish()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintln(std.Out, "verify: warning: skipped", s)
	}
	for _, d := range rep.Differences {
		fmt.Fprintln(std.Out, "verify:", d)
	}
	fmt.Fprintf(std.Out, "verify: %d articles, %d differences, %d skipped messages\n", rep.Articles, len(rep.Differences), len(rep.Skipped))
	if len(rep.Differences) > 0 {
		return fmt.Errorf("verify: %w: %d differences", ErrDifferences, len(rep.Differences))
	}
	return nil
}

// cpuProfile starts a CPU profile written to path; stop ends it.
func cpuProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
