package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Log is stream ARTICLES as a whole: reading all of it, and how far it and
// the projector consumer have come.
type Log struct {
	js jetstream.JetStream
}

// NewLog returns the whole-stream view on js.
func NewLog(js jetstream.JetStream) *Log { return &Log{js: js} }

// LastSeq is the stream's last sequence (0: empty), as the leader has it.
// Errors: domain.ErrUnavailable.
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	st, err := l.js.Stream(ctx, Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w: %v", Stream, domain.ErrUnavailable, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// AckFloor is the stream sequence up to which the projector consumer has
// acknowledged every message. Errors: domain.ErrUnavailable.
func (l *Log) AckFloor(ctx context.Context) (uint64, error) {
	cons, err := l.js.Consumer(ctx, Stream, ConsumerName)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w: %v", ConsumerName, domain.ErrUnavailable, err)
	}
	return cons.CachedInfo().AckFloor.Stream, nil
}

// Lag is how far the projector consumer is behind the stream: the events
// past its ack floor and when the first of them was written (zero when
// there are none). Errors: domain.ErrUnavailable.
func (l *Log) Lag(ctx context.Context) (uint64, time.Time, error) {
	st, err := l.js.Stream(ctx, Stream)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stream %s: %w: %v", Stream, domain.ErrUnavailable, err)
	}
	last := st.CachedInfo().State.LastSeq
	floor, err := l.AckFloor(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	if floor >= last {
		return 0, time.Time{}, nil
	}
	// The first message after the floor: the one at floor+1 may have been
	// removed (an erasure purges an article's events).
	m, err := st.GetMsg(ctx, floor+1, jetstream.WithGetMsgSubject(events.StreamSubjects))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stream %s: message after %d: %w: %v", Stream, floor, domain.ErrUnavailable, err)
	}
	return last - floor, m.Time, nil
}

// ReadAll hands every message of the stream, from the first to the stream's
// last sequence when it began, to each in order, and returns that sequence.
// It reads with an ordered consumer (no acknowledgements, no state on the
// server). Errors: domain.ErrUnavailable, or each's error.
func (l *Log) ReadAll(ctx context.Context, each func(events.Message) error) (uint64, error) {
	stream, err := l.js.Stream(ctx, Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w: %v", Stream, domain.ErrUnavailable, err)
	}
	info := stream.CachedInfo()
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return last, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, fmt.Errorf("ordered consumer: %w: %v", domain.ErrUnavailable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, fmt.Errorf("read stream: %w: %v", domain.ErrUnavailable, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return 0, fmt.Errorf("read stream: %w: %v", domain.ErrUnavailable, err)
		}
		d := delivery(m)
		if d.Message.Seq > last {
			return last, nil
		}
		if err := each(d.Message); err != nil {
			return 0, err
		}
		if d.Message.Seq == last {
			return last, nil
		}
	}
}

// ResetForRebuild prepares a rebuild that folds the log itself: it purges
// the bucket, then moves the projector consumer past the stream's last
// sequence (deleting and creating it again), so that running projectors,
// which rebind by themselves, fold only what comes after while the rebuild
// folds everything up to it. It returns that last sequence.
func ResetForRebuild(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	last, err := NewLog(js).LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	kvs, err := js.Stream(ctx, BucketStream)
	if err != nil {
		return 0, fmt.Errorf("bucket stream: %w", err)
	}
	if err := kvs.Purge(ctx); err != nil {
		return 0, fmt.Errorf("purge bucket: %w", err)
	}
	cfg := ConsumerConfig()
	if cfg.Replicas, err = consumerReplicas(ctx, js); err != nil {
		return 0, err
	}
	if last > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
	}
	if err := js.DeleteConsumer(ctx, Stream, ConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, fmt.Errorf("delete consumer: %w", err)
	}
	// A consumer created (by a running projector) while the server was
	// still removing the old one's directory has lost its store: every
	// update fails (err 10012). Delete such a one and create it again.
	for attempt := 0; ; attempt++ {
		_, err := js.CreateConsumer(ctx, Stream, cfg)
		if err == nil {
			break
		}
		if attempt == 4 || !sleep(ctx, 100*time.Millisecond) {
			return 0, fmt.Errorf("create consumer: %w", err)
		}
		_ = js.DeleteConsumer(ctx, Stream, ConsumerName)
	}
	return last, nil
}

// consumerReplicas are the replicas of the projector consumer (0: the
// stream's, also when there is none), which a consumer made anew in its
// place keeps: a reset never shrinks it.
func consumerReplicas(ctx context.Context, js jetstream.JetStream) (int, error) {
	old, err := js.Consumer(ctx, Stream, ConsumerName)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	return old.CachedInfo().Config.Replicas, nil
}
