// Package queryapi is the read side of inkstream: a Fiber app that serves
// articles from an in-process view kept fresh from KV bucket articles by a
// watcher; on a miss it reads KV, and when KV lacks the article or is behind
// a read-your-writes token it replays the article's events from the stream.
package queryapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// HeaderMinEventSeq carries the consistency token of a write.
const HeaderMinEventSeq = "X-Min-Event-Seq"

// EventStore is what the query API needs of the event log.
type EventStore interface {
	// Load errors: natsx.ErrUnavailable.
	Load(ctx context.Context, articleID string, upTo uint64) ([]natsx.StoredEvent, error)
	// Last errors: domain.ErrNotFound, natsx.ErrUnavailable.
	Last(ctx context.Context, articleID string) (natsx.StoredEvent, error)
}

var _ EventStore = (*natsx.EventStore)(nil)

// Options configure the query service.
type Options struct {
	Versions   int           // versions served by /versions
	MinSeqWait time.Duration // how long a read with a token waits for the view
}

// Service serves the read routes.
type Service struct {
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	store EventStore
	view  *view
	opts  Options
	log   *slog.Logger
	ready atomic.Bool

	hits, misses, replays prometheus.Counter
}

// New returns the read service. Call Watch to fill and follow the view.
func New(js jetstream.JetStream, kv jetstream.KeyValue, store EventStore, opts Options, reg prometheus.Registerer, log *slog.Logger) *Service {
	s := &Service{js: js, kv: kv, store: store, view: newView(), opts: opts, log: log}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "inkstream_query_" + name, Help: help})
		reg.MustRegister(c)
		return c
	}
	s.hits = counter("cache_hits_total", "Article reads served from the in-process view.")
	s.misses = counter("cache_misses_total", "Article reads the view could not serve.")
	s.replays = counter("replays_total", "Articles rebuilt from the stream for a read.")
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inkstream_query_articles", Help: "Live articles in the view.",
	}, func() float64 { return float64(s.view.live()) }))
	return s
}

// Ready reports whether the view has loaded the bucket.
func (s *Service) Ready() bool { return s.ready.Load() }

// Watch loads every snapshot of the bucket into the view, marks the service
// ready, then follows changes until ctx ends.
func (s *Service) Watch(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case kve, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if kve == nil {
				s.ready.Store(true)
				s.log.Info("query view loaded", "articles", s.view.live())
				continue
			}
			s.apply(kve)
		}
	}
}

func (s *Service) apply(kve jetstream.KeyValueEntry) {
	if kve.Operation() != jetstream.KeyValuePut {
		s.view.remove(kve.Key(), kve.Revision())
		return
	}
	snap, body, err := readmodel.Decode(kve.Value())
	if err != nil {
		s.log.Error("query: bad snapshot in KV", "key", kve.Key(), "err", err)
		return
	}
	s.view.put(newEntry(snap, body), kve.Revision())
}

// Routes installs the read routes on app.
func (s *Service) Routes(app *fiber.App) {
	app.Get("/api/articles", s.listArticles)
	app.Get("/api/articles/:id", s.getArticle)
	app.Get("/api/articles/:id/versions", s.listVersions)
	app.Get("/api/articles/:id/versions/:v", s.getVersion)
	app.Get("/api/articles/:id/events", s.listEvents)
}

// minSeq reads X-Min-Event-Seq (0 when absent).
func minSeq(c *fiber.Ctx) (uint64, error) {
	h := c.Get(HeaderMinEventSeq)
	if h == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return 0, badRequest(HeaderMinEventSeq + " must be a stream sequence (a whole number) from X-Event-Seq")
	}
	return n, nil
}

