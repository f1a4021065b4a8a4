package commandapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// fakeStore is an event log in memory behind the EventStore port, with the
// knobs the write path must cope with: a replica that lags behind the
// leader, another writer that appends first, and unavailability. The
// leader's view (Append, Last, Get) is always current; History reads the
// replica. The write path calls it from one goroutine at a time. How the
// adapter does the same against JetStream is tested in internal/natsx and
// internal/systest.
type fakeStore struct {
	log   []events.Message  // the leader's log; log[i].Seq == i+1
	ids   map[string]uint64 // message id → sequence: the duplicate window
	calls map[string]int    // method → calls

	lag      int    // messages at the end of the log the replica does not hold yet...
	lagReads int    // ...for this many more History reads (-1: for ever)
	down     bool   // every call answers domain.ErrUnavailable
	before   func() // runs once before the next Append lands: another writer gets in first
}

var _ EventStore = (*fakeStore)(nil)

func (f *fakeStore) call(method string) error {
	f.calls[method]++
	if f.down {
		return fmt.Errorf("%s: %w", method, domain.ErrUnavailable)
	}
	return nil
}

func (f *fakeStore) History(_ context.Context, id string, upTo uint64) (events.History, error) {
	if err := f.call("History"); err != nil {
		return events.History{}, err
	}
	visible := f.log
	if f.lagReads != 0 {
		visible = f.log[:max(len(f.log)-f.lag, 0)]
		if f.lagReads > 0 {
			f.lagReads--
		}
	}
	return f.replay(visible, id, upTo).History(), nil
}

func (f *fakeStore) Append(_ context.Context, e domain.Event, expect uint64, msgID, requestHash string) (uint64, bool, error) {
	if before := f.before; before != nil {
		f.before = nil
		before()
	}
	if err := f.call("Append"); err != nil {
		return 0, false, err
	}
	if seq, ok := f.ids[msgID]; ok {
		return seq, true, nil
	}
	if last := f.last(e.ArticleID); last.Seq != expect {
		return 0, false, fmt.Errorf("append v%d of %s after seq %d, the last is %d: %w", e.Version, e.ArticleID, expect, last.Seq, domain.ErrConflict)
	}
	return f.add(e, msgID, requestHash), false, nil
}

func (f *fakeStore) Last(_ context.Context, id string) (events.Message, error) {
	if err := f.call("Last"); err != nil {
		return events.Message{}, err
	}
	if m := f.last(id); m.Seq > 0 {
		return m, nil
	}
	return events.Message{}, fmt.Errorf("last event of %s: %w", id, domain.ErrNotFound)
}

func (f *fakeStore) Get(_ context.Context, seq uint64) (events.Message, error) {
	if err := f.call("Get"); err != nil {
		return events.Message{}, err
	}
	if seq == 0 || seq > uint64(len(f.log)) {
		return events.Message{}, fmt.Errorf("event %d: %w", seq, domain.ErrNotFound)
	}
	return f.log[seq-1], nil
}

// AppendBatch appends creates all or none; the bulk path is tested against
// JetStream (internal/natsx, internal/systest).
func (f *fakeStore) AppendBatch(_ context.Context, evs []domain.Event, msgIDs []string, requestHash string) (uint64, uint64, bool, error) {
	if err := f.call("AppendBatch"); err != nil {
		return 0, 0, false, err
	}
	if seq, ok := f.ids[msgIDs[0]]; ok {
		return seq, 0, true, nil
	}
	for _, e := range evs {
		if f.last(e.ArticleID).Seq != 0 {
			return 0, 0, false, fmt.Errorf("append batch: %w", domain.ErrConflict)
		}
	}
	var first, last uint64
	for i, e := range evs {
		last = f.add(e, msgIDs[i], requestHash)
		if i == 0 {
			first = last
		}
	}
	return first, last, false, nil
}

// Range returns the messages from sequence from to to.
func (f *fakeStore) Range(_ context.Context, from, to uint64) ([]events.Message, error) {
	if err := f.call("Range"); err != nil {
		return nil, err
	}
	return f.log[from-1 : min(to, uint64(len(f.log)))], nil
}

// Purge drops an article's messages before seq before (they stay in the
// log as nothing: an empty subject, so folds skip them).
func (f *fakeStore) Purge(_ context.Context, id string, before uint64) error {
	if err := f.call("Purge"); err != nil {
		return err
	}
	for i := range f.log[:min(before-1, uint64(len(f.log)))] {
		if aid, _ := events.ArticleIDFromSubject(f.log[i].Subject); aid == id {
			f.log[i] = events.Message{Seq: f.log[i].Seq}
		}
	}
	return nil
}

