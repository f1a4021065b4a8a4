// Package queryapi is the read side of inkstream: a Fiber app that serves
// articles from an in-process view kept fresh from the snapshot bucket by a
// watcher; on a miss it reads the bucket, and when the bucket lacks the
// article or is behind a read-your-writes token it replays the article's
// events from the log.
package queryapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// HeaderMinEventSeq carries the consistency token of a write.
const HeaderMinEventSeq = "X-Min-Event-Seq"

// EventLog is what the query API needs of the event log.
type EventLog interface {
	// History returns an article's whole history up to stream sequence upTo
	// (0: all), read from any replica. Errors: domain.ErrUnavailable.
	History(ctx context.Context, articleID string, upTo uint64) (events.History, error)
	// Last returns the last message on an article's subjects as the log's
	// leader has it. Errors: domain.ErrNotFound, domain.ErrUnavailable.
	Last(ctx context.Context, articleID string) (events.Message, error)
}

// Snapshots is what the query API needs of the snapshot bucket.
type Snapshots interface {
	// Get returns the snapshot of id. Errors: domain.ErrNotFound, domain.ErrUnavailable.
	Get(ctx context.Context, id string) (readmodel.Entry, error)
	// Watch calls fn with every snapshot, then a zero Entry once all have
	// been seen, then with every change, until ctx ends.
	Watch(ctx context.Context, fn func(readmodel.Entry)) error
}

// Progress is how far the log and the read model have come.
// Every method's error is domain.ErrUnavailable.
type Progress interface {
	// LastSeq is the log's last stream sequence.
	LastSeq(ctx context.Context) (uint64, error)
	// AckFloor is the sequence up to which the projectors have written
	// every event's snapshot.
	AckFloor(ctx context.Context) (uint64, error)
	// BucketLastSeq is the sequence of the bucket's last write.
	BucketLastSeq(ctx context.Context) (uint64, error)
}

// Options configure the query service.
type Options struct {
	Versions    int           // versions served by /versions
	MinSeqWait  time.Duration // how long a read with a token waits for the view
	ReadTimeout time.Duration // how long a read may wait for NATS (503 after)
	Feed        FeedOptions   // the live feed's bounds
	// PublicURL is the query API as clients reach it (links of the Atom
	// feed); empty: the scheme and host of each request.
	PublicURL string
}

// Service serves the read routes.
type Service struct {
	log      EventLog
	snaps    Snapshots
	progress *tracker
	view     *view
	feed     *feed
	opts     Options
	logger   *slog.Logger
	skips    *obs.Skips
	ready    atomic.Bool
	hits     prometheus.Counter
	misses   prometheus.Counter
	replays  prometheus.Counter
}

