package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/pkg/events"
)

// Progress is how far a rebuild has come.
type Progress struct {
	Done, Total uint64 // stream sequences acknowledged / to reach
	Elapsed     time.Duration
}

// Reset starts the read model from scratch: it purges the bucket, then
// deletes and recreates the durable consumer, so every projector (running
// ones rebind by themselves) folds the stream again from its first event.
// The query API keeps serving from its view meanwhile; a snapshot missing
// from KV is rebuilt from the stream on a read. It returns the stream's last
// sequence, the point the rebuild must reach.
func Reset(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, stream jetstream.Stream) (uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	// Purge first: anything projected between the purge and the consumer
	// reset is still a correct fold of the stream, and is redone anyway.
	kvs, err := js.Stream(ctx, "KV_"+natsx.Bucket)
	if err != nil {
		return 0, fmt.Errorf("bucket stream: %w", err)
	}
	if err := kvs.Purge(ctx); err != nil {
		return 0, fmt.Errorf("purge bucket: %w", err)
	}
	if err := js.DeleteConsumer(ctx, events.StreamName, natsx.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, fmt.Errorf("delete consumer: %w", err)
	}
	// A consumer created (by a running projector) while the server was
	// still removing the old one's directory has lost its store: every
	// update fails (err 10012). Delete such a one and create it again.
	for attempt := 0; ; attempt++ {
		_, err := js.CreateOrUpdateConsumer(ctx, events.StreamName, natsx.ConsumerConfig())
		if err == nil {
			break
		}
		if attempt == 4 || !sleep(ctx, 100*time.Millisecond) {
			return 0, fmt.Errorf("create consumer: %w", err)
		}
		_ = js.DeleteConsumer(ctx, events.StreamName, natsx.Consumer)
	}
	return info.State.LastSeq, nil
}

// WaitCaughtUp polls the consumer until it has acknowledged every message
// up to target, calling progress about once a second.
func WaitCaughtUp(ctx context.Context, js jetstream.JetStream, target uint64, progress func(Progress)) error {
	start := time.Now()
	last := time.Time{}
	for {
		cons, err := js.Consumer(ctx, events.StreamName, natsx.Consumer)
		if err == nil {
			ci := cons.CachedInfo()
			done := ci.AckFloor.Stream
			if progress != nil && (time.Since(last) >= time.Second || done >= target) {
				progress(Progress{Done: min(done, target), Total: target, Elapsed: time.Since(start)})
				last = time.Now()
			}
			if done >= target {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