// last is the last message on the subjects of article id (Seq 0: none).
func (f *fakeStore) last(id string) events.Message {
	for i := len(f.log) - 1; i >= 0; i-- {
		if of, _ := events.ArticleIDFromSubject(f.log[i].Subject); of == id {
			return f.log[i]
		}
	}
	return events.Message{}
}

// replay folds the messages of article id in log up to upTo (0: all).
func (f *fakeStore) replay(log []events.Message, id string, upTo uint64) *events.Replay {
	r := events.NewReplay(id)
	for _, m := range log {
		if of, _ := events.ArticleIDFromSubject(m.Subject); of == id && (upTo == 0 || m.Seq <= upTo) {
			r.Add(m)
		}
	}
	return r
}

// add appends the message of e (or, for a test, raw bytes) and returns its sequence.
func (f *fakeStore) add(e any, msgID, requestHash string) uint64 {
	m := events.Message{Seq: uint64(len(f.log) + 1), MsgID: msgID, RequestHash: requestHash}
	switch e := e.(type) {
	case domain.Event:
		m.Subject, m.Data = events.SubjectOf(e), must(events.Encode(e))
	case events.Message:
		m.Subject, m.Data = e.Subject, e.Data
	}
	f.log = append(f.log, m)
	f.ids[msgID] = m.Seq
	return m.Seq
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// write is another writer: it decides cmd on the article as the leader
// has it and appends the event without asking.
func (f *fakeStore) write(tb testing.TB, id string, cmd func(domain.Meta) domain.Command) {
	tb.Helper()
	meta := domain.Meta{EventID: newID(), At: time.Now().UTC().Truncate(time.Microsecond), Actor: "other"}
	evs, err := domain.Decide(f.replay(f.log, id, 0).History().Fold.State, cmd(meta))
	if err != nil || len(evs) != 1 {
		tb.Fatalf("another writer's command on %s: %d events, %v", id, len(evs), err)
	}
	f.add(evs[0], meta.EventID, "")
}

// rig is a write service on a fake store.
type rig struct {
	store *fakeStore
	svc   *Service
	reg   *prometheus.Registry
}

func newRig(writeTimeout time.Duration) *rig {
	r := &rig{store: &fakeStore{ids: map[string]uint64{}, calls: map[string]int{}}, reg: prometheus.NewRegistry()}
	r.svc = New(r.store, Options{CacheBytes: 16 << 20, WriteTimeout: writeTimeout}, r.reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r
}

// metric is the value of a counter of the service's registry.
func (r *rig) metric(tb testing.TB, name string) float64 {
	tb.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	tb.Fatalf("no metric %s", name)
	return 0
}

// write runs req and fails unless it answers the article at version v
// with title.
func (r *rig) write(tb testing.TB, req request, v int, title string) result {
	tb.Helper()
	res, err := r.svc.write(context.Background(), req)
	if err != nil {
		tb.Fatalf("write %s: %v", req.id, err)
	}
	if res.state.Article.Version != v || res.state.Article.Title != title || res.seq == 0 {
		tb.Fatalf("result v%d %q at seq %d, want v%d %q", res.state.Article.Version, res.state.Article.Title, res.seq, v, title)
	}
	return res
}

// fail runs req and fails unless its error is want.
func (r *rig) fail(tb testing.TB, req request, want error) {
	tb.Helper()
	if _, err := r.svc.write(context.Background(), req); !errors.Is(err, want) {
		tb.Fatalf("write %s: %v, want %v", req.id, err, want)
	}
}

// requireCalls fails unless the store had the calls of want since before.
func (r *rig) requireCalls(tb testing.TB, before map[string]int, want map[string]int) {
	tb.Helper()
	for method, n := range want {
		if got := r.store.calls[method] - before[method]; got != n {
			tb.Fatalf("%d calls of %s, want %d (all calls: %v)", got, method, n, r.store.calls)
		}
	}
}

func (r *rig) calls() map[string]int {
	out := map[string]int{}
	for k, v := range r.store.calls {
		out[k] = v
	}
	return out
}

func fields(title string) domain.Fields {
	return domain.Fields{Title: title, Content: "c", AuthorID: "ada"}
}

func create(id, title string) func(domain.Meta) domain.Command {
	return func(m domain.Meta) domain.Command {
		return domain.CreateArticle{Meta: m, ID: id, Fields: fields(title)}
	}
}

func replace(id, title string, ifMatch ...int) func(domain.Meta) domain.Command {
	return func(m domain.Meta) domain.Command {
		c := domain.ReplaceArticle{Meta: m, ID: id, Fields: fields(title)}
		if len(ifMatch) > 0 {
			c.IfMatch = &ifMatch[0]
		}
		return c
	}
}

// req is a request of cmd on article id, with an Idempotency-Key's message
// id and request digest when key is not empty.
// editor is who writes in these tests: one who may do anything.
var editor = domain.Principal{Subject: "eve", Roles: domain.RoleEditor}

func req(id string, cmd func(domain.Meta) domain.Command, key, hash string) request {
	return request{id: id, key: key, hash: hash, by: editor, command: cmd}
}

// fresh is the create of a new id.
func fresh(id, title string) request {
	return request{id: id, fresh: true, by: editor, command: create(id, title)}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// ---- one test per step of Service.write ----

func TestWriteLoad(t *testing.T) {
	t.Run("a fresh id is not read", func(t *testing.T) {
		r := newRig(time.Second)
		r.write(t, fresh(newID(), "Fresh"), 1, "Fresh")
		r.requireCalls(t, nil, map[string]int{"History": 0, "Last": 0, "Append": 1})
	})
	t.Run("the history is read once and kept", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.store.write(t, id, create(id, "Written elsewhere"))
		r.write(t, req(id, replace(id, "Second"), "", ""), 2, "Second")
		r.write(t, req(id, replace(id, "Third", 2), "", ""), 3, "Third")
		r.requireCalls(t, nil, map[string]int{"History": 1, "Append": 2})
	})
	t.Run("skipped messages are counted once", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.store.write(t, id, create(id, "Poisoned"))
		r.store.add(events.Message{Subject: events.Subject(id, events.ArticleUpdated), Data: []byte("not json")}, "poison", "")
		r.write(t, req(id, replace(id, "After the poison"), "", ""), 2, "After the poison")
		r.svc.aggs.forget(id) // read the history again: the same message is not counted twice
		r.write(t, req(id, replace(id, "Again"), "", ""), 3, "Again")
		if n := r.metric(t, "inkstream_skipped_messages_total"); n != 1 {
			t.Fatalf("skipped messages counted %v, want 1", n)
		}
	})
	t.Run("an unavailable store is ErrUnavailable", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.store.down = true
		r.fail(t, req(id, replace(id, "Down"), "", ""), domain.ErrUnavailable)
	})
}

