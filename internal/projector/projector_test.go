package projector_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/projector"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// rig is one embedded JetStream server with inkstream's stream, bucket and
// consumer, and an event store to write the stream directly.
type rig struct {
	conn  *natsx.Conn
	res   natsx.Resources
	store *natsx.EventStore
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	conn, res := natstest.Connect(tb, natstest.RunServer(tb).URL(), 1)
	return &rig{conn: conn, res: res, store: natsx.NewEventStore(conn.JS)}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// write decides cmd on the article's state in the stream and appends the
// event, expecting the article's last sequence; it returns the event.
func (r *rig) write(tb testing.TB, id string, mk func(domain.Meta) domain.Command) domain.Event {
	tb.Helper()
	ctx := natstest.Context(tb)
	h, err := r.store.History(ctx, id, 0)
	if err != nil {
		tb.Fatal(err)
	}
	st, seq := h.Fold.State, h.LastSeq
	evID := uuid.Must(uuid.NewV7()).String()
	evs, err := domain.Decide(st, mk(domain.Meta{EventID: evID, At: time.Now().UTC().Truncate(time.Microsecond)}))
	if err != nil || len(evs) != 1 {
		tb.Fatalf("decide on %s: %d events, %v", id, len(evs), err)
	}
	if _, _, err := r.store.Append(ctx, evs[0], seq, evID, ""); err != nil {
		tb.Fatalf("append to %s: %v", id, err)
	}
	return evs[0]
}

func (r *rig) create(tb testing.TB, title string) string {
	tb.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	r.write(tb, id, func(m domain.Meta) domain.Command {
		return domain.CreateArticle{Meta: m, ID: id, Fields: domain.Fields{Title: title, Content: "first", AuthorID: "author"}.Normalize(id)}
	})
	return id
}

func (r *rig) update(tb testing.TB, id, content string) {
	tb.Helper()
	r.write(tb, id, func(m domain.Meta) domain.Command {
		return domain.PatchArticle{Meta: m, ID: id, Patch: domain.Patch{Content: domain.Value[string]{Set: true, Value: content}}}
	})
}

func (r *rig) delete(tb testing.TB, id string) {
	tb.Helper()
	r.write(tb, id, func(m domain.Meta) domain.Command { return domain.DeleteArticle{Meta: m, ID: id} })
}

// lastSeq is the stream's last sequence.
func (r *rig) lastSeq(tb testing.TB) uint64 {
	tb.Helper()
	info, err := r.res.Stream.Info(natstest.Context(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.LastSeq
}

// running is a projector consuming in the background, with its metrics.
type running struct {
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// start runs a new projector, with an empty cache. Unless provision is
// set it binds to the consumer as the test left it.
func (r *rig) start(tb testing.TB, provision bool) *running {
	tb.Helper()
	reg := prometheus.NewRegistry()
	p := projector.New(natsx.NewConsumer(r.conn.JS, provision, quiet()), natsx.NewSnapshots(r.conn.JS, r.res.KV), r.store,
		projector.Options{Batch: 64, CacheBytes: 16 << 20}, reg, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- p.Run(ctx) }()
	tb.Cleanup(func() { rn.stop(tb) })
	return rn
}

// stop ends the projector and waits until it has.
func (rn *running) stop(tb testing.TB) {
	tb.Helper()
	if rn.cancel == nil {
		return
	}
	rn.cancel()
	rn.cancel = nil
	select {
	case err := <-rn.done:
		if err != nil {
			tb.Errorf("projector: %v", err)
		}
	case <-time.After(20 * time.Second):
		tb.Error("projector did not stop")
	}
}

// counter reads one of the projector's counters.
func (rn *running) counter(tb testing.TB, name string) float64 {
	tb.Helper()
	mfs, err := rn.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "inkstream_projector_"+name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	tb.Fatalf("no metric inkstream_projector_%s", name)
	return 0
}

// waitCaughtUp waits until the consumer has acknowledged every event.
func (r *rig) waitCaughtUp(tb testing.TB) {
	tb.Helper()
	ctx := natstest.Context(tb)
	last := r.lastSeq(tb)
	natstest.WaitFor(tb, 30*time.Second, func() error {
		cons, err := r.conn.JS.Consumer(ctx, natsx.Stream, natsx.ConsumerName)
		if err != nil {
			return err
		}
		ci := cons.CachedInfo()
		if ci.AckFloor.Stream < last || ci.NumAckPending > 0 || ci.NumPending > 0 {
			return fmt.Errorf("consumer acknowledged up to %d of %d, %d pending ack, %d undelivered",
				ci.AckFloor.Stream, last, ci.NumAckPending, ci.NumPending)
		}
		return nil
	})
}

// redeliver replaces the consumer by one that delivers again from stream
// sequence from: as if a projector had written every snapshot up to the
// end but crashed before acknowledging anything from there on.
func (r *rig) redeliver(tb testing.TB, from uint64) {
	tb.Helper()
	ctx := natstest.Context(tb)
	if err := r.conn.JS.DeleteConsumer(ctx, natsx.Stream, natsx.ConsumerName); err != nil {
		tb.Fatal(err)
	}
	cfg := natsx.ConsumerConfig()
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	if _, err := r.conn.JS.CreateConsumer(ctx, natsx.Stream, cfg); err != nil {
		tb.Fatal(err)
	}
}

// revisions returns the KV revision of every snapshot.
func (r *rig) revisions(tb testing.TB) map[string]uint64 {
	tb.Helper()
	ctx := natstest.Context(tb)
	w, err := r.res.KV.WatchAll(ctx, jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	out := make(map[string]uint64)
	for e := range w.Updates() {
		if e == nil {
			return out
		}
		out[e.Key()] = e.Revision()
	}
	tb.Fatal("watcher closed")
	return nil
}

// requireVerified fails unless every snapshot is the fold of its events.
func (r *rig) requireVerified(tb testing.TB, articles int) {
	tb.Helper()
	rep, err := projector.Verify(natstest.Context(tb), natsx.NewLog(r.conn.JS), r.store, natsx.NewSnapshots(r.conn.JS, r.res.KV))
	if err != nil {
		tb.Fatal(err)
	}
	for _, d := range rep.Differences {
		tb.Errorf("verify: %s", d)
	}
	if rep.Articles != articles {
		tb.Errorf("verify folded %d articles, want %d", rep.Articles, articles)
	}
	if tb.Failed() {
		tb.FailNow()
	}
}

// snapshot reads the snapshot of id; ok is false when KV has none.
func (r *rig) snapshot(tb testing.TB, id string) (readmodel.Snapshot, uint64, bool) {
	tb.Helper()
	e, err := r.res.KV.Get(natstest.Context(tb), id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return readmodel.Snapshot{}, 0, false
	}
	if err != nil {
		tb.Fatal(err)
	}
	snap, _, err := readmodel.Decode(e.Value())
	if err != nil {
		tb.Fatal(err)
	}
	return snap, e.Revision(), true
}

// seed writes articles with 1 to 5 versions each, every seventh deleted,
// and returns their ids and the number of events.
func (r *rig) seed(tb testing.TB, articles int) ([]string, int) {
	tb.Helper()
	ids := make([]string, articles)
	n := 0
	for i := range ids {
		ids[i] = r.create(tb, fmt.Sprintf("Article %d", i))
		n++
		for k := range i % 5 {
			r.update(tb, ids[i], fmt.Sprintf("content %d.%d", i, k))
			n++
		}
		if i%7 == 6 {
			r.delete(tb, ids[i])
			n++
		}
	}
	return ids, n
}

// TestProjectorRedeliveryAfterCrash simulates projectors that crash after
// writing snapshots but before acknowledging the events: the consumer
// delivers the events again, to a projector with an empty cache. Nothing is
// applied twice (no snapshot is even rewritten), everything new is applied
// once, and the read model stays the fold of the stream.
func TestProjectorRedeliveryAfterCrash(t *testing.T) {
	r := newRig(t)
	const articles = 40
	ids, total := r.seed(t, articles)

	first := r.start(t, true)
	r.waitCaughtUp(t)
	first.stop(t)
	if got := first.counter(t, "events_applied_total"); got != float64(total) {
		t.Fatalf("first projector applied %v events, want %d", got, total)
	}
	r.requireVerified(t, articles)
	revs := r.revisions(t)
	if len(revs) != articles {
		t.Fatalf("%d snapshots, want %d", len(revs), articles)
	}

	// Crash before any ack: every event comes again, creates included.
	r.redeliver(t, 1)
	second := r.start(t, false)
	r.waitCaughtUp(t)
	if applied, dups := second.counter(t, "events_applied_total"), second.counter(t, "events_duplicate_total"); applied != 0 || dups != float64(total) {
		t.Fatalf("redelivery of %d events: %v applied, %v duplicates; want 0 and %d", total, applied, dups, total)
	}
	if got := r.revisions(t); !sameRevisions(got, revs) {
		t.Fatalf("redelivered duplicates rewrote snapshots: revisions %v, were %v", got, revs)
	}
	r.requireVerified(t, articles)

	// Crash part-way: snapshots written past the acks, and new events
	// behind them. The running projector (it rebinds to the new consumer)
	// skips what KV has and applies only the new events.
	mid := r.lastSeq(t) / 2
	applied0, dups0 := second.counter(t, "events_applied_total"), second.counter(t, "events_duplicate_total")
	r.redeliver(t, mid+1)
	r.update(t, ids[3], "after the crash") // live, several versions
	r.update(t, ids[0], "after the crash") // live, one version so far
	r.delete(t, ids[4])                    // live until now
	extra := r.create(t, "Born after the crash")
	r.update(t, extra, "and changed")
	const fresh = 5
	changed := map[string]bool{ids[3]: true, ids[0]: true, ids[4]: true, extra: true}
	r.waitCaughtUp(t)
	applied, dups := second.counter(t, "events_applied_total")-applied0, second.counter(t, "events_duplicate_total")-dups0
	if applied != fresh || dups != float64(total)-float64(mid) {
		t.Fatalf("redelivery from seq %d: %v applied, %v duplicates; want %d and %d", mid+1, applied, dups, fresh, uint64(total)-mid)
	}
	now := r.revisions(t)
	for id, rev := range revs {
		if !changed[id] && now[id] != rev {
			t.Fatalf("snapshot of %s rewritten (revision %d → %d) though it had no new event", id, rev, now[id])
		}
	}
	r.requireVerified(t, articles+1)
	if snap, _, _ := r.snapshot(t, ids[4]); !snap.Deleted {
		t.Fatalf("snapshot of %s is not deleted: %+v", ids[4], snap)
	}
}

// TestProjectorRebuildsLostSnapshot removes snapshots from KV (deleted,
// purged) while a projector runs with them in its cache; the next event of
// each article finds its predecessor missing, so the projector rebuilds
// the article from the stream, and a fresh projector does the same.
func TestProjectorRebuildsLostSnapshot(t *testing.T) {
	r := newRig(t)
	ctx := natstest.Context(t)
	ids, _ := r.seed(t, 10)
	warm := r.start(t, true)
	r.waitCaughtUp(t)
	r.requireVerified(t, 10)

	deleted, purged := ids[3], ids[4] // v4 and v5, live
	if err := r.res.KV.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if err := r.res.KV.Purge(ctx, purged); err != nil {
		t.Fatal(err)
	}
	replays := warm.counter(t, "article_replays_total")
	r.update(t, deleted, "after the snapshot was deleted")
	r.update(t, purged, "after the snapshot was purged")
	r.waitCaughtUp(t)
	if got := warm.counter(t, "article_replays_total") - replays; got != 2 {
		t.Fatalf("%v articles rebuilt from the stream, want 2", got)
	}
	r.requireVerified(t, 10)
	for id, v := range map[string]int{deleted: 5, purged: 6} {
		snap, _, ok := r.snapshot(t, id)
		if !ok || snap.Article.Version != v || snap.Article.Content == "" {
			t.Fatalf("snapshot of %s: %+v (present %v), want version %d", id, snap, ok, v)
		}
	}

	// A projector that never saw the article: the same, from an empty cache.
	warm.stop(t)
	if err := r.res.KV.Delete(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	r.update(t, ids[2], "seen by a fresh projector")
	cold := r.start(t, true)
	r.waitCaughtUp(t)
	if got := cold.counter(t, "article_replays_total"); got != 1 {
		t.Fatalf("fresh projector rebuilt %v articles, want 1", got)
	}
	r.requireVerified(t, 10)
}

func sameRevisions(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