// article returns the freshest entry of id the view or KV has, or, if the
// article is missing there or the view is behind token, the article
// replayed from the stream. A nil entry means the article never existed.
func (s *Service) article(ctx context.Context, id string, token uint64) (*entry, error) {
	e := s.view.get(id)
	if e != nil && (token == 0 || e.seq >= token) {
		s.hits.Inc()
		return e, nil
	}
	s.misses.Inc()
	if token > 0 {
		// The token may belong to another article: compare with this
		// article's last event, and wait briefly for the view to reach it.
		last, err := s.store.Last(ctx, id)
		if errors.Is(err, domain.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if e = s.waitFor(ctx, id, last.Seq); e != nil {
			return e, nil
		}
		return s.replay(ctx, id, last.Seq)
	}
	kve, err := s.kv.Get(ctx, id)
	switch {
	case err == nil:
		snap, body, derr := readmodel.Decode(kve.Value())
		if derr != nil {
			return nil, derr
		}
		e = newEntry(snap, body)
		s.view.put(e, 0)
		return e, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return s.replay(ctx, id, 0)
	default:
		return nil, fmt.Errorf("kv get %s: %w: %v", id, natsx.ErrUnavailable, err)
	}
}

// waitFor waits up to a short while for the view to hold id at seq or later.
func (s *Service) waitFor(ctx context.Context, id string, seq uint64) *entry {
	wait := min(s.opts.MinSeqWait, 100*time.Millisecond)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		_, changed := s.view.revision()
		if e := s.view.get(id); e != nil && e.seq >= seq {
			return e
		}
		select {
		case <-changed:
		case <-t.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// replay rebuilds an article from its events; nil if it has none. With
// want > 0 the events read must reach stream sequence want: batch gets are
// answered by any replica, and a follower may lag behind a write that was
// already acknowledged, so a short read is retried for up to MinSeqWait.
func (s *Service) replay(ctx context.Context, id string, want uint64) (*entry, error) {
	deadline := time.Now().Add(s.opts.MinSeqWait)
	var evs []natsx.StoredEvent
	for {
		var err error
		if evs, err = s.store.Load(ctx, id, 0); err != nil {
			return nil, err
		}
		if want == 0 || (len(evs) > 0 && evs[len(evs)-1].Seq >= want) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replay %s: the replica read is behind seq %d: %w", id, want, natsx.ErrUnavailable)
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("replay %s: %w: %v", id, natsx.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
	if len(evs) == 0 {
		return nil, nil
	}
	s.replays.Inc()
	st, seq, err := natsx.FoldStored(evs)
	if err != nil {
		return nil, err
	}
	snap := readmodel.FromState(st, seq)
	body, err := encodeArticle(st.Article)
	if err != nil {
		return nil, err
	}
	e := newEntry(snap, body)
	s.view.put(e, 0)
	return e, nil
}

// viewReaches waits until the view holds every event up to token: the
// projector has acknowledged everything up to it, and the watcher has
// applied every KV write made before that.
func (s *Service) viewReaches(ctx context.Context, token uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, s.opts.MinSeqWait)
	defer cancel()
	var kvTarget uint64
	for {
		if kvTarget == 0 {
			if floor, err := s.ackFloor(ctx); err == nil && floor >= token {
				if kvTarget, err = s.kvLastSeq(ctx); err == nil && kvTarget == 0 {
					return true
				}
			}
		}
		rev, changed := s.view.revision()
		if kvTarget > 0 && rev >= kvTarget {
			return true
		}
		poll := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			poll.Stop()
			return false
		case <-changed:
		case <-poll.C:
		}
		poll.Stop()
	}
}

func (s *Service) ackFloor(ctx context.Context) (uint64, error) {
	cons, err := s.js.Consumer(ctx, events.StreamName, natsx.Consumer)
	if err != nil {
		return 0, err
	}
	info := cons.CachedInfo()
	return info.AckFloor.Stream, nil
}

func (s *Service) kvLastSeq(ctx context.Context) (uint64, error) {
	st, err := s.kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return bs.StreamInfo().State.LastSeq, nil
	}
	return 0, errors.New("bucket status has no stream info")
}
