package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/procs"
)

// rebuild runs `inkstream rebuild` against the replay's server, where the
// projector has just folded the stream, and times it from exec to exit:
// it purges the bucket and folds the whole stream into it again.
func (r *runner) rebuild(ctx context.Context, res *Result, ns *proc, url string, resources natsx.Resources) error {
	c := r.cfg
	args := []string{"rebuild", "-nats-url", url}
	yes, profiles, err := rebuildAsks(ctx, c.bin("inkstream"))
	if err != nil {
		return err
	}
	if yes {
		args = append(args, "-yes")
	}
	// The rebuild serves no pprof: with -pprof it writes its own profile.
	profileFile := ""
	if r.prof != nil && profiles {
		profileFile = filepath.Join(r.dir, "rebuild.pprof")
		args = append(args, "-cpuprofile", profileFile)
	}
	rb := &res.Rebuild
	rb.Events = res.Replay.Events
	r.logf("rebuild: %s %s", c.bin("inkstream"), strings.Join(args, " "))
	cpu := newCPUMeter(ns)
	cpu.begin()
	stopProfiles := r.prof.during(ctx, "rebuild", ns)
	defer stopProfiles()
	started := time.Now()
	p, err := r.ps.start("inkstream-rebuild", c.bin("inkstream"), args...)
	if err != nil {
		return err
	}
	t := time.NewTimer(c.ReplayTimeout)
	defer t.Stop()
	select {
	case <-p.Done():
	case <-t.C:
		rb.TimedOut = true
		r.logf("rebuild: timed out after %s", c.ReplayTimeout)
		r.ps.stop(p, 10*time.Second)
	case <-ctx.Done():
		r.ps.stop(p, 10*time.Second)
		return ctx.Err()
	}
	took := time.Since(started)
	cpu.pause()
	stopProfiles()
	if err := p.Err(); err != nil && !rb.TimedOut {
		// A failed rebuild is a figure, not the end of the run: the report
		// says how it failed, and the target fails.
		rb.Failed, rb.Error = true, fmt.Sprintf("%v: %s", err, lastLine(p.Log))
		r.logf("rebuild: failed after %s: %s (log %s)", took.Round(time.Millisecond), rb.Error, p.Log)
		r.ps.keep()
		rb.Seconds = took.Seconds()
		return nil
	}
	if profileFile != "" {
		prof, err := readProfile(profileFile)
		r.prof.keep(ctx, "rebuild", p, prof, err)
	}
	rb.Seconds = took.Seconds()
	rb.EventsPerSec = float64(rb.Events) / rb.Seconds
	server := cpu.end(rb.EventsPerSec)
	rb.Summary = summaryLine(p.Log, "events folded into")
	used, maxRSS := p.Usage()
	r.rebuildRSS = float64(maxRSS) / 1024
	// The CPU split per event: the server's (and the harness's, idle) from
	// /proc over the run, the rebuild's own from its rusage.
	rb.CPU = server
	own := used.Seconds() / took.Seconds()
	rb.CPU = append(rb.CPU, ProcCPU{Process: "inkstream rebuild", Cores: own, USPerReq: own / rb.EventsPerSec * 1e6})
	st, err := resources.KV.Status(ctx)
	if err != nil {
		return fmt.Errorf("bucket status: %w", err)
	}
	rb.Snapshots = int64(st.Values())
	r.logf("rebuild: %d events in %.2f s: %.0f events/s; %d snapshots; %s", rb.Events, rb.Seconds, rb.EventsPerSec, rb.Snapshots, rb.Summary)
	return nil
}

// rebuildAsks reports whether `inkstream rebuild` has a -yes flag (it then
// asks for confirmation on a terminal; the harness says yes), and whether
// it has -cpuprofile.
func rebuildAsks(ctx context.Context, bin string) (yes, profiles bool, _ error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "rebuild", "-h").CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) { // -h may exit 0 or 2
		return false, false, fmt.Errorf("%s rebuild -h: %w", bin, err)
	}
	if !strings.Contains(string(out), "-nats-url") {
		return false, false, fmt.Errorf("%s rebuild -h does not list -nats-url:\n%s", bin, out)
	}
	return strings.Contains(string(out), "\n  -yes"), strings.Contains(string(out), "\n  -cpuprofile"), nil
}

// lastLine is the last line of the log file that is not empty.
func lastLine(log string) string { return summaryLine(log, "") }