func TestWriteDecide(t *testing.T) {
	r := newRig(time.Second)
	id := newID()
	t.Run("the event carries a new UUIDv7, the time and the actor", func(t *testing.T) {
		rq := fresh(id, "Decided")
		rq.by = domain.Principal{Subject: "ada", Roles: domain.RoleEditor}
		before := time.Now().UTC().Truncate(time.Microsecond)
		r.write(t, rq, 1, "Decided")
		m := r.store.last(id)
		e, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := uuid.Parse(e.ID); err != nil || u.Version() != 7 || m.MsgID != e.ID {
			t.Fatalf("event id %q (message id %q): want a UUIDv7, also the message id", e.ID, m.MsgID)
		}
		if e.Actor != "ada" || e.At.Before(before) || !e.At.Equal(e.At.Truncate(time.Microsecond)) || e.At.Location() != time.UTC {
			t.Fatalf("event actor %q at %v, want ada now, in UTC microseconds", e.Actor, e.At)
		}
	})
	t.Run("no change appends nothing", func(t *testing.T) {
		before := r.calls()
		r.write(t, req(id, replace(id, "Decided"), "", ""), 1, "Decided")
		r.requireCalls(t, before, map[string]int{"Append": 0})
	})
	invalid := func(m domain.Meta) domain.Command {
		return domain.ReplaceArticle{Meta: m, ID: id, Fields: domain.Fields{Content: "no title", AuthorID: "ada"}}
	}
	for _, tc := range []struct {
		name string
		req  request
		want error
	}{
		{"an invalid command is ErrInvalid", req(id, invalid, "", ""), domain.ErrInvalid},
		{"a stale If-Match is ErrPreconditionFailed", req(id, replace(id, "Late", 7), "", ""), domain.ErrPreconditionFailed},
		{"a write to an unknown id is ErrNotFound", req("nobody", replace("nobody", "Nobody"), "", ""), domain.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.calls()
			r.fail(t, tc.req, tc.want)
			r.requireCalls(t, before, map[string]int{"Append": 0})
		})
	}
}