// New returns the read service. Call Watch to fill and follow the view,
// and Track to follow progress for read-your-writes; Close ends the live
// feed's streams.
func New(log EventLog, snaps Snapshots, progress Progress, changes Changes, opts Options, reg prometheus.Registerer, logger *slog.Logger) *Service {
	s := &Service{log: log, snaps: snaps, progress: newTracker(progress, reg), view: newView(), opts: opts, logger: logger, skips: obs.NewSkips(reg, logger)}
	s.feed = newFeed(changes, log, opts.Feed, reg)
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

// Close ends the streams of the live feed, so that the server can stop:
// their clients resume elsewhere or later with Last-Event-ID.
func (s *Service) Close() { s.feed.close() }

// Ready reports whether the view has loaded the bucket.
func (s *Service) Ready() bool { return s.ready.Load() }

// Watch loads every snapshot of the bucket into the view, marks the service
// ready, then follows changes until ctx ends.
func (s *Service) Watch(ctx context.Context) error {
	return s.snaps.Watch(ctx, func(e readmodel.Entry) {
		if e.Key == "" {
			s.ready.Store(true)
			s.logger.Info("query view loaded", "articles", s.view.live())
			return
		}
		s.apply(e)
	})
}

// Track follows the progress of the read model while reads wait for a
// token, until ctx ends.
func (s *Service) Track(ctx context.Context) error { return s.progress.run(ctx) }

func (s *Service) apply(e readmodel.Entry) {
	if e.Deleted {
		s.view.remove(e.Key, e.Revision)
		return
	}
	snap, body, err := readmodel.Decode(e.Value)
	if err != nil {
		s.logger.Error("query: bad snapshot in KV", "key", e.Key, "err", err)
		return
	}
	s.view.put(newEntry(snap, body), e.Revision)
}

// Routes installs the read routes on app.
func (s *Service) Routes(app *fiber.App) {
	app.Get("/api/articles", s.listArticles)
	app.Get("/api/articles/:id", s.getArticle)
	app.Get("/api/articles/:id/versions", s.listVersions)
	app.Get("/api/articles/:id/versions/:v", s.getVersion)
	app.Get("/api/articles/:id/events", s.listEvents)
	app.Get("/api/changes", s.changes)
	s.pageRoutes(app)
}

// minSeq reads X-Min-Event-Seq (0 when absent). A token past the log's
// last sequence was never issued: 400.
func (s *Service) minSeq(c *fiber.Ctx) (uint64, error) {
	h := c.Get(HeaderMinEventSeq)
	if h == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return 0, badRequest(HeaderMinEventSeq + " must be a stream sequence (a whole number) from X-Event-Seq")
	}
	issued, err := s.progress.issued(c.UserContext(), n)
	if err != nil {
		return 0, err
	}
	if !issued {
		return 0, badRequest(HeaderMinEventSeq + " " + h + " is past the last event written: it was never issued by a write")
	}
	return n, nil
}

// article returns the freshest entry of id the view or KV has, or, if the
// article is missing there or the view is behind token, the article
// replayed from the log. A nil entry means the article never existed.
func (s *Service) article(ctx context.Context, id string, token uint64) (*entry, error) {
	e := s.view.get(id)
	if e != nil && (token == 0 || e.seq >= token) {
		s.hits.Inc()
		return e, nil
	}
	s.misses.Inc()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	if token > 0 {
		// The token may belong to another article: compare with this
		// article's last event, and wait briefly for the view to reach it.
		last, err := s.log.Last(ctx, id)
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
	kve, err := s.snaps.Get(ctx, id)
	switch {
	case err == nil:
		snap, body, derr := readmodel.Decode(kve.Value)
		if derr != nil {
			return nil, derr
		}
		e = newEntry(snap, body)
		s.view.put(e, 0)
		return e, nil
	case errors.Is(err, domain.ErrNotFound):
		return s.replay(ctx, id, 0)
	default:
		return nil, err
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

// history reads the article's whole history, reaching at least stream
// sequence want: a read from a replica that lags behind an acknowledged
// write is read again for up to MinSeqWait.
func (s *Service) history(ctx context.Context, id string, want uint64) (events.History, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	deadline := time.Now().Add(s.opts.MinSeqWait)
	for {
		h, err := s.log.History(ctx, id, 0)
		if err != nil {
			return h, err
		}
		s.skips.Report(h.Skipped...)
		if h.LastSeq >= want {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("history of %s: the replica read is behind seq %d: %w", id, want, domain.ErrUnavailable)
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return h, fmt.Errorf("history of %s: %w: %v", id, domain.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}

// replay rebuilds an article from its events; nil if it has none.
func (s *Service) replay(ctx context.Context, id string, want uint64) (*entry, error) {
	h, err := s.history(ctx, id, want)
	if err != nil {
		return nil, err
	}
	if !h.Fold.State.Exists() {
		return nil, nil
	}
	s.replays.Inc()
	body, err := json.Marshal(h.Fold.State.Article)
	if err != nil {
		return nil, err
	}
	e := newEntry(readmodel.FromState(h.Fold.State, h.Fold.Seq), body)
	s.view.put(e, 0)
	return e, nil
}
