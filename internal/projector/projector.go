// Package projector folds the events of the log into one snapshot per
// article in the snapshot bucket. Any number of projectors share the durable
// consumer; each snapshot write is a compare-and-set on the key's revision,
// and an event is applied only onto the snapshot of the version before it
// (events.Fold): duplicates are acknowledged, an event whose predecessor is
// missing from the bucket is applied onto the article replayed from the log
// up to it, and a message that is not a valid event is skipped. So
// per-article order, redeliveries, duplicates, crashes between write and ack
// and foreign messages all leave the snapshot equal to the fold of the log.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Source delivers the log's events to the projector.
type Source interface {
	// Consume hands deliveries to handle, up to batch pulled at once, until
	// ctx ends; then it returns nil once handle has had every delivery it
	// had taken.
	Consume(ctx context.Context, batch int, handle func(events.Delivery)) error
}

// Snapshots is the bucket the projector writes.
type Snapshots interface {
	// Get returns the snapshot of id; a deleted or purged key is an Entry
	// with Deleted set and the revision a write must expect.
	// Errors: domain.ErrNotFound, domain.ErrUnavailable.
	Get(ctx context.Context, id string) (readmodel.Entry, error)
	// GetMany returns the snapshots (and markers) of those ids that have
	// one, read in a batch. Errors: domain.ErrUnavailable.
	GetMany(ctx context.Context, ids []string) (map[string]readmodel.Entry, error)
	// Put writes snap if its key is at revision expect (0: the key has no
	// message) and returns the new revision. Errors: domain.ErrConflict,
	// domain.ErrUnavailable.
	Put(ctx context.Context, snap readmodel.Snapshot, expect uint64) (uint64, error)
	// PutAsync is Put without waiting for the answer. Both carry the
	// trace of ctx's span to whoever watches the bucket.
	PutAsync(ctx context.Context, snap readmodel.Snapshot, expect uint64) readmodel.Pending
	// Purge removes every revision of id's snapshot if the key is at
	// revision expect, and returns the revision of the purge marker.
	// Errors: domain.ErrConflict, domain.ErrUnavailable.
	Purge(ctx context.Context, id string, expect uint64) (uint64, error)
}

// EventLog reads an article's history.
type EventLog interface {
	// History errors: domain.ErrUnavailable.
	History(ctx context.Context, articleID string, upTo uint64) (events.History, error)
}

// Options configure a projector.
type Options struct {
	Batch      int    // messages handled together
	CacheBytes uint64 // budget of the snapshots kept in memory
}

// Projector consumes the log into the bucket.
type Projector struct {
	src   Source
	snaps Snapshots
	log   EventLog
	opts  Options
	lg    *slog.Logger
	cache *snapshots
	skips *obs.Skips

	checkpoint atomic.Uint64
	m          metrics
}

type metrics struct {
	applied, duplicates, replays, conflicts, failures prometheus.Counter
}

// New returns a projector. Its metrics are registered on reg.
func New(src Source, snaps Snapshots, log EventLog, opts Options, reg prometheus.Registerer, lg *slog.Logger) *Projector {
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	p := &Projector{src: src, snaps: snaps, log: log, opts: opts, lg: lg, cache: newSnapshots(opts.CacheBytes, reg), skips: obs.NewSkips(reg, lg)}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "inkstream_projector_" + name, Help: help})
		reg.MustRegister(c)
		return c
	}
	p.m.applied = counter("events_applied_total", "Events folded into snapshots.")
	p.m.duplicates = counter("events_duplicate_total", "Events already in the snapshot (redeliveries, duplicates), acknowledged.")
	p.m.replays = counter("article_replays_total", "Articles rebuilt from the stream because KV lacked an event's predecessor.")
	p.m.conflicts = counter("snapshot_conflicts_total", "Snapshot writes that lost a compare-and-set race and were redone.")
	p.m.failures = counter("failures_total", "Messages negatively acknowledged after an error.")
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inkstream_projector_last_sequence", Help: "Stream sequence of the last event this instance handled.",
	}, func() float64 { return float64(p.checkpoint.Load()) }))
	return p
}

// Run consumes until ctx ends. It returns nil on a clean stop.
func (p *Projector) Run(ctx context.Context) error {
	deliveries := make(chan events.Delivery, 2*p.opts.Batch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.loop(deliveries)
	}()
	err := p.src.Consume(ctx, p.opts.Batch, func(d events.Delivery) { deliveries <- d })
	close(deliveries)
	wg.Wait()
	return err
}

// loop handles deliveries in micro-batches: it blocks for one, then takes
// whatever else is already there, up to the batch size.
func (p *Projector) loop(deliveries <-chan events.Delivery) {
	batch := make([]events.Delivery, 0, p.opts.Batch)
	for d := range deliveries {
		batch = append(batch[:0], d)
	fill:
		for len(batch) < p.opts.Batch {
			select {
			case d, ok := <-deliveries:
				if !ok {
					break fill
				}
				batch = append(batch, d)
			default:
				break fill
			}
		}
		p.handle(batch)
	}
}

