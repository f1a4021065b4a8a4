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
	"sync"
	"testing"
	"time"

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
// replica. Behaviour against a real JetStream is tested in internal/natsx
// and internal/systest.
type fakeStore struct {
	mu    sync.Mutex
	log   []events.Message  // the leader's log; log[i].Seq == i+1
	ids   map[string]uint64 // message id → sequence: the duplicate window
	calls map[string]int    // method → calls

	lag      int    // messages at the end of the log the replica does not hold yet...
	lagReads int    // ...for this many more History reads (-1: for ever)
	down     bool   // every call answers domain.ErrUnavailable
	before   func() // runs before the next Append lands (another writer gets in first)
}

var _ EventStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{ids: map[string]uint64{}, calls: map[string]int{}}
}

// call counts a call of method and says whether the store is down.
func (f *fakeStore) call(method string) error {
	f.calls[method]++
	if f.down {
		return fmt.Errorf("%s: %w", method, domain.ErrUnavailable)
	}
	return nil
}

func (f *fakeStore) History(_ context.Context, id string, upTo uint64) (events.History, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
	r := events.NewReplay(id)
	for _, m := range visible {
		if of, ok := events.ArticleIDFromSubject(m.Subject); ok && of == id && (upTo == 0 || m.Seq <= upTo) {
			r.Add(m)
		}
	}
	return r.History(), nil
}

func (f *fakeStore) Append(_ context.Context, e domain.Event, expect uint64, msgID, requestHash string) (uint64, bool, error) {
	f.mu.Lock()
	before := f.before
	f.before = nil
	f.mu.Unlock()
	if before != nil {
		before()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Append"); err != nil {
		return 0, false, err
	}
	if seq, ok := f.ids[msgID]; ok {
		return seq, true, nil
	}
	if last := f.last(e.ArticleID); last.Seq != expect {
		return 0, false, fmt.Errorf("append v%d of %s after seq %d, the last is %d: %w", e.Version, e.ArticleID, expect, last.Seq, domain.ErrConflict)
	}
	data, err := events.Encode(e)
	if err != nil {
		return 0, false, err
	}
	return f.add(events.SubjectOf(e), data, msgID, requestHash), false, nil
}

func (f *fakeStore) Last(_ context.Context, id string) (events.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Last"); err != nil {
		return events.Message{}, err
	}
	if m := f.last(id); m.Seq > 0 {
		return m, nil
	}
	return events.Message{}, fmt.Errorf("last event of %s: %w", id, domain.ErrNotFound)
}

func (f *fakeStore) Get(_ context.Context, seq uint64) (events.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Get"); err != nil {
		return events.Message{}, err
	}
	if seq == 0 || seq > uint64(len(f.log)) {
		return events.Message{}, fmt.Errorf("event %d: %w", seq, domain.ErrNotFound)
	}
	return f.log[seq-1], nil
}

// last is the last message on the subjects of article id (Seq 0: none).
func (f *fakeStore) last(id string) events.Message {
	for i := len(f.log) - 1; i >= 0; i-- {
		if of, ok := events.ArticleIDFromSubject(f.log[i].Subject); ok && of == id {
			return f.log[i]
		}
	}
	return events.Message{}
}

// add appends a message as it is and returns its sequence.
func (f *fakeStore) add(subject string, data []byte, msgID, requestHash string) uint64 {
	seq := uint64(len(f.log) + 1)
	f.log = append(f.log, events.Message{Seq: seq, Subject: subject, Data: data, MsgID: msgID, RequestHash: requestHash})
	if msgID != "" {
		f.ids[msgID] = seq
	}
	return seq
}

// write is another writer: it decides cmd on the article as the leader
// has it and appends the event.
func (f *fakeStore) write(tb testing.TB, id string, cmd func(domain.Meta) domain.Command) domain.Event {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	r := events.NewReplay(id)
	for _, m := range f.log {
		if of, _ := events.ArticleIDFromSubject(m.Subject); of == id {
			r.Add(m)
		}
	}
	evID := uuid.Must(uuid.NewV7()).String()
	evs, err := domain.Decide(r.History().Fold.State, cmd(domain.Meta{EventID: evID, At: time.Now().UTC().Truncate(time.Microsecond), Actor: "other"}))
	if err != nil || len(evs) != 1 {
		tb.Fatalf("another writer's command on %s: %d events, %v", id, len(evs), err)
	}
	data, err := events.Encode(evs[0])
	if err != nil {
		tb.Fatal(err)
	}
	f.add(events.SubjectOf(evs[0]), data, evID, "")
	return evs[0]
}

