package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/pkg/events"
)

// StreamConfig is the configuration of stream ARTICLES.
func StreamConfig(cfg Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Stream,
		Description: "inkstream article events: the append-only log",
		Subjects:    []string{events.StreamSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    cfg.StreamReplicas,
		Duplicates:  cfg.DuplicateWindow,
		AllowDirect: true,
		Discard:     jetstream.DiscardOld,
		Compression: compression(cfg.StreamCompression),
		// A bulk create is one atomic batch: all of it lands, or none.
		AllowAtomicPublish: true,
	}
}

// compression is the store compression of a -stream-compression value:
// s2 or none.
func compression(name string) jetstream.StoreCompression {
	if name == "none" {
		return jetstream.NoCompression
	}
	return jetstream.S2Compression
}

// BucketConfig is the configuration of KV bucket articles.
func BucketConfig(cfg Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "inkstream article snapshots (key = article id)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.KVReplicas,
	}
}

// ConsumerConfig is the configuration of the durable consumer projector.
func ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "inkstream projector: folds events into bucket articles",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// Short, so events a crashed or stopped projector held are redelivered
		// soon; a slow batch redelivered early is harmless (compare-and-set).
		AckWait:       10 * time.Second,
		MaxAckPending: 50_000,
		MaxDeliver:    -1,
		MaxWaiting:    512,
	}
}

// Resources are the handles every role uses.
type Resources struct {
	Stream jetstream.Stream
	KV     jetstream.KeyValue
}

// Provision creates or updates the stream, the bucket and the consumer, so
// any process may start first. With provision false it only looks them up.
// It retries until ctx ends, since in a cluster JetStream may not have a
// meta leader yet.
func Provision(ctx context.Context, js jetstream.JetStream, cfg Options) (Resources, error) {
	var res Resources
	var err error
	for attempt := 0; ; attempt++ {
		res, err = provisionOnce(ctx, js, cfg)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("provision: %w", errors.Join(err, ctx.Err()))
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("provision: %w", errors.Join(err, ctx.Err()))
		case <-time.After(backoff(attempt)):
		}
	}
}

func provisionOnce(ctx context.Context, js jetstream.JetStream, cfg Options) (Resources, error) {
	// Short attempts: a request sent before a cluster has a meta leader gets
	// no answer at all, and the next attempt is the quickest way through.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var res Resources
	var err error
	if cfg.Provision {
		res.Stream, err = js.CreateOrUpdateStream(ctx, StreamConfig(cfg))
	} else {
		res.Stream, err = js.Stream(ctx, Stream)
	}
	if err != nil {
		return res, fmt.Errorf("stream %s: %w", Stream, err)
	}
	if cfg.Provision {
		res.KV, err = js.CreateOrUpdateKeyValue(ctx, BucketConfig(cfg))
	} else {
		res.KV, err = js.KeyValue(ctx, Bucket)
	}
	if err != nil {
		return res, fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	// The consumer is created when missing, never updated: a rebuild may
	// have moved its start past the stream's end.
	_, err = js.Consumer(ctx, Stream, ConsumerName)
	if errors.Is(err, jetstream.ErrConsumerNotFound) && cfg.Provision {
		_, err = js.CreateConsumer(ctx, Stream, ConsumerConfig())
	}
	if err != nil {
		return res, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	return res, nil
}

// Ready reports whether the stream and the bucket can be reached now.
func Ready(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, Stream); err != nil {
		return fmt.Errorf("stream %s: %w", Stream, err)
	}
	if _, err := js.KeyValue(ctx, Bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	return nil
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 5)
	return min(d, time.Second)
}
