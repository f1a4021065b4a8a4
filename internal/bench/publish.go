package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/procs"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// natsDefaults is the NATS configuration the services run with by default
// (their flags' defaults), pointed at url.
func natsDefaults(url string) (natsx.Options, error) {
	cfg, err := config.ParseProjector("inkbench", nil, func(string) string { return "" }, nopWriter{})
	if err != nil {
		return natsx.Options{}, err
	}
	cfg.NATS.URL = url
	cfg.NATS.Name = "inkbench"
	return cfg.NATS, nil
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }

// connectJS dials the harness's own connection to the server p and waits
// until JetStream answers.
func connectJS(ctx context.Context, p *proc, url string) (*nats.Conn, jetstream.JetStream, error) {
	var nc *nats.Conn
	var js jetstream.JetStream
	err := procs.Poll(ctx, p.Proc, "JetStream at "+url, 20*time.Millisecond, 30*time.Second, func() (bool, error) {
		c, err := nats.Connect(url, nats.Name("inkbench"), nats.Timeout(time.Second), nats.MaxReconnects(-1))
		if err != nil {
			return false, err
		}
		j, err := jetstream.New(c, jetstream.WithPublishAsyncMaxPending(2*publishWindow),
			jetstream.WithPublishAsyncTimeout(30*time.Second))
		if err == nil {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = j.AccountInfo(actx)
			cancel()
		}
		if err != nil {
			c.Close()
			return false, err
		}
		nc, js = c, j
		return true, nil
	})
	return nc, js, err
}

// publishLoop is the raw publish baseline: conns goroutines on one
// connection, each publishing one create event at a time with
// js.PublishMsg and waiting for its ack. It publishes the POST's event
// straight into stream ARTICLES, so the projector and the query API do the
// same work behind it as behind the POST load: the comparison isolates
// what the command API adds.
type publishLoop struct {
	js               jetstream.JetStream
	conns            int
	warmup, duration time.Duration
	cpu              *cpuMeter
	n                atomic.Int64 // article numbers
}

func (p *publishLoop) spans() (time.Duration, time.Duration) { return p.warmup, p.duration }
func (p *publishLoop) meter() *cpuMeter                      { return p.cpu }
func (p *publishLoop) close()                                {}

func (p *publishLoop) slice(ctx context.Context, d time.Duration) ([]workerResult, time.Duration, error) {
	return drive(ctx, p.conns, d, func(int) (func() string, func()) {
		return func() string {
			if err := publishOne(ctx, p.js, int(p.n.Add(1))); err != nil {
				return err.Error()
			}
			return ""
		}, func() {}
	})
}

// publishOne builds and synchronously publishes one create event, as the
// command API does for a POST (its event encoding included).
func publishOne(ctx context.Context, js jetstream.JetStream, n int) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	e, err := newEvent(id.String(), 1, domain.ArticleCreated{Fields: articleFields(title("posted", n), 0)})
	if err != nil {
		return err
	}
	msg, err := natsx.EventMsg(e, 0, e.ID, "")
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = js.PublishMsg(pctx, msg)
	return err
}

// merge folds the workers' results of a load that took elapsed.
func merge(results []workerResult, elapsed time.Duration) Load {
	var all []time.Duration
	out := Load{Seconds: elapsed.Seconds()}
	kinds := errorKinds{}
	for _, r := range results {
		all = append(all, r.lat...)
		out.Errors += r.errors
		for k, n := range r.kinds {
			kinds[k] += n
		}
	}
	out.Requests = int64(len(all))
	out.RPS = float64(out.Requests) / elapsed.Seconds()
	out.Latency = latencyOf(all)
	if len(kinds) > 0 {
		out.ErrorKinds = kinds
	}
	return out
}

// publishWindow bounds the asynchronous publishes awaiting their ack.
const publishWindow = 4096

