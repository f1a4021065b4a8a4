package natsx_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

func newStore(tb testing.TB) (*natsx.EventStore, natsx.Resources) {
	es, _, res := newStoreConn(tb)
	return es, res
}

func newStoreConn(tb testing.TB) (*natsx.EventStore, *natsx.Conn, natsx.Resources) {
	tb.Helper()
	conn, res := natstest.Connect(tb, natstest.RunServer(tb).URL(), 1)
	return natsx.NewEventStore(conn.JS), conn, res
}

func event(id string, v int, c domain.Change) domain.Event {
	return domain.Event{ID: id + "-e" + strconv.Itoa(v), ArticleID: id, Version: v, At: time.Now().UTC(), Change: c}
}

func create(title string) domain.Change {
	return domain.ArticleCreated{Fields: domain.Fields{Title: title, Slug: "t", Content: "c", AuthorID: "u", Status: domain.StatusDraft}}
}

func retitle(title string) domain.Change {
	return domain.ArticleUpdated{Changes: domain.Changes{Title: &title}}
}

func TestAppendExpectsLastSubjectSequence(t *testing.T) {
	es, _ := newStore(t)
	ctx := natstest.Context(t)
	created := event("a1", 1, create("T"))
	if seq, dup, err := es.Append(ctx, created, 0, "m1", ""); err != nil || seq != 1 || dup {
		t.Fatalf("create: %d %v %v", seq, dup, err)
	}
	// A second create of the same id expects 0 and must conflict.
	again := created
	again.ID = "other"
	if _, _, err := es.Append(ctx, again, 0, "m-other", ""); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second create: want ErrConflict, got %v", err)
	}
	// Another article's event in between does not disturb a1's sequence.
	if _, _, err := es.Append(ctx, event("b1", 1, create("B")), 0, "mb", ""); err != nil {
		t.Fatal(err)
	}
	upd := event("a1", 2, retitle("T2"))
	if seq, _, err := es.Append(ctx, upd, 1, "m2", "h2"); err != nil || seq != 3 {
		t.Fatalf("update: %d %v", seq, err)
	}
	// A stale expectation conflicts.
	if _, _, err := es.Append(ctx, event("a1", 2, retitle("T2")), 1, "m3", ""); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale: want ErrConflict, got %v", err)
	}
	// The retry of a publish that landed (same msg id, same expectation) is
	// recognised as our own, not a conflict (R1: sequence check before dedup).
	if seq, _, err := es.Append(ctx, upd, 1, "m2", "h2"); err != nil || seq != 3 {
		t.Fatalf("retry: %d %v", seq, err)
	}
	last, err := es.Last(ctx, "a1")
	if err != nil || last.Seq != 3 || last.MsgID != "m2" || last.RequestHash != "h2" {
		t.Fatalf("last: %+v %v", last, err)
	}
	if _, err := es.Last(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("last of unknown: %v", err)
	}
	h, err := es.History(ctx, "a1", 0)
	if err != nil || len(h.Events) != 2 || h.Events[0].Seq != 1 || h.Events[1].Seq != 3 || h.LastSeq != 3 {
		t.Fatalf("history: %+v %v", h, err)
	}
	if h.Fold.State.Article.Title != "T2" || h.Fold.State.Article.Version != 2 || h.Events[1].RequestHash != "h2" {
		t.Fatalf("history state: %+v", h.Fold)
	}
	if h, err = es.History(ctx, "a1", 2); err != nil || h.LastSeq != 1 || h.Fold.State.Article.Title != "T" {
		t.Fatalf("history up to 2: %+v %v", h, err)
	}
	if none, err := es.History(ctx, "nope", 0); err != nil || len(none.Events) != 0 || none.LastSeq != 0 {
		t.Fatalf("history of unknown: %+v %v", none, err)
	}
}

func TestAppendDeduplicatesByMsgID(t *testing.T) {
	es, res := newStore(t)
	ctx := natstest.Context(t)
	first, _, err := es.Append(ctx, event("x", 1, create("X")), 0, "same", "")
	if err != nil {
		t.Fatal(err)
	}
	// A different article id (a retried POST generates a new id) with the
	// same message id is de-duplicated and answers the original sequence.
	seq, dup, err := es.Append(ctx, event("y", 1, create("X")), 0, "same", "")
	if err != nil || !dup || seq != first {
		t.Fatalf("dup: %d %v %v", seq, dup, err)
	}
	info, err := res.Stream.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 (%v)", info.State.Msgs, err)
	}
}

