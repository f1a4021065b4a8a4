// Package projector folds the events of stream ARTICLES into snapshots in KV
// bucket articles. Any number of projectors share the durable consumer
// projector; each snapshot write is a compare-and-set on the KV revision, and
// an event is applied only onto the snapshot of the version before it:
// duplicates are acknowledged, an event whose predecessor is missing from KV
// is applied onto the article rebuilt from the stream up to it. So per-article
// order, redeliveries, duplicates and crashes between write and ack all leave
// the snapshot equal to the fold of the stream.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Options configure a projector.
type Options struct {
	Batch     int  // messages handled together
	CacheSize int  // snapshots kept in memory
	Provision bool // create the consumer if it is missing
}

// Projector consumes the stream into the bucket.
type Projector struct {
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	store *natsx.EventStore
	opts  Options
	log   *slog.Logger
	cache *snapshots

	checkpoint atomic.Uint64
	m          metrics
}

type metrics struct {
	applied, duplicates, replays, conflicts, failures prometheus.Counter
	checkpoint                                        prometheus.GaugeFunc
}

// New returns a projector. Its metrics are registered on reg.
func New(js jetstream.JetStream, kv jetstream.KeyValue, store *natsx.EventStore, opts Options, reg prometheus.Registerer, log *slog.Logger) *Projector {
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	p := &Projector{js: js, kv: kv, store: store, opts: opts, log: log, cache: newSnapshots(opts.CacheSize)}
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
	p.m.checkpoint = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inkstream_projector_last_sequence", Help: "Stream sequence of the last event this instance handled.",
	}, func() float64 { return float64(p.checkpoint.Load()) })
	reg.MustRegister(p.m.checkpoint)
	return p
}

// Run consumes until ctx ends. When the consumer is deleted (a rebuild
// resets it) it binds to the new one. It returns nil on a clean stop.
func (p *Projector) Run(ctx context.Context) error {
	msgs := make(chan jetstream.Msg, 2*p.opts.Batch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.loop(msgs)
	}()
	err := p.consume(ctx, msgs)
	close(msgs)
	wg.Wait()
	return err
}

func (p *Projector) consume(ctx context.Context, msgs chan<- jetstream.Msg) error {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		var cons jetstream.Consumer
		var err error
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if p.opts.Provision {
			cons, err = p.js.CreateOrUpdateConsumer(cctx, events.StreamName, natsx.ConsumerConfig())
		} else {
			cons, err = p.js.Consumer(cctx, events.StreamName, natsx.Consumer)
		}
		cancel()
		if err != nil {
			p.log.Warn("projector: bind consumer", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		lost := make(chan struct{})
		var once sync.Once
		cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m },
			jetstream.PullMaxMessages(p.opts.Batch),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
					once.Do(func() { close(lost) })
					return
				}
				p.log.Debug("projector: consume", "err", err)
			}))
		if err != nil {
			p.log.Warn("projector: consume", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		attempt = 0
		select {
		case <-ctx.Done():
			// Drain, not Stop: Stop drops the messages the client has
			// buffered, which then sit unacknowledged on the server for
			// AckWait (10s) before any other instance gets them, holding
			// the ack floor back. Drain hands them to the loop first.
			cc.Drain()
			<-cc.Closed()
			return nil
		case <-lost:
			p.log.Info("projector: consumer was deleted; binding again")
			cc.Stop()
			<-cc.Closed()
			// Give whoever deleted it (a rebuild) time to create it again.
			// Creating it at once races the server's removal of the old
			// consumer's directory, which can leave the new one without
			// its store (err 10012 on every later update).
			if !sleep(ctx, 500*time.Millisecond) {
				return nil
			}
		}
	}
	return nil
}

// loop handles messages in micro-batches: it blocks for one, then takes
// whatever else is already there, up to the batch size.
func (p *Projector) loop(msgs <-chan jetstream.Msg) {
	batch := make([]jetstream.Msg, 0, p.opts.Batch)
	for m := range msgs {
		batch = append(batch[:0], m)
	fill:
		for len(batch) < p.opts.Batch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		p.handle(batch)
	}
}

type item struct {
	msg jetstream.Msg
	seq uint64
	ev  events.Envelope
}

// handle applies one batch: events grouped by article, in stream order
// within each article, articles in parallel.
func (p *Projector) handle(batch []jetstream.Msg) {
	groups := make(map[string][]item)
	var order []string
	var last uint64
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			p.log.Error("projector: message without metadata", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		ev, err := events.Decode(m.Data())
		if err != nil {
			p.log.Error("projector: malformed event, terminated", "seq", md.Sequence.Stream, "err", err)
			_ = m.Term()
			continue
		}
		if _, ok := groups[ev.ArticleID]; !ok {
			order = append(order, ev.ArticleID)
		}
		groups[ev.ArticleID] = append(groups[ev.ArticleID], item{msg: m, seq: md.Sequence.Stream, ev: ev})
		last = max(last, md.Sequence.Stream)
	}
	slow := p.pipeline(groups, order)
	var g errgroup.Group
	g.SetLimit(64)
	for _, id := range slow {
		items := groups[id]
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.apply(ctx, id, items); err != nil {
				p.m.failures.Add(float64(len(items)))
				p.log.Warn("projector: apply failed; will be redelivered", "article", id, "err", err)
				for _, it := range items {
					_ = it.msg.NakWithDelay(250 * time.Millisecond)
				}
				return nil
			}
			for _, it := range items {
				_ = it.msg.Ack()
			}
			return nil
		})
	}
	_ = g.Wait()
	if last > p.checkpoint.Load() {
		p.checkpoint.Store(last)
	}
}

