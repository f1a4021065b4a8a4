// Package queryapi is the read side of inkstream: a Fiber app that serves
// articles from an in-process view kept fresh from the snapshot bucket by a
// watcher, or by folding the log itself (Options.FoldStream); on a miss it
// reads the bucket, and when the bucket lacks the article or is behind a
// read-your-writes token it replays the article's events from the log.
package queryapi

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/inkstream/inkstream/internal/cache"
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
	// Get returns the snapshot of id; a deleted or purged key is an Entry
	// with Deleted set. Errors: domain.ErrNotFound, domain.ErrUnavailable.
	Get(ctx context.Context, id string) (readmodel.Entry, error)
	// GetMany returns the snapshots of ids that have one, read in a batch.
	// Errors: domain.ErrUnavailable.
	GetMany(ctx context.Context, ids []string) (map[string]readmodel.Entry, error)
	// Watch calls fn with the index of every snapshot (no value), then a
	// zero Entry once all have been seen, then with every change (with its
	// value), until ctx ends.
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
	CacheBytes  uint64        // budget of the article bodies kept in memory
	Feed        FeedOptions   // the live feed's bounds
	// FoldStream makes the view fold the log itself, on the live feed's
	// one ordered consumer, instead of following the snapshot bucket,
	// which still gives the view its cold start and serves misses.
	FoldStream bool
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
	bodies   *cache.Cache[*body]
	feed     *feed
	opts     Options
	logger   *slog.Logger
	skips    *obs.Skips
	ready    atomic.Bool
	replays  prometheus.Counter
}

// body is an article's JSON at a version.
type body struct {
	version int
	json    []byte
}

// New returns the read service. Call Watch to fill and follow the view,
// and Track to follow progress for read-your-writes; Close ends the live
// feed's streams.
func New(log EventLog, snaps Snapshots, progress Progress, changes Changes, opts Options, reg prometheus.Registerer, logger *slog.Logger) *Service {
	s := &Service{log: log, snaps: snaps, progress: newTracker(progress, reg), view: newView(), opts: opts, logger: logger, skips: obs.NewSkips(reg, logger),
		bodies: cache.New("query_articles", opts.CacheBytes, func(b *body) int { return len(b.json) }, reg)}
	s.feed = newFeed(changes, log, opts.Feed, reg)
	if opts.FoldStream {
		s.feed.pinned, s.feed.view = true, s.foldView
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "inkstream_query_" + name, Help: help})
		reg.MustRegister(c)
		return c
	}
	s.replays = counter("replays_total", "Articles rebuilt from the stream for a read.")
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inkstream_query_articles", Help: "Live articles in the view.",
	}, func() float64 { return float64(s.view.live()) }))
	return s
}

// Close ends the streams of the live feed, so that the server can stop:
// their clients resume elsewhere or later with Last-Event-ID.
func (s *Service) Close() { s.feed.close() }

// Ready reports whether the view has loaded the bucket (and, when it folds
// the log, folded it up to the log's end at the time of the load).
func (s *Service) Ready() bool { return s.ready.Load() }

// Watch loads every snapshot of the bucket into the view, marks the service
// ready, then follows changes until ctx ends. When the view folds the log,
// it folds the log from there on (see watchStream).
func (s *Service) Watch(ctx context.Context) error {
	if s.opts.FoldStream {
		return s.watchStream(ctx)
	}
	return s.snaps.Watch(ctx, func(e readmodel.Entry) {
		if e.Key == "" {
			s.ready.Store(true)
			s.logger.Info("query view loaded", "articles", s.view.live())
			return
		}
		s.apply(e)
	})
}