// TestHistoryIsComplete reads articles whose history spans many batches,
// by count (600 events) and by bytes (100 versions of 100 000 characters,
// 8 readers at once): every read is the whole history.
func TestHistoryIsComplete(t *testing.T) {
	es, _ := newStore(t)
	ctx := natstest.Context(t)
	write := func(id string, versions int, body func(v int) string) {
		seq := uint64(0)
		for v := 1; v <= versions; v++ {
			c := retitle(body(v))
			if v == 1 {
				c = create(body(v))
			}
			s, _, err := es.Append(ctx, event(id, v, c), seq, id+strconv.Itoa(v), "")
			if err != nil {
				t.Fatal(err)
			}
			seq = s
		}
	}
	write("many", 600, strconv.Itoa)
	long := strings.Repeat("x", 100_000)
	write("long", 100, func(v int) string { return strconv.Itoa(v) + long })

	check := func(id string, versions int) error {
		// A deadline of its own: the point is completeness, on a machine
		// that may be busy, not speed.
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		h, err := es.History(ctx, id, 0)
		if err != nil {
			return err
		}
		if len(h.Events) != versions || h.Fold.State.Article.Version != versions {
			return errors.New(id + ": read " + strconv.Itoa(len(h.Events)) + " events")
		}
		return nil
	}
	if err := check("many", 600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- check("long", 100)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestHistorySkipsMessagesThatAreNotEvents publishes what is not a valid
// next event of an article on its subjects: the history leaves each out,
// says so, and ends at the last message, which the next append expects.
func TestHistorySkipsMessagesThatAreNotEvents(t *testing.T) {
	es, conn, _ := newStoreConn(t)
	ctx := natstest.Context(t)
	if _, _, err := es.Append(ctx, event("a", 1, create("A")), 0, "a1", ""); err != nil {
		t.Fatal(err)
	}
	other, err := events.Encode(event("b", 2, retitle("B")))
	if err != nil {
		t.Fatal(err)
	}
	wrongVersion, err := events.Encode(event("a", 99, retitle("far")))
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, data := range [][]byte{[]byte("not json"), other, wrongVersion} {
		ack, err := conn.JS.Publish(ctx, "articles.a.updated", data)
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	h, err := es.History(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 1 || len(h.Skipped) != 3 || h.LastSeq != last || h.Fold.Seq != 1 {
		t.Fatalf("history: %d events, skipped %+v, last %d, fold at %d", len(h.Events), h.Skipped, h.LastSeq, h.Fold.Seq)
	}
	// The next write expects the last message, poison or not.
	if _, _, err := es.Append(ctx, event("a", 2, retitle("A2")), last, "a2", ""); err != nil {
		t.Fatal(err)
	}
	if h, err = es.History(ctx, "a", 0); err != nil || h.Fold.State.Article.Title != "A2" {
		t.Fatalf("after the write: %+v %v", h.Fold, err)
	}
}

// TestHistoryReadsEverySubjectOfAnArticle: a history is read subject by
// subject (see EventStore.History), so it must still hold every message on
// the article's subjects, in stream order — those on subjects that no event
// uses, and, past the 1 024 subjects one multi-last get lists, all of them —
// and stop at upTo.
func TestHistoryReadsEverySubjectOfAnArticle(t *testing.T) {
	es, conn, _ := newStoreConn(t)
	ctx := natstest.Context(t)
	seq, _, err := es.Append(ctx, event("a", 1, create("A1")), 0, "a1", "")
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := es.Append(ctx, event("a", 2, retitle("A2")), seq, "a2", "")
	if err != nil {
		t.Fatal(err)
	}
	note, err := conn.JS.Publish(ctx, "articles.a.note.x", []byte("not an event"))
	if err != nil {
		t.Fatal(err)
	}
	third, _, err := es.Append(ctx, event("a", 3, retitle("A3")), note.Sequence, "a3", "")
	if err != nil {
		t.Fatal(err)
	}
	h, err := es.History(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 3 || len(h.Skipped) != 1 || h.Skipped[0].Seq != note.Sequence || h.LastSeq != third || h.Fold.State.Article.Title != "A3" {
		t.Fatalf("history: %d events, skipped %+v, last %d (want %d), title %q", len(h.Events), h.Skipped, h.LastSeq, third, h.Fold.State.Article.Title)
	}
	if h, err = es.History(ctx, "a", second); err != nil || len(h.Events) != 2 || len(h.Skipped) != 0 || h.LastSeq != second {
		t.Fatalf("history up to %d: %+v %v", second, h, err)
	}

	const subjects = 1100
	for i := range subjects {
		if _, err := conn.JS.PublishAsync("articles.b.s"+strconv.Itoa(i), []byte("not an event")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-conn.JS.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	last, err := es.Last(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	created, _, err := es.Append(ctx, event("b", 1, create("B")), last.Seq, "b1", "")
	if err != nil {
		t.Fatal(err)
	}
	if h, err = es.History(ctx, "b", 0); err != nil || len(h.Events) != 1 || len(h.Skipped) != subjects || h.LastSeq != created {
		t.Fatalf("history of b: %d events, %d skipped, last %d (want %d): %v", len(h.Events), len(h.Skipped), h.LastSeq, created, err)
	}
}