// handle applies one batch: messages grouped by article, in stream order
// within each article, articles in parallel.
func (p *Projector) handle(batch []events.Delivery) {
	groups := make(map[string][]events.Delivery)
	var order []string
	var last uint64
	for _, d := range batch {
		last = max(last, d.Seq)
		id, ok := events.ArticleIDFromSubject(d.Subject)
		if !ok {
			p.skips.Report(events.Skipped{Seq: d.Seq, Subject: d.Subject, Reason: "not an article's subject"})
			d.Ack()
			continue
		}
		if _, ok := groups[id]; !ok {
			order = append(order, id)
		}
		groups[id] = append(groups[id], d)
	}
	slow := p.pipeline(groups, order)
	var g errgroup.Group
	g.SetLimit(64)
	for _, id := range slow {
		items := groups[id]
		g.Go(func() error {
			ctx, span := startApply(id, items, "careful")
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := p.apply(ctx, id, items)
			obs.End(span, err)
			if err != nil {
				p.m.failures.Add(float64(len(items)))
				p.lg.Warn("projector: apply failed; will be redelivered", "article", id, "err", err)
				for _, it := range items {
					it.Nak(250 * time.Millisecond)
				}
				return nil
			}
			ackAll(items)
			return nil
		})
	}
	_ = g.Wait()
	if last > p.checkpoint.Load() {
		p.checkpoint.Store(last)
	}
}

func ackAll(items []events.Delivery) {
	for _, it := range items {
		it.Ack()
	}
}

// pipeline is the fast path of a batch: every article whose snapshot is in
// the cache (or that starts with its create) is folded in memory and its
// snapshot written to the bucket without waiting, all at once, each write a
// compare-and-set on the revision the cache knows. It returns the articles
// left for the careful path (apply): cache misses, duplicates, gaps and
// lost compare-and-set races.
func (p *Projector) pipeline(groups map[string][]events.Delivery, order []string) []string {
	type pending struct {
		id   string
		next cached
		n    tally
		put  readmodel.Pending
		span trace.Span
	}
	var slow []string
	inflight := make([]pending, 0, len(order))
	for _, id := range order {
		items := groups[id]
		cur, _ := p.cache.get(id) // a miss folds from nothing: only a create applies
		next, dirty, n, err := p.fold(context.Background(), id, cur, false, false, items)
		if err != nil || !dirty || next.state.Erased {
			slow = append(slow, id)
			continue
		}
		ctx, span := startApply(id, items, "fast")
		inflight = append(inflight, pending{id: id, next: next, n: n, put: p.snaps.PutAsync(ctx, readmodel.FromState(next.state, next.seq), cur.rev), span: span})
	}
	// One deadline for the whole batch, and one that stays expired: a put
	// whose ack is lost (its leader stepped down or died) never resolves,
	// and a timer's single tick would release only the first. The puts are
	// waited for in the order they were sent, which is the order the
	// stream's leader acknowledges them in: each article's events are
	// acknowledged as soon as its own put is, not after the slowest put of
	// the batch, without a goroutine per put (their stacks' growth was 6 %
	// of a catch-up's CPU).
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pd := range inflight {
		rev, err := pd.put.Wait(wait)
		obs.End(pd.span, err)
		if err != nil {
			if errors.Is(err, domain.ErrConflict) {
				p.m.conflicts.Inc()
			}
			p.cache.forget(pd.id)
			slow = append(slow, pd.id)
			continue
		}
		pd.next.rev = rev
		p.cache.put(pd.id, pd.next)
		pd.n.count(&p.m)
		ackAll(groups[pd.id])
	}
	return slow
}

// apply folds items (one article, stream order) into its snapshot.
func (p *Projector) apply(ctx context.Context, id string, items []events.Delivery) error {
	for attempt := 0; attempt < 8; attempt++ {
		cur, ok := p.cache.get(id)
		confirmed := false
		if !ok {
			var err error
			if cur, err = p.load(ctx, id); err != nil {
				return err
			}
			confirmed = true
		}
		next, dirty, n, err := p.fold(ctx, id, cur, confirmed, true, items)
		if errors.Is(err, errStale) {
			p.cache.forget(id)
			if cur, err = p.load(ctx, id); err != nil {
				return err
			}
			next, dirty, n, err = p.fold(ctx, id, cur, true, true, items)
		}
		if err != nil {
			return err
		}
		if !dirty {
			n.count(&p.m)
			return nil
		}
		rev, err := p.write(ctx, next, cur.rev)
		if errors.Is(err, domain.ErrConflict) {
			p.m.conflicts.Inc()
			p.cache.forget(id)
			continue
		}
		if err != nil {
			return err
		}
		next.rev = rev
		p.cache.put(id, next)
		n.count(&p.m)
		return nil
	}
	p.cache.forget(id)
	return fmt.Errorf("article %s: snapshot kept changing under us", id)
}