// counts returns the calls of each method so far.
func (f *fakeStore) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.calls))
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

// set changes the knobs under the store's lock.
func (f *fakeStore) set(change func(f *fakeStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// ---- the service under test and its requests ----

type rig struct {
	store *fakeStore
	svc   *Service
	reg   *prometheus.Registry
}

func newRig(writeTimeout time.Duration) *rig {
	r := &rig{store: newFakeStore(), reg: prometheus.NewRegistry()}
	r.svc = New(r.store, Options{CacheSize: 1000, WriteTimeout: writeTimeout}, r.reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
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

// write runs req and fails the test unless it succeeds.
func (r *rig) write(tb testing.TB, req request) result {
	tb.Helper()
	res, err := r.svc.write(context.Background(), req)
	if err != nil {
		tb.Fatalf("write %s: %v", req.id, err)
	}
	return res
}

func fields(title string) domain.Fields {
	return domain.Fields{Title: title, Content: "content", AuthorID: "ada"}
}

func createReq(id string, f domain.Fields) request {
	return request{id: id, fresh: true, command: func(m domain.Meta) domain.Command {
		return domain.CreateArticle{Meta: m, ID: id, Fields: f}
	}}
}

func replaceReq(id string, f domain.Fields, ifMatch *int) request {
	return request{id: id, command: func(m domain.Meta) domain.Command {
		return domain.ReplaceArticle{Meta: m, ID: id, Fields: f, IfMatch: ifMatch}
	}}
}

func deleteReq(id string) request {
	return request{id: id, command: func(m domain.Meta) domain.Command { return domain.DeleteArticle{Meta: m, ID: id} }}
}

// keyed is req retried under an Idempotency-Key: msgID and request digest.
func keyed(req request, key, hash string) request {
	req.key, req.hash = key, hash
	return req
}

func createCmd(id, title string) func(domain.Meta) domain.Command {
	return func(m domain.Meta) domain.Command {
		return domain.CreateArticle{Meta: m, ID: id, Fields: fields(title)}
	}
}

func replaceCmd(id, title string) func(domain.Meta) domain.Command {
	return func(m domain.Meta) domain.Command {
		return domain.ReplaceArticle{Meta: m, ID: id, Fields: fields(title)}
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func version(v int) *int { return &v }

// requireState fails unless res is the article at version v with title.
func requireState(tb testing.TB, res result, v int, title string) {
	tb.Helper()
	if res.state.Article.Version != v || res.state.Article.Title != title || res.seq == 0 {
		tb.Fatalf("result v%d %q at seq %d, want v%d %q", res.state.Article.Version, res.state.Article.Title, res.seq, v, title)
	}
}

// ---- one test per step of Service.write ----

func TestWriteLoad(t *testing.T) {
	t.Run("a fresh id is not read", func(t *testing.T) {
		r := newRig(time.Second)
		res := r.write(t, createReq(newID(), fields("Fresh")))
		requireState(t, res, 1, "Fresh")
		if c := r.store.counts(); c["History"] != 0 || c["Last"] != 0 || c["Append"] != 1 {
			t.Fatalf("calls %v: a fresh id must append without a read", c)
		}
	})
	t.Run("the history is read once and kept", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.store.write(t, id, createCmd(id, "Written elsewhere"))
		requireState(t, r.write(t, replaceReq(id, fields("Second"), nil)), 2, "Second")
		requireState(t, r.write(t, replaceReq(id, fields("Third"), version(2))), 3, "Third")
		if c := r.store.counts(); c["History"] != 1 || c["Append"] != 2 {
			t.Fatalf("calls %v, want one History read for two writes", c)
		}
	})
	t.Run("skipped messages are counted once", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.store.write(t, id, createCmd(id, "Poisoned"))
		r.store.set(func(f *fakeStore) { f.add(events.Subject(id, events.ArticleUpdated), []byte("not json"), "poison", "") })
		requireState(t, r.write(t, replaceReq(id, fields("After the poison"), nil)), 2, "After the poison")
		r.svc.aggs.forget(id) // read the history again: the same message is not counted twice
		requireState(t, r.write(t, replaceReq(id, fields("Again"), nil)), 3, "Again")
		if n := r.metric(t, "inkstream_skipped_messages_total"); n != 1 {
			t.Fatalf("skipped messages counted %v, want 1", n)
		}
	})
	t.Run("an unavailable store is ErrUnavailable", func(t *testing.T) {
		r := newRig(time.Second)
		r.store.set(func(f *fakeStore) { f.down = true })
		if _, err := r.svc.write(context.Background(), replaceReq(newID(), fields("x"), nil)); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("write on a store that is down: %v, want ErrUnavailable", err)
		}
	})
}

func TestWriteDecide(t *testing.T) {
	r := newRig(time.Second)
	id := newID()
	t.Run("the event carries a new UUIDv7, the time and the actor", func(t *testing.T) {
		req := createReq(id, fields("Decided"))
		req.actor = "ada"
		before := time.Now().UTC()
		r.write(t, req)
		m, err := r.store.Last(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := uuid.Parse(e.ID); err != nil || u.Version() != 7 || m.MsgID != e.ID {
			t.Fatalf("event id %q (message id %q): want a UUIDv7, also the message id", e.ID, m.MsgID)
		}
		if e.Actor != "ada" || e.At.Before(before.Truncate(time.Microsecond)) || !e.At.Equal(e.At.Truncate(time.Microsecond)) || e.At.Location() != time.UTC {
			t.Fatalf("event actor %q at %v, want ada now, in UTC microseconds", e.Actor, e.At)
		}
	})
	t.Run("no change appends nothing", func(t *testing.T) {
		appends := r.store.counts()["Append"]
		res := r.write(t, replaceReq(id, fields("Decided"), nil))
		requireState(t, res, 1, "Decided")
		if n := r.store.counts()["Append"]; n != appends {
			t.Fatalf("a write that changes nothing appended %d events", n-appends)
		}
	})
	for _, tc := range []struct {
		name string
		req  request
		want error
	}{
		{"an invalid command is ErrInvalid", replaceReq(id, domain.Fields{Content: "no title", AuthorID: "ada"}, nil), domain.ErrInvalid},
		{"a stale If-Match is ErrPreconditionFailed", replaceReq(id, fields("Late"), version(7)), domain.ErrPreconditionFailed},
		{"a write to an unknown id is ErrNotFound", replaceReq(newID(), fields("Nobody"), nil), domain.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appends := r.store.counts()["Append"]
			if _, err := r.svc.write(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if n := r.store.counts()["Append"]; n != appends {
				t.Fatalf("a refused write appended %d events", n-appends)
			}
		})
	}
}

func TestWriteSettle(t *testing.T) {
	// A state cached by an earlier request may be stale: another instance
	// may have written since. Before it answers 404, 412 or "no change" on
	// it, the write confirms it against the leader and decides again.
	for _, tc := range []struct {
		name string
		// setup leaves this instance with a stale cache of id; the others'
		// last write made the article's version 2 with title "Theirs".
		setup func(t *testing.T, r *rig, id string)
		req   func(id string) request
	}{
		{"a write equal to the stale state is a change", func(t *testing.T, r *rig, id string) {
			r.write(t, createReq(id, fields("Mine")))
			r.store.write(t, id, replaceCmd(id, "Theirs"))
		}, func(id string) request { return replaceReq(id, fields("Mine"), nil) }},
		{"a current If-Match is not a 412", func(t *testing.T, r *rig, id string) {
			r.write(t, createReq(id, fields("Mine")))
			r.store.write(t, id, replaceCmd(id, "Theirs"))
		}, func(id string) request { return replaceReq(id, fields("Mine"), version(2)) }},
		{"an article created elsewhere is not a 404", func(t *testing.T, r *rig, id string) {
			if _, err := r.svc.write(context.Background(), replaceReq(id, fields("Mine"), nil)); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("write before the create: %v, want ErrNotFound", err)
			}
			r.store.write(t, id, createCmd(id, "Created"))
			r.store.write(t, id, replaceCmd(id, "Theirs"))
		}, func(id string) request { return replaceReq(id, fields("Mine"), nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(time.Second)
			id := newID()
			tc.setup(t, r, id)
			before := r.store.counts()
			requireState(t, r.write(t, tc.req(id)), 3, "Mine")
			if c := r.store.counts(); c["Last"] != before["Last"]+1 || c["History"] != before["History"]+1 {
				t.Fatalf("calls %v after %v: want one Last to confirm and one History to reload", c, before)
			}
		})
	}

	t.Run("a state just read is confirmed once", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.store.write(t, id, createCmd(id, "Theirs"))
		// The history just read is confirmed by one Last; the 412 follows.
		if _, err := r.svc.write(context.Background(), replaceReq(id, fields("Mine"), version(5))); !errors.Is(err, domain.ErrPreconditionFailed) {
			t.Fatalf("err %v, want ErrPreconditionFailed", err)
		}
		if c := r.store.counts(); c["Last"] != 1 || c["History"] != 1 || c["Append"] != 0 {
			t.Fatalf("calls %v", c)
		}
	})

	t.Run("a lagging replica is read again, never a 404", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			lagReads int
			want     error
		}{
			{"until it catches up", 3, nil},
			{"until the write timeout", -1, domain.ErrUnavailable},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := newRig(300 * time.Millisecond)
				id := newID()
				r.store.write(t, id, createCmd(id, "On the leader"))
				r.store.set(func(f *fakeStore) { f.lag, f.lagReads = 1, tc.lagReads })
				res, err := r.svc.write(context.Background(), replaceReq(id, fields("Mine"), nil))
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				if tc.want == nil {
					requireState(t, res, 2, "Mine")
				}
				// The leader's last sequence, asked once, is what the
				// replica's reads must reach.
				if c := r.store.counts(); c["History"] < 2 || c["Last"] != 1 {
					t.Fatalf("calls %v: want the replica read again, the leader asked once", c)
				}
			})
		}
	})

	t.Run("a retried delete that landed answers the original", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, createReq(id, fields("Doomed")))
		first := r.write(t, keyed(deleteReq(id), "idem-delete", "hash-1"))
		again := r.write(t, keyed(deleteReq(id), "idem-delete", "hash-1"))
		if !again.state.Deleted || again.seq != first.seq || again.state.Article.Version != 2 {
			t.Fatalf("retry answered %+v at seq %d, want the delete at seq %d", again.state, again.seq, first.seq)
		}
		if _, err := r.svc.write(context.Background(), keyed(deleteReq(id), "idem-delete", "hash-2")); !errors.Is(err, domain.ErrIdempotencyMismatch) {
			t.Fatalf("the key with another request: %v, want ErrIdempotencyMismatch", err)
		}
		if _, err := r.svc.write(context.Background(), keyed(deleteReq(id), "idem-other", "hash-1")); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("another key on a deleted article: %v, want ErrNotFound", err)
		}
	})
}

