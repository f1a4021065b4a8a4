package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// groupStore is an event store whose group commit runs until the test ends.
func groupStore(tb testing.TB, url string) *natsx.EventStore {
	tb.Helper()
	conn, _ := natstest.Connect(tb, url, 1)
	es := natsx.NewEventStore(conn.JS)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = es.RunGroupCommit(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	natstest.WaitFor(tb, 5*time.Second, func() error {
		// The first append through the group shows it runs.
		if _, _, err := es.Append(natstest.Context(tb), event("warm-up", 1, create("W")), 0, "warm-up", ""); err != nil {
			return err
		}
		if g, _ := es.GroupCommits(); g == 0 {
			return errors.New("group commit not running yet")
		}
		return nil
	})
	return es
}

// TestGroupCommitConflictFailsOnlyItsOwn sends 200 appends at once, one of
// them with a stale expectation: they go out in groups, every other one
// lands, and only that one is a conflict.
func TestGroupCommitConflictFailsOnlyItsOwn(t *testing.T) {
	es := groupStore(t, natstest.RunServer(t).URL())
	ctx := natstest.Context(t)
	const n = 200
	seqs := make([]uint64, n)
	for i := range n {
		seq, _, err := es.Append(ctx, event(fmt.Sprint("g", i), 1, create("G")), 0, fmt.Sprint("g-create-", i), "")
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = seq
	}
	g0, a0 := es.GroupCommits()
	var start sync.WaitGroup
	start.Add(1)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			id, expect := fmt.Sprint("g", i%n), seqs[i%n]
			if i == n {
				expect = seqs[i%n] + 1_000_000 // stale: another write got in, as far as it knows
			}
			_, _, errs[i] = es.Append(ctx, event(id, 2, retitle(fmt.Sprint("G", i))), expect, fmt.Sprint("g-update-", i), "")
		}()
	}
	start.Done()
	wg.Wait()
	for i, err := range errs[:n] {
		if err != nil {
			t.Errorf("append %d: %v", i, err)
		}
	}
	if !errors.Is(errs[n], domain.ErrConflict) {
		t.Fatalf("the stale append: %v, want ErrConflict", errs[n])
	}
	g, a := es.GroupCommits()
	if a-a0 != n+1 || g-g0 >= a-a0 {
		t.Fatalf("%d appends in %d groups: they did not go out together", a-a0, g-g0)
	}
	t.Logf("%d appends in %d groups", a-a0, g-g0)
}

// TestGroupCommitAcrossARestartNeverDuplicates restarts the server while
// writers append through the group commit: every append lands once or
// fails with the unavailable kind, and no message id is stored twice.
func TestGroupCommitAcrossARestartNeverDuplicates(t *testing.T) {
	srv := natstest.RunServer(t)
	es := groupStore(t, srv.URL())
	const writers = 8
	var landed sync.Map // message id → sequence
	var failed, ok atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("r", w)
			var expect uint64
			for v := 1; ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				c := retitle(fmt.Sprint(v))
				if v == 1 {
					c = create("R")
				}
				msgID := fmt.Sprintf("%s-v%d", id, v)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				seq, _, err := es.Append(ctx, event(id, v, c), expect, msgID, "")
				cancel()
				switch {
				case err == nil:
					landed.Store(msgID, seq)
					ok.Add(1)
					expect = seq
				case errors.Is(err, domain.ErrUnavailable):
					// Did it land? Its retry (same id) tells: ask again.
					failed.Add(1)
					v--
				default:
					t.Errorf("append %s: %v", msgID, err)
					return
				}
			}
		}()
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		if ok.Load() < 100 {
			return fmt.Errorf("%d appends so far", ok.Load())
		}
		return nil
	})
	srv.Restart(t)
	before := ok.Load()
	natstest.WaitFor(t, 30*time.Second, func() error {
		if ok.Load() < before+100 {
			return fmt.Errorf("%d appends since the restart", ok.Load()-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	conn, _ := natstest.Connect(t, srv.URL(), 1)
	seen := map[string]uint64{}
	_, err := natsx.NewLog(conn.JS).ReadAll(natstest.Context(t), func(m events.Message) error {
		if prev, dup := seen[m.MsgID]; dup {
			t.Errorf("message id %s stored at seq %d and %d", m.MsgID, prev, m.Seq)
		}
		seen[m.MsgID] = m.Seq
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	landed.Range(func(k, v any) bool {
		if seen[k.(string)] != v.(uint64) {
			t.Errorf("append %s answered seq %d; the stream has it at %d", k, v, seen[k.(string)])
		}
		return true
	})
	t.Logf("%d appends, %d answered unavailable and asked again", ok.Load(), failed.Load())
}

// BenchmarkAppendConcurrent appends new articles' events from 64
// goroutines on one embedded server: "raw" publishes each event's message
// synchronously (jetstream PublishMsg, the write path before the group
// commit), "single" appends each on its own (pipelined publish, waiting for
// its ack), "group" through the group commit. Their ratios are the gains
// on this machine.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, mode := range []string{"raw", "single", "group"} {
		b.Run(mode, func(b *testing.B) {
			url := natstest.RunServer(b).URL()
			conn, _ := natstest.Connect(b, url, 1)
			es := natsx.NewEventStore(conn.JS)
			if mode == "group" {
				es = groupStore(b, url)
			}
			appendOne := func(ctx context.Context, id string) error {
				e := event(id, 1, create("B"))
				if mode != "raw" {
					_, _, err := es.Append(ctx, e, 0, id, "")
					return err
				}
				msg, err := natsx.EventMsg(e, 0, id, "")
				if err == nil {
					_, err = conn.JS.PublishMsg(ctx, msg)
				}
				return err
			}
			var n atomic.Int64
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := appendOne(ctx, fmt.Sprint("b", n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}