var errStale = errors.New("cached snapshot may be stale")

// tally is what one fold did, counted once its snapshot write succeeds, so
// that an attempt lost to a compare-and-set race is not counted.
type tally struct{ applied, duplicates, replays int }

func (t tally) count(m *metrics) {
	m.applied.Add(float64(t.applied))
	m.duplicates.Add(float64(t.duplicates))
	m.replays.Add(float64(t.replays))
}

// fold applies items onto cur under the one rule (events.Fold). A message
// at or below the snapshot's sequence is a duplicate; one seen only by the
// cache is confirmed against the bucket first (a rebuild may have purged
// it). A gap is replayed from the log when replay is set, and fails the
// fast path otherwise; a message the rule skips is acknowledged.
func (p *Projector) fold(ctx context.Context, id string, cur cached, confirmed, replay bool, items []events.Delivery) (cached, bool, tally, error) {
	f := events.Fold{ArticleID: id, State: cur.state, Seq: cur.seq}
	dirty := false
	var n tally
	for _, it := range items {
		if it.Seq <= f.Seq {
			if !confirmed && !dirty {
				return cur, false, n, errStale
			}
			n.duplicates++
			continue
		}
		var err error
		if cur.removed && !dirty {
			// The bucket removed the snapshot (a deletion, or an erasure
			// that purged the article's events): trust only the log.
			err = events.ErrGap
		} else {
			_, err = f.Next(it.Message)
		}
		var skip *events.SkipError
		switch {
		case err == nil:
			dirty = true
			n.applied++
		case errors.Is(err, events.ErrGap) && !replay:
			return cur, false, n, err
		case errors.Is(err, events.ErrGap):
			// The predecessor is not in the bucket (another instance holds
			// it, or the snapshot was removed): fold the article from the
			// log up to this message.
			h, gone, err := p.replay(ctx, id, it.Seq)
			if err != nil {
				return cur, false, n, err
			}
			if gone || h.Fold.Seq != it.Seq {
				n.duplicates++ // purged by an erasure, or the whole fold skips it too
				continue
			}
			f, dirty = h.Fold, true
			n.replays++
			n.applied++
		case errors.As(err, &skip):
			p.skips.Report(skip.Skipped)
		default:
			return cur, false, n, err
		}
	}
	return cached{state: f.State, seq: f.Seq, rev: cur.rev}, dirty, n, nil
}

// replay folds an article's history up to stream sequence seq. gone is set
// when seq is no longer in the log because an erasure purged it.
func (p *Projector) replay(ctx context.Context, id string, seq uint64) (events.History, bool, error) {
	h, err := p.log.History(ctx, id, seq)
	if err != nil {
		return h, false, err
	}
	p.skips.Report(h.Skipped...)
	if h.LastSeq >= seq {
		return h, false, nil
	}
	// The read did not reach seq: a replica behind, or seq purged.
	all, err := p.log.History(ctx, id, 0)
	if err != nil {
		return h, false, err
	}
	if all.Fold.State.Erased && all.LastSeq > seq {
		return all, true, nil
	}
	return h, false, fmt.Errorf("replay of %s reached seq %d, not %d: %w", id, h.LastSeq, seq, domain.ErrUnavailable)
}

func (p *Projector) load(ctx context.Context, id string) (cached, error) {
	e, err := p.snaps.Get(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return cached{}, nil
	}
	if err != nil {
		return cached{}, err
	}
	if e.Deleted {
		return cached{rev: e.Revision, removed: true}, nil
	}
	snap, _, err := readmodel.Decode(e.Value)
	if err != nil {
		return cached{}, err
	}
	return cached{state: snap.State(), seq: snap.Seq, rev: e.Revision}, nil
}

// write stores the snapshot of c, expecting the key at rev; an erased
// article's snapshot is purged instead.
func (p *Projector) write(ctx context.Context, c cached, rev uint64) (uint64, error) {
	if c.state.Erased {
		return p.snaps.Purge(ctx, c.state.Article.ID, rev)
	}
	return p.snaps.Put(ctx, readmodel.FromState(c.state, c.seq), rev)
}

// startApply starts the span of applying items (one article's events) when
// tracing is on: a child of the last traced event's publish, linked to the
// others' (a batch can fold several writes of one article).
func startApply(id string, items []events.Delivery, path string) (context.Context, trace.Span) {
	if !obs.Tracing() {
		return context.Background(), nil
	}
	var parent events.TraceContext
	var links []events.TraceContext
	for _, it := range items {
		if it.Trace.Parent != "" {
			if parent.Parent != "" {
				links = append(links, parent)
			}
			parent = it.Trace
		}
	}
	return obs.StartProcess(context.Background(), "projector apply", parent, links,
		attribute.String("inkstream.article_id", id), attribute.Int("inkstream.events", len(items)),
		attribute.String("inkstream.projector.path", path))
}

// Checkpoint is the stream sequence of the last event this instance handled.
func (p *Projector) Checkpoint() uint64 { return p.checkpoint.Load() }
