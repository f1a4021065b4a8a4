package queryapi

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/cache"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// change is one event of the log as the feed shows it: the article's state
// before and after it, and its SSE frames, made at most once each and
// shared by every client that gets them.
type change struct {
	seq         uint64
	id          string
	typ         events.Type
	version     int
	before      domain.State
	beforeKnown bool // false only for an erasure whose article's earlier events are gone
	after       domain.State

	mu     sync.Mutex
	frames [3][]byte // as is, as created (the article appears), as deleted (it disappears)
}

// The frames of a change.
const (
	asIs = iota
	asCreated
	asDeleted
)

// frame returns the SSE frame of the change shown as kind.
func (c *change) frame(kind int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frames[kind] != nil {
		return c.frames[kind]
	}
	verb := c.typ.Verb()
	withArticle := c.typ == events.ArticleCreated || c.typ == events.ArticleUpdated
	switch kind {
	case asCreated:
		verb, withArticle = "created", true
	case asDeleted:
		verb, withArticle = "deleted", false
	}
	data := feedData{Seq: c.seq, ID: c.id, Version: c.version}
	if withArticle {
		data.Article = &c.after.Article
	}
	b, _ := json.Marshal(data) // one line: JSON has no raw newlines
	out := make([]byte, 0, len(b)+64)
	out = append(out, "id: "...)
	out = strconv.AppendUint(out, c.seq, 10)
	out = append(out, "\nevent: "...)
	out = append(out, verb...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	out = append(out, "\n\n"...)
	c.frames[kind] = out
	return out
}

// feedData is the data of a feed event.
type feedData struct {
	Seq     uint64          `json:"seq"`
	ID      string          `json:"id"`
	Version int             `json:"version"`
	Article *domain.Article `json:"article,omitempty"`
}

// folder folds messages of the log into changes: the state before each
// event comes from its own recent states, else from the states the feed
// shares, else from the article's history up to the event.
type folder struct {
	own    *states
	shared *states
	log    EventLog
}

// eventOf decodes m as an event of the article its subject names; ok is
// false when it is none (the one fold rule leaves it out).
func eventOf(m events.Message) (id string, e domain.Event, ok bool) {
	id, ok = events.ArticleIDFromSubject(m.Subject)
	if !ok {
		return "", e, false
	}
	e, err := events.Decode(m.Data)
	if err != nil || e.ArticleID != id || events.SubjectOf(e) != m.Subject {
		return "", e, false
	}
	return id, e, true
}

// fold returns the change of m, or nil when m is not a valid next event of
// its article (the one fold rule of package events: such a message is
// left out). Errors: those of reading the history (domain.ErrUnavailable).
func (f *folder) fold(ctx context.Context, m events.Message) (*change, error) {
	id, e, ok := eventOf(m)
	if !ok {
		return nil, nil
	}
	c := &change{seq: m.Seq, id: id, typ: events.TypeOf(e.Change), version: e.Version}
	prev, ok := f.own.get(id)
	if !ok || prev.Article.Version != e.Version-1 {
		prev, ok = f.shared.get(id)
	}
	_, erased := e.Change.(domain.ArticleErased)
	switch {
	case ok && prev.Article.Version == e.Version-1:
		after, err := domain.Apply(prev, e)
		if err != nil {
			return nil, nil
		}
		c.before, c.beforeKnown, c.after = prev, true, after
	default:
		// Fold the article's history up to m: its state before m, and
		// whether m is one of its events at all.
		h, err := f.history(ctx, id, m.Seq)
		if err != nil {
			return nil, err
		}
		var st domain.State
		found := false
		for i, se := range h.Events {
			if se.Seq == m.Seq {
				// An erasure's history begins with it once the article's
				// earlier events are purged: what came before is unknown.
				c.before, c.beforeKnown = st, !erased || i > 0
				found = true
			}
			if st, err = domain.Apply(st, se.Event); err != nil {
				return nil, nil
			}
			if found {
				c.after = st
				break
			}
		}
		if !found {
			return nil, nil
		}
	}
	f.own.put(id, c.after)
	f.shared.put(id, c.after)
	return c, nil
}

// historyWait bounds how long a fold waits for a replica that has not yet
// stored the message it folds.
const historyWait = 2 * time.Second

// history reads the article's whole history once it holds message seq (a
// history past seq without it means the message is gone: an erasure
// purged it). Errors: domain.ErrUnavailable.
func (f *folder) history(ctx context.Context, id string, seq uint64) (events.History, error) {
	return historyReaching(ctx, f.log, id, seq, historyWait)
}

// historyReaching reads the article's whole history, reaching at least
// stream sequence want: a read answered by a replica that lags behind an
// acknowledged write is read again for up to wait.
// Errors: domain.ErrUnavailable.
func historyReaching(ctx context.Context, log EventLog, id string, want uint64, wait time.Duration) (events.History, error) {
	deadline := time.Now().Add(wait)
	for {
		h, err := log.History(ctx, id, 0)
		if err != nil || h.LastSeq >= want {
			return h, err
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("history of %s: the replica read is behind seq %d: %w", id, want, domain.ErrUnavailable)
		}
		if !sleep(ctx, 5*time.Millisecond) {
			return h, fmt.Errorf("history of %s: %w: %v", id, domain.ErrUnavailable, ctx.Err())
		}
	}
}

// states keeps the latest known state of recently changed articles within
// a byte budget (internal/cache): a later version never gives way to an
// earlier one. A nil *states keeps nothing.
type states struct{ c *cache.Cache[domain.State] }

// newStates returns states of budget bytes, counted on reg as the cache
// called name (a nil reg: not counted).
func newStates(name string, budget uint64, reg prometheus.Registerer) *states {
	return &states{c: cache.New(name, budget, func(st domain.State) int { return cache.ArticleBytes(st.Article) }, reg)}
}

func (s *states) get(id string) (domain.State, bool) {
	if s == nil {
		return domain.State{}, false
	}
	return s.c.Get(id)
}

func (s *states) put(id string, st domain.State) {
	if s == nil {
		return
	}
	s.c.SetUnless(id, st, func(old domain.State) bool { return old.Article.Version > st.Article.Version })
}
