package queryapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// memLog is an event log in memory: the messages of one stream, read the
// way the store reads them (events.Replay). It counts history reads.
type memLog struct {
	msgs      []events.Message
	histories int
}

func (l *memLog) History(_ context.Context, id string, upTo uint64) (events.History, error) {
	l.histories++
	r := events.NewReplay(id)
	for _, m := range l.msgs {
		if upTo > 0 && m.Seq > upTo {
			break
		}
		if aid, ok := events.ArticleIDFromSubject(m.Subject); ok && aid == id {
			r.Add(m)
		}
	}
	return r.History(), nil
}

func (l *memLog) Last(_ context.Context, id string) (events.Message, error) {
	for i := len(l.msgs) - 1; i >= 0; i-- {
		if aid, _ := events.ArticleIDFromSubject(l.msgs[i].Subject); aid == id {
			return l.msgs[i], nil
		}
	}
	return events.Message{}, domain.ErrNotFound
}

// streamFold is a query service whose view folds the messages appended to
// its log, as the live feed's pinned hub hands them over.
type streamFold struct {
	t   *testing.T
	s   *Service
	log *memLog
	fo  *folder
	at  time.Time
}

// newStreamFold is a streamFold whose view keeps no states besides its
// bodies, unless states (the feed's budget of states) is given.
func newStreamFold(t *testing.T, states ...int) *streamFold {
	log := &memLog{}
	opts := Options{Versions: 10, MinSeqWait: time.Second, ReadTimeout: time.Second, CacheBytes: 1 << 20, FoldStream: true}
	for _, n := range states {
		opts.Feed.CacheBytes = n
	}
	s := New(log, nil, nil, nil, opts, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &streamFold{t: t, s: s, log: log, fo: &folder{log: log}, at: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// add appends the event of id at version v to the log, without folding it.
func (f *streamFold) add(id string, v int, c domain.Change) events.Message {
	f.t.Helper()
	f.at = f.at.Add(time.Second)
	e := domain.Event{ID: fmt.Sprintf("ev-%s-%d", id, v), ArticleID: id, Version: v, At: f.at, Change: c}
	b, err := events.Encode(e)
	if err != nil {
		f.t.Fatal(err)
	}
	m := events.Message{Seq: uint64(len(f.log.msgs) + 1), Subject: events.SubjectOf(e), Data: b}
	f.log.msgs = append(f.log.msgs, m)
	return m
}

// hand folds m into the view, as the hub does, and returns whether the
// view worked out m's change.
func (f *streamFold) hand(m events.Message) bool {
	f.t.Helper()
	_, settled, err := f.s.foldView(context.Background(), m, f.fo)
	if err != nil {
		f.t.Fatal(err)
	}
	return settled
}

// requireState fails unless the view holds id at version v (deleted or
// not) with the body of the log's fold, and has folded the whole log.
func (f *streamFold) requireState(id string, v int, deleted bool) {
	f.t.Helper()
	e := f.s.view.get(id)
	if e == nil || e.version != v || e.deleted != deleted {
		f.t.Fatalf("view holds %+v, want v%d deleted=%v", e, v, deleted)
	}
	if pos, _ := f.s.view.position(); pos != uint64(len(f.log.msgs)) {
		f.t.Fatalf("view folded up to %d, want %d", pos, len(f.log.msgs))
	}
	b, cached := f.s.bodies.Get(id)
	if deleted {
		if cached {
			f.t.Fatalf("the body of deleted %s is still cached (v%d)", id, b.version)
		}
		return
	}
	st := f.fold(id)
	want, err := json.Marshal(st.Article)
	if err != nil {
		f.t.Fatal(err)
	}
	if !cached || b.version != v || string(b.json) != string(want) {
		f.t.Fatalf("body of %s: %v %s, want v%d %s", id, cached, b.json, v, want)
	}
}

func (f *streamFold) fold(id string) domain.State {
	f.t.Helper()
	h, err := f.log.History(context.Background(), id, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	f.log.histories--
	return h.Fold.State
}

func str(s string) *string { return &s }

// TestFoldStreamIntoView folds an article's life into the view: each
// state with its body, folded onto the view's own body without reading
// the history; a message folded again changes nothing; a deletion and an
// erasure leave a deleted entry and no body, which no older snapshot (from
// the bucket or a read) brings back.
func TestFoldStreamIntoView(t *testing.T) {
	f := newStreamFold(t)
	const id = "0196b5c2-7d1e-7a3b-8c4d-0000000000a1"
	f.hand(f.add(id, 1, domain.ArticleCreated{Fields: domain.Fields{Title: "One", Slug: "one", Content: "c1", AuthorID: "ada", Status: domain.StatusDraft, Tags: []string{"go"}}}))
	f.requireState(id, 1, false)
	v2 := f.add(id, 2, domain.ArticleUpdated{Changes: domain.Changes{Content: str("c2")}})
	f.hand(v2)
	f.requireState(id, 2, false)
	published := domain.StatusPublished
	f.hand(f.add(id, 3, domain.ArticleUpdated{Changes: domain.Changes{Title: str("Three"), Status: &published}}))
	f.requireState(id, 3, false)
	if f.log.histories != 0 {
		t.Fatalf("%d history reads to fold an article's events in order", f.log.histories)
	}
	if got, _ := f.s.view.page(byTitle, false, nil, filter{status: domain.StatusPublished}, 10); len(got) != 1 || got[0].title != "Three" {
		t.Fatalf("the published list holds %+v", got)
	}

	// The same message again (a redelivery) and an older state from the
	// bucket change nothing.
	f.hand(v2)
	f.requireState(id, 3, false)
	f.s.backfill(readmodel.Entry{Key: id, Revision: 7, Index: &readmodel.Index{ID: id, Version: 2, Seq: v2.Seq, Title: "stale", Status: domain.StatusDraft}})
	f.requireState(id, 3, false)

	f.hand(f.add(id, 4, domain.ArticleDeleted{}))
	f.requireState(id, 4, true)
	if n := f.s.view.live(); n != 0 {
		t.Fatalf("%d live articles after the deletion", n)
	}

	// Erasure: the earlier events are purged from the log; the view keeps
	// a deleted entry at the erasure's sequence.
	erased := f.add(id, 5, domain.ArticleErased{})
	f.log.msgs = []events.Message{erased}
	f.hand(erased)
	if e := f.s.view.get(id); e == nil || !e.deleted || e.seq != erased.Seq {
		t.Fatalf("after the erasure the view holds %+v", e)
	}
	if _, ok := f.s.bodies.Get(id); ok {
		t.Fatal("the erased article's body is still cached")
	}
	// A snapshot written before the erasure, arriving late from the
	// bucket or read from it, does not bring the article back.
	old := readmodel.Snapshot{Article: domain.Article{ID: id, Version: 3, Fields: domain.Fields{Title: "Three", Content: "c2", AuthorID: "ada", Status: domain.StatusPublished}}, Seq: 3}
	raw, err := readmodel.Encode(old)
	if err != nil {
		t.Fatal(err)
	}
	ix := readmodel.IndexOf(old)
	f.s.backfill(readmodel.Entry{Key: id, Revision: 9, Value: raw, Index: &ix})
	if e, b, ok := f.s.fromKV(readmodel.Entry{Key: id, Revision: 9, Value: raw}, 0); !ok || e == nil || !e.deleted || b != nil {
		t.Fatalf("a read of the old snapshot answered %+v %s %v", e, b, ok)
	}
	if e := f.s.view.get(id); e == nil || !e.deleted || f.s.view.live() != 0 {
		t.Fatalf("an old snapshot brought the erased article back: %+v", e)
	}
	if _, ok := f.s.bodies.Get(id); ok {
		t.Fatal("an old snapshot put the erased article's body back")
	}
	// A deletion marker in the bucket is the fold's business, not the bucket's.
	f.s.backfill(readmodel.Entry{Key: id, Revision: 10, Deleted: true})
	if e := f.s.view.get(id); e == nil || e.seq != erased.Seq {
		t.Fatalf("a KV deletion removed the erasure's entry: %+v", e)
	}
}

// TestFoldStreamGap loads the view as the bucket has it (an index at
// version 1, no body) and folds a later event: the view cannot fold it
// onto its own state, so the article's history is read; a message that
// is not the article's next valid event changes nothing but the position.
func TestFoldStreamGap(t *testing.T) {
	f := newStreamFold(t)
	const id = "0196b5c2-7d1e-7a3b-8c4d-0000000000b2"
	m1 := f.add(id, 1, domain.ArticleCreated{Fields: domain.Fields{Title: "Gap", Slug: "gap", Content: "c1", AuthorID: "bob", Status: domain.StatusDraft}})
	st := f.fold(id)
	f.s.apply(readmodel.Entry{Key: id, Revision: 1, Index: func() *readmodel.Index { x := readmodel.IndexOf(readmodel.FromState(st, m1.Seq)); return &x }()})
	f.s.view.fold(nil, m1.Seq) // what the load holds
	f.add(id, 2, domain.ArticleUpdated{Changes: domain.Changes{Content: str("c2")}})
	f.hand(f.add(id, 3, domain.ArticleUpdated{Changes: domain.Changes{Title: str("Gap three")}}))
	if f.log.histories != 1 {
		t.Fatalf("%d history reads for an event the view could not fold, want 1", f.log.histories)
	}
	if e := f.s.view.get(id); e == nil || e.version != 3 || e.title != "Gap three" {
		t.Fatalf("view holds %+v, want version 3", e)
	}
	f.s.view.fold(nil, uint64(len(f.log.msgs)))
	f.requireState(id, 3, false)

	// Not a valid next event: an update of version 9.
	bad := f.add(id, 9, domain.ArticleUpdated{Changes: domain.Changes{Title: str("Nine")}})
	f.hand(bad)
	f.requireState(id, 3, false)
}

// TestFoldStreamPosition: a read waits for the view's own position in the
// stream, and only as long as it is told to.
func TestFoldStreamPosition(t *testing.T) {
	f := newStreamFold(t)
	ctx := context.Background()
	f.s.view.fold(nil, 41)
	if !f.s.foldedWithin(ctx, 41, 0) {
		t.Fatal("the view has folded 41 but a read for 41 waits")
	}
	done := make(chan bool)
	go func() { done <- f.s.foldedWithin(ctx, 42, 10*time.Second) }()
	f.s.view.fold(nil, 42)
	if !<-done {
		t.Fatal("a read for 42 was not released when the view folded it")
	}
	start := time.Now()
	if f.s.foldedWithin(ctx, 43, 50*time.Millisecond) {
		t.Fatal("a read for 43 was released before the view folded it")
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("a read for 43 gave up after %v, before its wait of 50ms", took)
	}
}

// TestFoldStreamBackfill: from the bucket, a view that folds the log takes
// a snapshot of an article it lacks up to its position (the load missed
// it), and leaves one past its position to the fold.
func TestFoldStreamBackfill(t *testing.T) {
	f := newStreamFold(t)
	snapshot := func(id string, seq uint64) readmodel.Entry {
		snap := readmodel.Snapshot{Article: domain.Article{ID: id, Version: 1, Fields: domain.Fields{Title: id, Content: "c", AuthorID: "ada", Status: domain.StatusPublished}}, Seq: seq}
		raw, err := readmodel.Encode(snap)
		if err != nil {
			t.Fatal(err)
		}
		x := readmodel.IndexOf(snap)
		return readmodel.Entry{Key: id, Revision: seq, Value: raw, Index: &x}
	}
	f.s.view.fold(nil, 10)
	f.s.backfill(snapshot("missed", 7))
	if e := f.s.view.get("missed"); e == nil || e.seq != 7 {
		t.Fatalf("a snapshot the load missed was not taken: %+v", e)
	}
	if b, ok := f.s.bodies.Get("missed"); !ok || b.version != 1 {
		t.Fatal("a snapshot the load missed was taken without its body")
	}
	f.s.backfill(snapshot("ahead", 11))
	if e := f.s.view.get("ahead"); e != nil {
		t.Fatalf("a snapshot past the fold's position was taken: %+v", e)
	}
}

// TestFoldStreamWithoutBody: when the body cache does not hold the
// article's previous version (evicted, or loaded as an index only), the
// view folds the event onto its index entry without reading the history:
// the next index, no body (a read takes it from KV or replays it), and the
// change is left to the feed's folder. A state the view holds at a later
// sequence (a read brought it from KV) is not folded again.
func TestFoldStreamWithoutBody(t *testing.T) {
	f := newStreamFold(t)
	const id = "0196b5c2-7d1e-7a3b-8c4d-0000000000c3"
	f.hand(f.add(id, 1, domain.ArticleCreated{Fields: domain.Fields{Title: "Lean", Slug: "lean", Content: "c1", AuthorID: "cy", Status: domain.StatusDraft, Tags: []string{"x"}}}))
	f.s.bodies.Forget(id) // evicted
	published := domain.StatusPublished
	if settled := f.hand(f.add(id, 2, domain.ArticleUpdated{Changes: domain.Changes{Title: str("Lean two"), Status: &published, Tags: &[]string{"y"}}})); settled {
		t.Fatal("a change folded onto an index only was handed to the feed as settled")
	}
	e := f.s.view.get(id)
	if e == nil || e.version != 2 || e.title != "Lean two" || e.status != domain.StatusPublished || fmt.Sprint(e.tags) != "[y]" {
		t.Fatalf("view holds %+v, want version 2's index", e)
	}
	if _, ok := f.s.bodies.Get(id); ok {
		t.Fatal("a body was cached from an index")
	}
	if f.log.histories != 0 {
		t.Fatalf("%d history reads to fold onto an index", f.log.histories)
	}

	// A read brought version 4 from KV; the hub then folds 3 and 4.
	m3 := f.add(id, 3, domain.ArticleUpdated{Changes: domain.Changes{Content: str("c3")}})
	m4 := f.add(id, 4, domain.ArticleUpdated{Changes: domain.Changes{Content: str("c4")}})
	st := f.fold(id)
	b, err := json.Marshal(st.Article)
	if err != nil {
		t.Fatal(err)
	}
	f.s.keep(newEntry(readmodel.IndexOf(readmodel.FromState(st, m4.Seq))), b, 0, 0)
	f.hand(m3)
	f.hand(m4)
	f.requireState(id, 4, false)
	if f.log.histories != 0 {
		t.Fatalf("%d history reads for events the view held already", f.log.histories)
	}
	// Version 5 folds onto the body again, whole.
	if settled := f.hand(f.add(id, 5, domain.ArticleUpdated{Changes: domain.Changes{Title: str("Lean five")}})); !settled {
		t.Fatal("a change folded onto the cached body was not settled")
	}
	f.requireState(id, 5, false)

	// With states kept besides the bodies, an evicted body costs nothing.
	f = newStreamFold(t, 1<<20)
	f.hand(f.add(id, 1, domain.ArticleCreated{Fields: domain.Fields{Title: "Kept", Slug: "kept", Content: "c1", AuthorID: "cy", Status: domain.StatusDraft}}))
	f.s.bodies.Forget(id)
	if settled := f.hand(f.add(id, 2, domain.ArticleUpdated{Changes: domain.Changes{Content: str("c2")}})); !settled {
		t.Fatal("a change folded onto a kept state was not settled")
	}
	f.requireState(id, 2, false)
	if f.log.histories != 0 {
		t.Fatalf("%d history reads to fold onto a kept state", f.log.histories)
	}
}