func TestWriteSettle(t *testing.T) {
	// A state cached by an earlier request may be stale: another instance
	// may have written since. Before it answers 404, 412 or "no change" on
	// it, the write confirms it against the leader and decides again.
	for _, tc := range []struct {
		name string
		// setup leaves this instance with a stale cache of the article;
		// another writer's last write made it version 2.
		setup func(t *testing.T, r *rig, id string)
		cmd   func(id string) func(domain.Meta) domain.Command
	}{
		{"a write equal to the stale state is a change", func(t *testing.T, r *rig, id string) {
			r.write(t, fresh(id, "Mine"), 1, "Mine")
			r.store.write(t, id, replace(id, "Theirs"))
		}, func(id string) func(domain.Meta) domain.Command { return replace(id, "Mine") }},
		{"a current If-Match is not a 412", func(t *testing.T, r *rig, id string) {
			r.write(t, fresh(id, "Mine"), 1, "Mine")
			r.store.write(t, id, replace(id, "Theirs"))
		}, func(id string) func(domain.Meta) domain.Command { return replace(id, "Mine", 2) }},
		{"an article created elsewhere is not a 404", func(t *testing.T, r *rig, id string) {
			r.fail(t, req(id, replace(id, "Mine"), "", ""), domain.ErrNotFound)
			r.store.write(t, id, create(id, "Created"))
			r.store.write(t, id, replace(id, "Theirs"))
		}, func(id string) func(domain.Meta) domain.Command { return replace(id, "Mine") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(time.Second)
			id := newID()
			tc.setup(t, r, id)
			before := r.calls()
			r.write(t, req(id, tc.cmd(id), "", ""), 3, "Mine")
			r.requireCalls(t, before, map[string]int{"Last": 1, "History": 1, "Append": 1})
		})
	}
	t.Run("a state just read is confirmed once", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.store.write(t, id, create(id, "Theirs"))
		r.fail(t, req(id, replace(id, "Mine", 5), "", ""), domain.ErrPreconditionFailed)
		r.requireCalls(t, nil, map[string]int{"History": 1, "Last": 1, "Append": 0})
	})
	t.Run("a lagging replica is read again, never a 404", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			lagReads int
			want     error
		}{{"until it catches up", 3, nil}, {"until the write timeout", -1, domain.ErrUnavailable}} {
			t.Run(tc.name, func(t *testing.T) {
				r := newRig(300 * time.Millisecond)
				id := newID()
				r.store.write(t, id, create(id, "On the leader"))
				r.store.lag, r.store.lagReads = 1, tc.lagReads
				if tc.want == nil {
					r.write(t, req(id, replace(id, "Mine"), "", ""), 2, "Mine")
				} else {
					r.fail(t, req(id, replace(id, "Mine"), "", ""), tc.want)
				}
				// The leader's last sequence, asked once, is what the
				// replica's reads must reach.
				if c := r.store.calls; c["History"] < 2 || c["Last"] != 1 {
					t.Fatalf("calls %v: want the replica read again, the leader asked once", c)
				}
			})
		}
	})
	t.Run("a retried delete that landed answers the original", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		del := func(m domain.Meta) domain.Command { return domain.DeleteArticle{Meta: m, ID: id} }
		r.write(t, fresh(id, "Doomed"), 1, "Doomed")
		first := r.write(t, req(id, del, "idem-delete", "hash-1"), 2, "Doomed")
		if again := r.write(t, req(id, del, "idem-delete", "hash-1"), 2, "Doomed"); !again.state.Deleted || again.seq != first.seq {
			t.Fatalf("retry answered %+v at seq %d, want the delete at seq %d", again.state, again.seq, first.seq)
		}
		r.fail(t, req(id, del, "idem-delete", "hash-2"), domain.ErrIdempotencyMismatch)
		r.fail(t, req(id, del, "idem-other", "hash-1"), domain.ErrNotFound)
	})
}

