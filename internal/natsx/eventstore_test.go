package natsx_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

func testNATS(url string) config.NATS {
	return config.NATS{URL: url, Name: "test", StreamReplicas: 1, KVReplicas: 1, DuplicateWindow: 2 * time.Minute, Provision: true}
}

func newStore(tb testing.TB) (*natsx.EventStore, *natsx.Conn, natsx.Resources) {
	tb.Helper()
	srv := natstest.RunServer(tb)
	ctx := natstest.Context(tb)
	conn, err := natsx.Connect(ctx, testNATS(srv.URL()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(conn.NC.Close)
	res, err := natsx.Provision(ctx, conn.JS, testNATS(srv.URL()))
	if err != nil {
		tb.Fatal(err)
	}
	return natsx.NewEventStore(conn.JS, res.Stream), conn, res
}

func event(tb testing.TB, id string, t events.Type, v int, data any) events.Envelope {
	tb.Helper()
	e, err := events.NewEnvelope(id+"-e"+string(rune('0'+v)), t, id, v, time.Now(), data)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestAppendExpectsLastSubjectSequence(t *testing.T) {
	es, _, _ := newStore(t)
	ctx := natstest.Context(t)
	created := event(t, "a1", events.ArticleCreated, 1, events.ArticleData{Title: "T", Slug: "t", Content: "c", AuthorID: "u", Status: "draft"})
	ack, err := es.Append(ctx, created, 0, "m1", "")
	if err != nil || ack.Seq != 1 || ack.Duplicate {
		t.Fatalf("create: %+v %v", ack, err)
	}
	// A second create of the same id expects 0 and must conflict.
	again := created
	again.ID = "other"
	if _, err := es.Append(ctx, again, 0, "m-other", ""); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second create: want ErrConflict, got %v", err)
	}
	// Another article's event in between does not disturb a1's sequence.
	if _, err := es.Append(ctx, event(t, "b1", events.ArticleCreated, 1, events.ArticleData{Title: "B"}), 0, "mb", ""); err != nil {
		t.Fatal(err)
	}
	title := "T2"
	upd := event(t, "a1", events.ArticleUpdated, 2, events.ArticleChanges{Title: &title})
	ack, err = es.Append(ctx, upd, 1, "m2", "h2")
	if err != nil || ack.Seq != 3 {
		t.Fatalf("update: %+v %v", ack, err)
	}
	// A stale expectation conflicts.
	stale := event(t, "a1", events.ArticleUpdated, 2, events.ArticleChanges{Title: &title})
	if _, err := es.Append(ctx, stale, 1, "m3", ""); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale: want ErrConflict, got %v", err)
	}
	// The retry of a publish that landed (same msg id, same expectation) is
	// recognised as our own, not a conflict (R1: sequence check before dedup).
	ack, err = es.Append(ctx, upd, 1, "m2", "h2")
	if err != nil || ack.Seq != 3 {
		t.Fatalf("retry: %+v %v", ack, err)
	}
	last, err := es.Last(ctx, "a1")
	if err != nil || last.Seq != 3 || last.MsgID != "m2" || last.RequestHash != "h2" {
		t.Fatalf("last: %+v %v", last, err)
	}
	if _, err := es.Last(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("last of unknown: %v", err)
	}
	evs, err := es.Load(ctx, "a1", 0)
	if err != nil || len(evs) != 2 || evs[0].Seq != 1 || evs[1].Seq != 3 {
		t.Fatalf("load: %+v %v", evs, err)
	}
	st, seq, err := es.State(ctx, "a1", 0)
	if err != nil || seq != 3 || st.Article.Title != "T2" || st.Article.Version != 2 {
		t.Fatalf("state: %+v %d %v", st, seq, err)
	}
	st, seq, err = es.State(ctx, "a1", 2)
	if err != nil || seq != 1 || st.Article.Title != "T" {
		t.Fatalf("state up to 2: %+v %d %v", st, seq, err)
	}
	none, err := es.Load(ctx, "nope", 0)
	if err != nil || len(none) != 0 {
		t.Fatalf("load unknown: %v %v", none, err)
	}
}

func TestAppendDeduplicatesByMsgID(t *testing.T) {
	es, _, res := newStore(t)
	ctx := natstest.Context(t)
	e := event(t, "x", events.ArticleCreated, 1, events.ArticleData{Title: "X"})
	first, err := es.Append(ctx, e, 0, "same", "")
	if err != nil {
		t.Fatal(err)
	}
	// A different article id (a retried POST generates a new id) with the
	// same message id is de-duplicated and answers the original sequence.
	e2 := event(t, "y", events.ArticleCreated, 1, events.ArticleData{Title: "X"})
	dup, err := es.Append(ctx, e2, 0, "same", "")
	if err != nil || !dup.Duplicate || dup.Seq != first.Seq {
		t.Fatalf("dup: %+v %v", dup, err)
	}
	info, err := res.Stream.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 (%v)", info.State.Msgs, err)
	}
}

func TestLoadManyEvents(t *testing.T) {
	es, _, _ := newStore(t)
	ctx := natstest.Context(t)
	if _, err := es.Append(ctx, event(t, "m", events.ArticleCreated, 1, events.ArticleData{Title: "0"}), 0, "c", ""); err != nil {
		t.Fatal(err)
	}
	seq := uint64(1)
	for v := 2; v <= 600; v++ {
		title := time.Now().String()
		e, _ := events.NewEnvelope("e"+title, events.ArticleUpdated, "m", v, time.Now(), events.ArticleChanges{Title: &title})
		ack, err := es.Append(ctx, e, seq, e.ID+string(rune(v)), "")
		if err != nil {
			t.Fatal(err)
		}
		seq = ack.Seq
	}
	evs, err := es.Load(ctx, "m", 0)
	if err != nil || len(evs) != 600 {
		t.Fatalf("loaded %d events, want 600 (%v)", len(evs), err)
	}
	for i, se := range evs {
		if se.Event.Version != i+1 {
			t.Fatalf("event %d has version %d", i, se.Event.Version)
		}
	}
}