// summaryLine is the last line of the log file that holds marker, trimmed.
func summaryLine(log, marker string) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], marker) && strings.TrimSpace(lines[i]) != "" {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

// disk measures what stream ARTICLES (S2, as provisioned) takes on disk
// in the store of its server, ns, against the same stream provisioned with
// -stream-compression none on a second server, into which the harness
// copies every message as stored, subject, headers and data (a mirror
// would not do: it stores the messages without their expected-sequence
// headers).
func (r *runner) disk(ctx context.Context, js jetstream.JetStream, ns *proc, store string) (Disk, error) {
	var d Disk
	src, err := js.Stream(ctx, natsx.Stream)
	if err != nil {
		return d, err
	}
	info, err := src.Info(ctx)
	if err != nil {
		return d, err
	}
	d.Events, d.StoredBytes = int64(info.State.Msgs), int64(info.State.Bytes)
	const noneStore = "store-uncompressed"
	ns2, url, conn, err := r.startNATS(ctx, "nats-server-uncompressed", noneStore)
	if err != nil {
		return d, err
	}
	defer conn.nc.Close()
	cfg, err := natsDefaults(url)
	if err != nil {
		return d, err
	}
	cfg.StreamCompression = "none"
	if _, err := provision(ctx, conn.js, cfg); err != nil {
		return d, err
	}
	r.logf("bytes on disk: copying %d events into a stream without compression", d.Events)
	prog := newProgress(r.cfg.Log, r.logf, "bytes on disk: copying", "events", d.Events)
	copied, err := copyStream(ctx, src, conn.js, info.State.LastSeq, prog.set)
	prog.end()
	if err != nil {
		return d, fmt.Errorf("copy: %w", err)
	}
	dst, err := conn.js.Stream(ctx, natsx.Stream)
	if err != nil {
		return d, err
	}
	di, err := dst.Info(ctx)
	if err != nil {
		return d, err
	}
	if di.State.Msgs != info.State.Msgs || di.State.Bytes != info.State.Bytes {
		return d, fmt.Errorf("the copy holds %d messages, %d bytes; the stream %d, %d (%d copied)", di.State.Msgs, di.State.Bytes, info.State.Msgs, info.State.Bytes, copied)
	}
	// A block is compressed once it is full, in the background: wait until
	// the sizes stop changing.
	dir := func(store string) string {
		return filepath.Join(r.dir, store, "jetstream", "$G", "streams", natsx.Stream, "msgs")
	}
	var last [2]int64
	err = procs.Poll(ctx, ns.Proc, "the store directories to settle", 500*time.Millisecond, time.Minute, func() (bool, error) {
		s2, err := allocated(dir(store))
		if err != nil {
			return false, err
		}
		none, err := allocated(dir(noneStore))
		if err != nil {
			return false, err
		}
		settled := last == [2]int64{s2, none}
		last = [2]int64{s2, none}
		return settled, nil
	})
	if err != nil {
		return d, err
	}
	r.ps.stop(ns2, 10*time.Second)
	d.S2Bytes, d.NoneBytes = last[0], last[1]
	d.S2PerEvent, d.NonePerEvt = div(float64(d.S2Bytes), float64(d.Events)), div(float64(d.NoneBytes), float64(d.Events))
	r.logf("bytes on disk: %.0f bytes/event with S2, %.0f without (%.2f×)", d.S2PerEvent, d.NonePerEvt, div(d.S2PerEvent, d.NonePerEvt))
	return d, nil
}

// copyStream publishes every message of src up to sequence last to the
// stream of js that takes its subjects, as stored: subject, headers and
// data, asynchronously, at most publishWindow awaiting their acks. The
// expected-sequence headers hold, since the copy gets the same sequences.
func copyStream(ctx context.Context, src jetstream.Stream, js jetstream.JetStream, last uint64, prog func(int64)) (int64, error) {
	cons, err := src.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	acks := make(chan jetstream.PubAckFuture, publishWindow)
	errc := make(chan error, 1)
	go func() {
		var first error
		for a := range acks {
			select {
			case <-a.Ok():
			case err := <-a.Err():
				if first == nil {
					first = err
				}
			case <-ctx.Done():
				if first == nil {
					first = ctx.Err()
				}
			}
		}
		errc <- first
	}()
	var n int64
	err = func() error {
		defer close(acks)
		for {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				return err
			}
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				return err
			}
			acks <- f
			if n++; n%4096 == 0 {
				prog(n)
			}
			if md.Sequence.Stream >= last {
				prog(n)
				return nil
			}
		}
	}()
	if aerr := <-errc; err == nil {
		err = aerr
	}
	return n, err
}

// allocated is the space the files under dir take on disk.
func allocated(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