// publishHistory writes the history of `articles` articles, `total` events
// in all (the first total%articles articles get one more), straight to
// stream ARTICLES with asynchronous publishes: valid envelopes with the
// headers the command API sets, the expected last sequence included. It
// publishes in rounds — every article's version 1, then every version 2, …
// — so an article's events are spread over the stream as they are in real
// life, and each round knows the sequences its expectations name. It
// returns the stream's last sequence.
func publishHistory(ctx context.Context, js jetstream.JetStream, articles, total int, prog func(published int64)) (uint64, error) {
	if articles < 1 || total < articles {
		return 0, fmt.Errorf("history of %d events for %d articles: need at least one event per article", total, articles)
	}
	ids := make([]string, articles)
	for i := range ids {
		u, err := uuid.NewV7()
		if err != nil {
			return 0, err
		}
		ids[i] = u.String()
	}
	seqs := make([]uint64, articles)
	base, extra := total/articles, total%articles
	rounds := base
	if extra > 0 {
		rounds++
	}
	published := int64(0)
	for round := range rounds {
		n := articles
		if round == base {
			n = extra
		}
		if err := publishRound(ctx, js, ids[:n], seqs, round+1); err != nil {
			return 0, fmt.Errorf("publish version %d of %d articles: %w", round+1, n, err)
		}
		published += int64(n)
		prog(published)
	}
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs != uint64(total) {
		return 0, fmt.Errorf("stream %s holds %d messages after publishing %d", events.StreamName, info.State.Msgs, total)
	}
	return info.State.LastSeq, nil
}

// publishRound publishes version v of each article asynchronously, at
// most publishWindow awaiting their acks, and records their sequences.
func publishRound(ctx context.Context, js jetstream.JetStream, ids []string, seqs []uint64, v int) error {
	type pending struct {
		article int
		ack     jetstream.PubAckFuture
	}
	ch := make(chan pending, publishWindow)
	var failed int
	var firstErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range ch {
			select {
			case ack := <-p.ack.Ok():
				seqs[p.article] = ack.Sequence
			case err := <-p.ack.Err():
				if failed++; firstErr == nil {
					firstErr = err
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	err := func() error {
		defer close(ch)
		for a, id := range ids {
			var e domain.Event
			var err error
			if v == 1 {
				e, err = createdEvent(id, a)
			} else {
				e, err = updatedEvent(id, a, v)
			}
			if err != nil {
				return err
			}
			msg, err := natsx.EventMsg(e, seqs[a], e.ID, "")
			if err != nil {
				return err
			}
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				return err
			}
			select {
			case ch <- pending{article: a, ack: f}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}()
	<-done
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case firstErr != nil:
		return fmt.Errorf("%d publishes failed, the first: %w", failed, firstErr)
	}
	return nil
}

// ackFloor is the stream sequence up to which consumer projector has
// acknowledged everything.
func ackFloor(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cons, err := js.Consumer(cctx, events.StreamName, natsx.ConsumerName)
	if err != nil {
		return 0, err
	}
	return cons.CachedInfo().AckFloor.Stream, nil
}

// lastSeq is the last sequence of stream ARTICLES.
func lastSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, events.StreamName)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.LastSeq, nil
}

// waitProjected waits until consumer projector has acknowledged every
// event up to target. It returns when it saw that and the last ack floor
// it read (below target on error).
func waitProjected(ctx context.Context, js jetstream.JetStream, p *proc, target uint64, interval, timeout time.Duration, prog func(floor int64)) (time.Time, uint64, error) {
	var floor uint64
	var at time.Time
	err := procs.Poll(ctx, p.Proc, fmt.Sprintf("projector to acknowledge up to sequence %d", target), interval, timeout, func() (bool, error) {
		f, err := ackFloor(ctx, js)
		if err != nil {
			return false, err
		}
		floor, at = f, time.Now()
		prog(int64(f))
		return f >= target, nil
	})
	if err != nil {
		return at, floor, fmt.Errorf("%w (acknowledged up to %d)", err, floor)
	}
	return at, floor, nil
}