// pipeline is the fast path of a batch: every article whose snapshot is in
// the cache (or that starts with its create) is folded in memory and its
// snapshot published to KV asynchronously, all at once, each put a
// compare-and-set on the revision the cache knows. It returns the articles
// left for the careful path (apply): cache misses, duplicates, gaps and
// lost compare-and-set races.
func (p *Projector) pipeline(groups map[string][]item, order []string) []string {
	type pending struct {
		id   string
		next cached
		n    tally
		fut  jetstream.PubAckFuture
	}
	var slow []string
	inflight := make([]pending, 0, len(order))
	for _, id := range order {
		items := groups[id]
		cur, ok := p.cache.get(id)
		if !ok && items[0].ev.Version != 1 {
			slow = append(slow, id)
			continue
		}
		next, dirty, n, err := p.fold(context.Background(), id, cur, false, false, items)
		if err != nil || !dirty {
			slow = append(slow, id)
			continue
		}
		b, err := readmodel.Encode(readmodel.FromState(next.state, next.seq))
		if err != nil {
			slow = append(slow, id)
			continue
		}
		msg := &nats.Msg{Subject: p.kvSubject(id), Data: b, Header: nats.Header{}}
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(cur.rev, 10))
		fut, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			slow = append(slow, id)
			continue
		}
		inflight = append(inflight, pending{id: id, next: next, n: n, fut: fut})
	}
	// One deadline for the whole batch, and one that stays expired: a put
	// whose ack is lost (its KV leader stepped down or died) never
	// resolves, and a timer's single tick would release only the first.
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pd := range inflight {
		select {
		case ack := <-pd.fut.Ok():
			pd.next.rev = ack.Sequence
			p.cache.put(pd.id, pd.next)
			pd.n.count(&p.m)
			for _, it := range groups[pd.id] {
				_ = it.msg.Ack()
			}
		case err := <-pd.fut.Err():
			if isRevisionConflict(err) {
				p.m.conflicts.Inc()
			}
			p.cache.forget(pd.id)
			slow = append(slow, pd.id)
		case <-wait.Done():
			p.cache.forget(pd.id)
			slow = append(slow, pd.id)
		}
	}
	return slow
}

func (p *Projector) kvSubject(id string) string { return "$KV." + natsx.Bucket + "." + id }

// apply folds items (one article, stream order) into its snapshot.
func (p *Projector) apply(ctx context.Context, id string, items []item) error {
	for attempt := 0; attempt < 8; attempt++ {
		cur, ok := p.cache.get(id)
		confirmed := false
		if !ok {
			if items[0].ev.Version == 1 && attempt == 0 {
				// A create: optimistically assume no snapshot; Create checks.
				// If one exists (a redelivery after a crash between the KV
				// write and the ack), the next attempt reads it.
				cur = cached{}
			} else {
				var err error
				if cur, err = p.load(ctx, id); err != nil {
					return err
				}
				confirmed = true
			}
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
		if isRevisionConflict(err) {
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

var (
	errStale = errors.New("cached snapshot may be stale")
	errGap   = errors.New("event's predecessor is not in the snapshot")
)

// tally is what one fold did, counted once its snapshot write succeeds, so
// that an attempt lost to a compare-and-set race is not counted.
type tally struct{ applied, duplicates, replays int }

func (t tally) count(m *metrics) {
	m.applied.Add(float64(t.applied))
	m.duplicates.Add(float64(t.duplicates))
	m.replays.Add(float64(t.replays))
}

// fold applies items onto cur. A duplicate seen only by the cache is
// confirmed against KV first (the bucket may have been purged by a rebuild).
func (p *Projector) fold(ctx context.Context, id string, cur cached, confirmed, replay bool, items []item) (cached, bool, tally, error) {
	next := cur
	dirty := false
	var n tally
	for _, it := range items {
		v := next.state.Article.Version
		switch {
		case it.ev.Version <= v:
			if !confirmed && !dirty {
				return cur, false, n, errStale
			}
			n.duplicates++
		case it.ev.Version == v+1:
			st, err := domain.Apply(next.state, it.ev)
			if err != nil {
				return cur, false, n, fmt.Errorf("apply seq %d: %w", it.seq, err)
			}
			next.state, next.seq, dirty = st, it.seq, true
			n.applied++
		case !replay:
			return cur, false, n, errGap
		default:
			// The predecessor is not in KV (another instance holds it, or
			// the snapshot was removed): rebuild the article from the stream.
			st, seq, err := p.store.State(ctx, id, it.seq)
			if err != nil {
				return cur, false, n, err
			}
			if st.Article.Version != it.ev.Version {
				return cur, false, n, fmt.Errorf("replay of %s up to seq %d gave v%d, want v%d", id, it.seq, st.Article.Version, it.ev.Version)
			}
			next.state, next.seq, dirty = st, seq, true
			n.replays++
			n.applied++
		}
	}
	return next, dirty, n, nil
}

func (p *Projector) load(ctx context.Context, id string) (cached, error) {
	e, err := p.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cached{}, nil
	}
	if err != nil {
		return cached{}, fmt.Errorf("kv get %s: %w", id, err)
	}
	snap, _, err := readmodel.Decode(e.Value())
	if err != nil {
		return cached{}, err
	}
	return cached{state: snap.State(), seq: snap.Seq, rev: e.Revision()}, nil
}

func (p *Projector) write(ctx context.Context, c cached, rev uint64) (uint64, error) {
	b, err := readmodel.Encode(readmodel.FromState(c.state, c.seq))
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return p.kv.Create(ctx, c.state.Article.ID, b)
	}
	return p.kv.Update(ctx, c.state.Article.ID, b, rev)
}

func isRevisionConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || natsx.IsConflict(err)
}

// Checkpoint is the stream sequence of the last event this instance handled.
func (p *Projector) Checkpoint() uint64 { return p.checkpoint.Load() }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