func TestWriteAppend(t *testing.T) {
	t.Run("a lost race is caught up and decided again", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, createReq(id, fields("Mine")))
		r.store.set(func(f *fakeStore) { f.before = func() { f.write(t, id, replaceCmd(id, "Theirs")) } })
		requireState(t, r.write(t, replaceReq(id, fields("Mine again"), nil)), 3, "Mine again")
		if n := r.metric(t, "inkstream_command_conflicts_total"); n != 1 {
			t.Fatalf("conflicts counted %v, want 1", n)
		}
		// One other write got in: the last message is enough, no History.
		if c := r.store.counts(); c["History"] != 0 || c["Last"] != 1 || c["Append"] != 3 {
			t.Fatalf("calls %v", c)
		}
	})
	t.Run("a lost race under If-Match is a 412", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, createReq(id, fields("Mine")))
		r.store.set(func(f *fakeStore) { f.before = func() { f.write(t, id, replaceCmd(id, "Theirs")) } })
		if _, err := r.svc.write(context.Background(), replaceReq(id, fields("Mine again"), version(1))); !errors.Is(err, domain.ErrPreconditionFailed) {
			t.Fatalf("err %v, want ErrPreconditionFailed", err)
		}
	})
	t.Run("a duplicate message id answers the original write", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, createReq(id, fields("First")))
		first := r.write(t, keyed(replaceReq(id, fields("Keyed"), nil), "idem-put", "hash-1"))
		r.write(t, replaceReq(id, fields("Later"), nil))
		// The retry decides a change on v3, and JetStream answers the duplicate.
		again := r.write(t, keyed(replaceReq(id, fields("Keyed"), nil), "idem-put", "hash-1"))
		requireState(t, again, 2, "Keyed")
		if again.seq != first.seq {
			t.Fatalf("retry answered seq %d, the original is at %d", again.seq, first.seq)
		}
		// The aggregate reloads: the next write goes on from v3.
		requireState(t, r.write(t, replaceReq(id, fields("Next"), nil)), 4, "Next")
	})
	t.Run("a duplicate message id with another request is ErrIdempotencyMismatch", func(t *testing.T) {
		r := newRig(time.Second)
		id := newID()
		r.write(t, createReq(id, fields("First")))
		r.write(t, keyed(replaceReq(id, fields("Keyed"), nil), "idem-put", "hash-1"))
		_, err := r.svc.write(context.Background(), keyed(replaceReq(id, fields("Other body"), nil), "idem-put", "hash-2"))
		if !errors.Is(err, domain.ErrIdempotencyMismatch) {
			t.Fatalf("err %v, want ErrIdempotencyMismatch", err)
		}
	})
	t.Run("losing every race ends at the write timeout, nothing written", func(t *testing.T) {
		r := newRig(200 * time.Millisecond)
		id := newID()
		r.write(t, createReq(id, fields("Mine")))
		n := 0
		var interfere func()
		interfere = func() {
			n++
			r.store.write(t, id, replaceCmd(id, fmt.Sprintf("Theirs %d", n)))
			r.store.set(func(f *fakeStore) { f.before = interfere })
		}
		r.store.set(func(f *fakeStore) { f.before = interfere })
		_, err := r.svc.write(context.Background(), replaceReq(id, fields("Never"), nil))
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
		r.store.set(func(f *fakeStore) { f.before = nil })
		if last, _ := r.store.Last(context.Background(), id); strings.Contains(string(last.Data), "Never") {
			t.Fatal("the write that timed out was appended")
		}
	})
}