func TestWriteAppend(t *testing.T) {
	t.Run("a lost race is caught up and decided again", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, fresh(id, "Mine"), 1, "Mine")
		r.store.before = func() { r.store.write(t, id, replace(id, "Theirs")) }
		r.write(t, req(id, replace(id, "Mine again"), "", ""), 3, "Mine again")
		if n := r.metric(t, "inkstream_command_conflicts_total"); n != 1 {
			t.Fatalf("conflicts counted %v, want 1", n)
		}
		// One other write got in: its message is enough, no History.
		r.requireCalls(t, nil, map[string]int{"History": 0, "Last": 1, "Append": 3})
	})
	t.Run("a lost race under If-Match is a 412", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, fresh(id, "Mine"), 1, "Mine")
		r.store.before = func() { r.store.write(t, id, replace(id, "Theirs")) }
		r.fail(t, req(id, replace(id, "Mine again", 1), "", ""), domain.ErrPreconditionFailed)
	})
	t.Run("a duplicate message id answers the original write", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, fresh(id, "First"), 1, "First")
		first := r.write(t, req(id, replace(id, "Keyed"), "idem-put", "hash-1"), 2, "Keyed")
		r.write(t, req(id, replace(id, "Later"), "", ""), 3, "Later")
		// The retry decides a change on v3, and the log answers the duplicate.
		if again := r.write(t, req(id, replace(id, "Keyed"), "idem-put", "hash-1"), 2, "Keyed"); again.seq != first.seq {
			t.Fatalf("retry answered seq %d, the original is at %d", again.seq, first.seq)
		}
		r.fail(t, req(id, replace(id, "Other body"), "idem-put", "hash-2"), domain.ErrIdempotencyMismatch)
		// The aggregate was loaded again: the next write goes on from v3.
		r.write(t, req(id, replace(id, "Next"), "", ""), 4, "Next")
	})
	t.Run("losing every race ends at the write timeout, nothing written", func(t *testing.T) {
		r := newRig(200 * time.Millisecond)
		id := newID()
		r.write(t, fresh(id, "Mine"), 1, "Mine")
		var interfere func()
		interfere = func() {
			r.store.write(t, id, replace(id, fmt.Sprintf("Theirs %d", len(r.store.log))))
			r.store.before = interfere
		}
		r.store.before = interfere
		r.fail(t, req(id, replace(id, "Never"), "", ""), domain.ErrUnavailable)
		r.store.before = nil
		if strings.Contains(string(r.store.last(id).Data), "Never") {
			t.Fatal("the write that timed out was appended")
		}
	})
}

func TestWriteCatchUp(t *testing.T) {
	r := newRig(time.Second)
	id := newID()
	r.write(t, fresh(id, "Mine"), 1, "Mine")
	// Two other writes get in: the last message does not follow the cached
	// state, so the next attempt loads the whole history.
	r.store.before = func() {
		r.store.write(t, id, replace(id, "Theirs 1"))
		r.store.write(t, id, replace(id, "Theirs 2"))
	}
	r.write(t, req(id, replace(id, "Mine again"), "", ""), 4, "Mine again")
	r.requireCalls(t, nil, map[string]int{"History": 1, "Last": 1})
}

func TestWriteOriginal(t *testing.T) {
	// A retry recognised by its message id is answered with the state right
	// after the original event, read from a replica that may lag behind.
	r := newRig(time.Second)
	id := newID()
	r.write(t, fresh(id, "First"), 1, "First")
	first := r.write(t, req(id, replace(id, "Keyed"), "idem-put", "hash-1"), 2, "Keyed")
	r.write(t, req(id, replace(id, "Later"), "", ""), 3, "Later")
	// The replica holds neither the original (seq 2) nor what came after.
	r.store.lag, r.store.lagReads = 2, 3
	before := r.calls()
	if again := r.write(t, req(id, replace(id, "Keyed"), "idem-put", "hash-1"), 2, "Keyed"); again.seq != first.seq {
		t.Fatalf("retry answered seq %d, the original is at %d", again.seq, first.seq)
	}
	// Three reads on the lagging replica, one that holds the original.
	r.requireCalls(t, before, map[string]int{"History": 4})
}

// TestCreateRetriedOverHTTP posts one article twice with one
// Idempotency-Key through the handlers: the retry answers the original
// article and writes nothing; the same key with another body is a 422.
func TestCreateRetriedOverHTTP(t *testing.T) {
	r := newRig(time.Second)
	app := httpx.NewApp("test", 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	app.Use(func(c *fiber.Ctx) error { httpx.SetPrincipal(c, editor); return c.Next() })
	r.svc.Routes(app)
	post := func(body string) string {
		t.Helper()
		rq := httptest.NewRequest(http.MethodPost, "/api/articles", strings.NewReader(body))
		rq.Header.Set("Content-Type", "application/json")
		rq.Header.Set(HeaderIdempotencyKey, "create-1")
		resp, err := app.Test(rq, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %s %s %s %s", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("ETag"), resp.Header.Get(HeaderEventSeq), b)
	}
	body := `{"title":"Once","content":"c","author_id":"ada"}`
	if first, again := post(body), post(body); !strings.HasPrefix(first, "201 /api/articles/") || again != first {
		t.Fatalf("first answer %s\nretry answer %s", first, again)
	}
	if len(r.store.log) != 1 {
		t.Fatalf("%d events: the retry must write nothing", len(r.store.log))
	}
	if got := post(`{"title":"Another","content":"c","author_id":"ada"}`); !strings.HasPrefix(got, "422 ") {
		t.Fatalf("the key with another body: %s", got)
	}
}
