package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// provision creates the stream, the bucket and the consumer as the
// services (and `inkstream provision`) do, so that the part does not rely
// on a service doing it at start-up.
func provision(ctx context.Context, js jetstream.JetStream, cfg natsx.Options) (natsx.Resources, error) {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return natsx.Provision(pctx, js, cfg, quiet)
}

// rawArticle is an article the raw update baseline writes: its state and
// the stream sequence of its last event.
type rawArticle struct {
	id    string
	state domain.State
	seq   uint64
}

// updateLoop is the baseline of the PUT load: conns goroutines on one
// connection, each replacing the fields of articles of its own as a PUT
// does (the same new title, author and so on), deciding the update event
// with domain.Decide and publishing it with the message natsx.EventMsg
// builds (its message id, the expected last sequence of the article's
// subjects, the event type), synchronously, waiting for each ack.
type updateLoop struct {
	js               jetstream.JetStream
	warmup, duration time.Duration
	cpu              *cpuMeter
	owned            [][]*rawArticle // per publisher
	counters         []int
}

// newUpdateLoop creates n articles with raw synchronous publishes and
// shares them out among conns publishers.
func newUpdateLoop(ctx context.Context, js jetstream.JetStream, conns, n int) (*updateLoop, error) {
	l := &updateLoop{js: js, owned: make([][]*rawArticle, conns), counters: make([]int, conns)}
	arts := make([]*rawArticle, n)
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && errs[w] == nil; i += conns {
				a, err := createRaw(ctx, js, i)
				arts[i], errs[w] = a, err
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for i, a := range arts {
		l.owned[i%conns] = append(l.owned[i%conns], a)
	}
	return l, nil
}

// createRaw publishes the create event of a new article, as POST would.
func createRaw(ctx context.Context, js jetstream.JetStream, n int) (*rawArticle, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	e, err := newEvent(id.String(), 1, domain.ArticleCreated{Fields: articleFields(title("raw", n), 0)})
	if err != nil {
		return nil, err
	}
	msg, err := natsx.EventMsg(e, 0, e.ID, "")
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(pctx, msg)
	if err != nil {
		return nil, err
	}
	st, err := domain.Apply(domain.State{}, e)
	if err != nil {
		return nil, err
	}
	return &rawArticle{id: e.ArticleID, state: st, seq: ack.Sequence}, nil
}

func (l *updateLoop) spans() (time.Duration, time.Duration) { return l.warmup, l.duration }
func (l *updateLoop) meter() *cpuMeter                      { return l.cpu }
func (l *updateLoop) close()                                {}

func (l *updateLoop) slice(ctx context.Context, d time.Duration) ([]workerResult, time.Duration, error) {
	return drive(ctx, len(l.owned), d, func(w int) (func() string, func()) {
		return func() string {
			i := l.counters[w]
			l.counters[w]++
			a := l.owned[w][i%len(l.owned[w])]
			if err := a.update(ctx, l.js, w*100_000_000+i+1); err != nil {
				return err.Error()
			}
			return ""
		}, func() {}
	})
}

// update publishes the event of a PUT of article n's fields (the body
// put builds for request n).
func (a *rawArticle) update(ctx context.Context, js jetstream.JetStream, n int) error {
	evID, err := uuid.NewV7()
	if err != nil {
		return err
	}
	fields := articleFields(title("updated", n), 0).Normalize(a.id)
	cmd := domain.ReplaceArticle{Meta: domain.Meta{EventID: evID.String(), At: time.Now().UTC().Truncate(time.Microsecond), Actor: actor}, ID: a.id, Fields: fields}
	evs, err := domain.Decide(a.state, cmd)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil // nothing changed: no event, as for the PUT
	}
	e := evs[0]
	msg, err := natsx.EventMsg(e, a.seq, e.ID, "")
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(pctx, msg)
	if err != nil {
		return err
	}
	st, err := domain.Apply(a.state, e)
	if err != nil {
		return err
	}
	a.state, a.seq = st, ack.Sequence
	return nil
}

// batchLoop is the baseline of the bulk create: conns goroutines on one
// connection, each committing one atomic batch of size create events at a
// time (jetstreamext.NewBatchPublisher), each event with the message, the
// message id and the expected sequence natsx.EventStore.AppendBatch gives
// it, and waiting for the commit's ack. A request is a batch.
type batchLoop struct {
	js               jetstream.JetStream
	conns, size      int
	warmup, duration time.Duration
	cpu              *cpuMeter
	counters         []int
}

func (l *batchLoop) spans() (time.Duration, time.Duration) { return l.warmup, l.duration }
func (l *batchLoop) meter() *cpuMeter                      { return l.cpu }
func (l *batchLoop) close()                                {}

func (l *batchLoop) slice(ctx context.Context, d time.Duration) ([]workerResult, time.Duration, error) {
	if l.counters == nil {
		l.counters = make([]int, l.conns)
	}
	return drive(ctx, l.conns, d, func(w int) (func() string, func()) {
		return func() string {
			i := l.counters[w]
			l.counters[w]++
			if err := publishBatch(ctx, l.js, l.size, (w*100_000_000+i)*l.size); err != nil {
				return err.Error()
			}
			return ""
		}, func() {}
	})
}

// publishBatch builds the create events of articles first to first+size-1
// (the articles bulkBody(first) asks for) and commits them as one atomic
// batch.
func publishBatch(ctx context.Context, js jetstream.JetStream, size, first int) error {
	b, err := jetstreamext.NewBatchPublisher(js)
	if err != nil {
		return err
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	for i := range size {
		n := first + i
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		evID, err := uuid.NewV7()
		if err != nil {
			return err
		}
		e := domain.Event{ID: evID.String(), ArticleID: id.String(), Version: 1, At: at, Actor: actor,
			Change: domain.ArticleCreated{Fields: articleFields(title("bulk", n), 0)}}
		msg, err := natsx.EventMsg(e, 0, e.ID, "")
		if err != nil {
			_ = b.Discard()
			return err
		}
		if i < size-1 {
			err = b.AddMsg(msg)
		} else {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			var ack *jetstreamext.BatchAck
			ack, err = b.CommitMsg(pctx, msg)
			cancel()
			if err == nil && ack.BatchSize != uint64(size) {
				err = fmt.Errorf("batch of %d committed %d", size, ack.BatchSize)
			}
		}
		if err != nil {
			_ = b.Discard()
			return err
		}
	}
	return nil
}