func TestWriteCatchUp(t *testing.T) {
	r := newRig(time.Second)
	id := newID()
	r.write(t, createReq(id, fields("Mine")))
	// Two other writes get in: the last message does not follow the cached
	// state, so the next attempt loads the whole history.
	r.store.set(func(f *fakeStore) {
		f.before = func() {
			f.write(t, id, replaceCmd(id, "Theirs 1"))
			f.write(t, id, replaceCmd(id, "Theirs 2"))
		}
	})
	requireState(t, r.write(t, replaceReq(id, fields("Mine again"), nil)), 4, "Mine again")
	if c := r.store.counts(); c["History"] != 1 || c["Last"] != 1 {
		t.Fatalf("calls %v: want one Last, then one History", c)
	}
}

func TestWriteOriginal(t *testing.T) {
	// A retry recognised by its message id is answered with the state right
	// after the original event, read from a replica that may lag behind.
	r := newRig(time.Second)
	id := newID()
	r.write(t, createReq(id, fields("First")))
	first := r.write(t, keyed(replaceReq(id, fields("Keyed"), nil), "idem-put", "hash-1"))
	r.write(t, replaceReq(id, fields("Later"), nil))
	// The replica holds neither the original (seq 2) nor what came after.
	r.store.set(func(f *fakeStore) { f.lag, f.lagReads = 2, 3 })
	histories := r.store.counts()["History"]
	again := r.write(t, keyed(replaceReq(id, fields("Keyed"), nil), "idem-put", "hash-1"))
	requireState(t, again, 2, "Keyed")
	if again.seq != first.seq {
		t.Fatalf("retry answered seq %d, the original is at %d", again.seq, first.seq)
	}
	if n := r.store.counts()["History"] - histories; n != 4 {
		t.Fatalf("%d History reads, want 4: three on the lagging replica, one that holds the original", n)
	}
}

// TestCreateRetriedOverHTTP posts one article twice with one
// Idempotency-Key through the handlers: the retry answers the original
// article, and the same key with another body is a 422.
func TestCreateRetriedOverHTTP(t *testing.T) {
	r := newRig(time.Second)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := httpx.NewApp("test", 0, log)
	r.svc.Routes(app)
	post := func(body string) *http.Response {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/api/articles", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(HeaderIdempotencyKey, "create-1")
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	read := func(resp *http.Response) string {
		t.Helper()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %s %s %s", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get(HeaderEventSeq), b)
	}
	body := `{"title":"Once","content":"c","author_id":"ada"}`
	first, again := read(post(body)), read(post(body))
	if !strings.HasPrefix(first, "201 /api/articles/") || again != first {
		t.Fatalf("first answer %s\nretry answer %s", first, again)
	}
	if n := r.store.counts()["Append"]; n != 2 || len(r.store.log) != 1 {
		t.Fatalf("%d appends, %d events: the retry must write nothing", n, len(r.store.log))
	}
	if resp := post(`{"title":"Another","content":"c","author_id":"ada"}`); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("the key with another body: %s", read(resp))
	}
}