// watchStream fills the view for FoldStream. It reads the projectors' ack
// floor and the log's end, then loads the index of every snapshot (headers
// only): every event up to the floor is in a snapshot loaded, so folding
// the log from the floor on misses nothing, and the fold leaves alone what
// the view already holds at a later sequence. The service is ready once
// the fold has reached the log's end. The bucket is still followed, for
// the snapshots of articles the load did not find (a rebuild refilling
// the bucket); the view takes what it has not folded itself.
func (s *Service) watchStream(ctx context.Context) error {
	floor, end, err := s.startingPoint(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	loaded := false
	return s.snaps.Watch(ctx, func(e readmodel.Entry) {
		switch {
		case e.Key != "" && !loaded:
			s.apply(e)
			return
		case e.Key != "":
			s.backfill(e)
			return
		}
		loaded = true
		s.logger.Info("query view loaded from the bucket; folding the stream", "articles", s.view.live(), "from", floor+1, "to", end)
		s.view.fold(nil, floor) // what the load holds
		wg.Add(2)
		go func() { defer wg.Done(); s.feed.run(ctx, floor, s.logger) }()
		go func() {
			defer wg.Done()
			if s.view.reaches(ctx, end) {
				s.ready.Store(true)
				s.logger.Info("query view folded the stream", "articles", s.view.live(), "seq", end)
			}
		}()
	})
}

// backfill takes from the bucket, into a view that folds the log, what the
// fold has passed without folding: the snapshot of an article the view
// lacks, or holds at an earlier sequence, up to the fold's position (the
// load missed it: a rebuild was refilling the bucket). What the fold has
// not reached yet is the fold's to bring, and so is every deletion (an
// erasure stays in the view as a deleted entry, so no older snapshot can
// bring the article back).
func (s *Service) backfill(e readmodel.Entry) {
	if e.Deleted {
		return
	}
	x := e.Index
	if x == nil { // written without an index header
		snap, _, err := readmodel.Decode(e.Value)
		if err != nil {
			return
		}
		ix := readmodel.IndexOf(snap)
		x = &ix
	}
	seq := x.Seq
	if folded, _ := s.view.position(); seq > folded {
		return
	}
	if old := s.view.get(e.Key); old != nil && old.seq >= seq {
		return
	}
	s.apply(e)
}

// startingPoint reads the projectors' ack floor and then the log's end,
// trying again while they cannot be read (a rebuild recreates the
// projector consumer), until ctx ends.
func (s *Service) startingPoint(ctx context.Context) (floor, end uint64, err error) {
	for logged := false; ; logged = true {
		if floor, err = s.progress.src.AckFloor(ctx); err == nil {
			if end, err = s.progress.src.LastSeq(ctx); err == nil {
				return floor, end, nil
			}
		}
		if !logged {
			s.logger.Warn("query view: waiting for the projectors' ack floor and the stream's end", "err", err)
		}
		if !sleep(ctx, hubRetry) {
			return 0, 0, ctx.Err()
		}
	}
}

// Track follows the progress of the read model while reads wait for a
// token, until ctx ends.
func (s *Service) Track(ctx context.Context) error { return s.progress.run(ctx) }

// apply brings one change of the bucket into the view, in the trace of the
// write that made it.
func (s *Service) apply(e readmodel.Entry) {
	ctx, span := viewUpdate(e.Trace, e.Key)
	var err error
	defer func() { obs.End(span, err) }()
	if e.Deleted {
		s.view.remove(e.Key, e.Revision)
		s.bodies.Forget(e.Key)
		return
	}
	x := e.Index
	var b []byte
	if e.Value != nil {
		var snap readmodel.Snapshot
		snap, b, err = readmodel.Decode(e.Value)
		if err != nil {
			s.logger.ErrorContext(ctx, "query: bad snapshot in KV", "key", e.Key, "err", err)
			return
		}
		ix := readmodel.IndexOf(snap)
		x = &ix
	}
	if x == nil {
		s.logger.ErrorContext(ctx, "query: snapshot in KV without an index", "key", e.Key)
		return
	}
	s.keep(newEntry(*x), b, e.Revision, 0)
}

// viewUpdate starts the span of an update of article id's entry in the
// view, in the trace tc of the write that made it (none when tracing is off).
func viewUpdate(tc events.TraceContext, id string) (context.Context, trace.Span) {
	if !obs.Tracing() {
		return context.Background(), nil
	}
	return obs.StartProcess(context.Background(), "query view update", tc, nil, attribute.String("inkstream.article_id", id))
}

// foldView folds message m of the log into a view that folds the log,
// in the trace of the write that made it, then moves the view's position
// to m. The state before m is the view's own: the article's state at the
// previous version when the states the feed shares hold it, or its body
// when the body cache does (m's change is then known whole: settled),
// else its index entry, onto which m gives the next
// index and no body (a read takes the body from KV, or replays it); a
// state the view holds at m or later (a read brought it) changes nothing.
// Only a gap (the view lacks the previous version) makes it read the
// article's history, through fo. A message that is no valid next event
// changes nothing (settled, nil).
func (s *Service) foldView(ctx context.Context, m events.Message, fo *folder) (c *change, settled bool, err error) {
	id, e, ok := eventOf(m)
	if !ok {
		s.view.fold(nil, m.Seq)
		return nil, true, nil
	}
	old := s.view.get(id)
	if old != nil && old.seq >= m.Seq {
		s.view.fold(nil, m.Seq)
		return nil, false, nil
	}
	prev, whole, ok := s.previous(id, old, e)
	switch {
	case !ok:
		if c, err = fo.fold(ctx, m); err != nil {
			return nil, false, err
		}
		whole = true
	default:
		if after, err := domain.Apply(prev, e); err == nil {
			c = &change{seq: m.Seq, id: id, typ: events.TypeOf(e.Change), version: e.Version, before: prev, beforeKnown: true, after: after}
		}
	}
	if c == nil {
		s.view.fold(nil, m.Seq)
		return nil, true, nil
	}
	after := c.after
	ctx, span := viewUpdate(m.Trace, id)
	defer func() { obs.End(span, err) }()
	entry := newEntry(readmodel.IndexOf(readmodel.FromState(after, m.Seq)))
	var b []byte
	whole = whole || !after.Live() // a deleted or erased article has no body
	if whole && after.Live() {
		if b, err = json.Marshal(after.Article); err != nil {
			s.logger.ErrorContext(ctx, "query: encode article", "id", id, "err", err)
			whole = false
		}
	}
	if kept := s.keep(entry, b, 0, m.Seq); b == nil && kept == entry {
		s.bodies.Forget(id) // only an older version's, if any
	}
	if whole {
		s.feed.shared.put(id, after)
	}
	return c, whole, nil
}

// previous is the state of article id before event e as the view holds it
// (old: its entry, nil when it has none): whole when it is the article's
// body at e's previous version, else built from old's index, without the
// content. ok is false for a gap: the view lacks the previous version.
func (s *Service) previous(id string, old *entry, e domain.Event) (st domain.State, whole, ok bool) {
	_, erased := e.Change.(domain.ArticleErased)
	switch {
	case old == nil:
		return domain.State{}, true, e.Version == 1 // the state before a first event
	case old.version != e.Version-1 && !erased: // an erasure follows any version
		return domain.State{}, false, false
	}
	if st, ok := s.feed.shared.get(id); ok && st.Article.Version == old.version {
		return st, true, true
	}
	if b, cached := s.bodies.Get(id); cached && b.version == old.version && !old.deleted {
		var a domain.Article
		if err := json.Unmarshal(b.json, &a); err == nil {
			return domain.State{Article: a}, true, true
		}
	}
	a := domain.Article{ID: old.id, Version: old.version, CreatedAt: old.createdAt, UpdatedAt: old.updatedAt,
		Fields: domain.Fields{Title: old.title, Slug: old.slug, AuthorID: old.authorID, Status: old.status, Tags: old.tags}}
	return domain.State{Article: a, Deleted: old.deleted}, false, true
}

// keep stores e in the view, and b, its article's JSON, in the body cache
// first (a reader who finds e finds its body), unless the view holds a
// later state of the article; it returns the entry the view holds. rev is
// the KV revision e comes from (0: none); folded, when not 0, is the
// sequence up to which the view has now folded the log.
func (s *Service) keep(e *entry, b []byte, rev, folded uint64) *entry {
	if b != nil && !e.deleted {
		s.bodies.SetUnless(e.id, &body{version: e.version, json: b}, func(old *body) bool { return old.version > e.version })
	}
	var kept *entry
	if folded > 0 {
		kept = s.view.fold(e, folded)
	} else {
		kept = s.view.put(e, rev)
	}
	if kept.deleted {
		s.bodies.Forget(e.id)
	}
	return kept
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
	if folded, _ := s.view.position(); n <= folded {
		return n, nil // the view has folded it: the log has it
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

// article returns the freshest entry of id the index or KV has, with its
// JSON, or, if the article is missing there or the index is behind token,
// the article replayed from the log. A nil entry means the article never
// existed; a deleted one has no body.
func (s *Service) article(ctx context.Context, id string, token uint64) (*entry, []byte, error) {
	if token > 0 && s.opts.FoldStream && s.foldedWithin(ctx, token, min(s.opts.MinSeqWait, 100*time.Millisecond)) {
		token = 0 // the view holds every event up to the token
	}
	e := s.view.get(id)
	if e != nil && (token == 0 || e.seq >= token) {
		if e.deleted {
			return e, nil, nil
		}
		if b, ok := s.bodies.Get(id); ok && b.version == e.version {
			return e, b.json, nil
		}
		ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
		defer cancel()
		return s.fetch(ctx, id, e.seq)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	if token > 0 {
		// The token may belong to another article: compare with this
		// article's last event, and wait briefly for the index to reach it.
		last, err := s.log.Last(ctx, id)
		if errors.Is(err, domain.ErrNotFound) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if e = s.waitFor(ctx, id, last.Seq); e != nil {
			if e.deleted {
				return e, nil, nil
			}
			return s.fetch(ctx, id, e.seq)
		}
		return s.replay(ctx, id, last.Seq)
	}
	return s.fetch(ctx, id, 0)
}

// fetch reads the article's snapshot from KV, or replays it from the log
// when KV has none at stream sequence seq or later.
func (s *Service) fetch(ctx context.Context, id string, seq uint64) (*entry, []byte, error) {
	kve, err := s.snaps.Get(ctx, id)
	switch {
	case err == nil && !kve.Deleted:
		if e, b, ok := s.fromKV(kve, seq); ok {
			return e, b, nil
		}
	case err == nil, errors.Is(err, domain.ErrNotFound):
	default:
		return nil, nil, err
	}
	return s.replay(ctx, id, seq)
}

// fromKV keeps a snapshot read from KV, if it is at seq or later.
func (s *Service) fromKV(kve readmodel.Entry, seq uint64) (*entry, []byte, bool) {
	snap, b, err := readmodel.Decode(kve.Value)
	if err != nil || snap.Seq < seq {
		return nil, nil, false
	}
	e := newEntry(readmodel.IndexOf(snap))
	if kept := s.keep(e, b, 0, 0); kept.deleted {
		return kept, nil, true
	}
	if e.deleted {
		return e, nil, true
	}
	return e, b, true
}

// foldedWithin waits up to wait for a view that folds the log to reach seq.
func (s *Service) foldedWithin(ctx context.Context, seq uint64, wait time.Duration) bool {
	if folded, _ := s.view.position(); folded >= seq {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return s.view.reaches(ctx, seq)
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
	h, err := historyReaching(ctx, s.log, id, want, s.opts.MinSeqWait)
	s.skips.Report(h.Skipped...)
	return h, err
}

// replay rebuilds an article from its events; nil if it has none.
func (s *Service) replay(ctx context.Context, id string, want uint64) (*entry, []byte, error) {
	h, err := s.history(ctx, id, want)
	if err != nil {
		return nil, nil, err
	}
	if !h.Fold.State.Exists() {
		return nil, nil, nil
	}
	s.replays.Inc()
	e := newEntry(readmodel.IndexOf(readmodel.FromState(h.Fold.State, h.Fold.Seq)))
	var b []byte
	if !e.deleted {
		if b, err = json.Marshal(h.Fold.State.Article); err != nil {
			return nil, nil, err
		}
	}
	if kept := s.keep(e, b, 0, 0); kept.deleted {
		return kept, nil, nil
	}
	return e, b, nil
}
