package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// giveUp is how long Provision retries a failure that may pass (a cluster
// still electing its leaders, a node still joining) before it reports it.
const giveUp = 30 * time.Second

// Provision creates the stream, the bucket and the consumer, or updates
// the ones that exist to cfg — but it never lowers the replicas of one
// that exists: a config asking for fewer is logged as a warning naming
// both numbers, and the resource keeps its replicas (the consumer always
// keeps its own). It needs the admin user. It retries what may pass for
// up to 30 s, and fails at once on what cannot (more replicas than a
// single server has, JetStream off).
func Provision(ctx context.Context, js jetstream.JetStream, cfg Options, log *slog.Logger) (Resources, error) {
	p := &provisioner{js: js, cfg: cfg, log: log, told: map[string]bool{}}
	var first time.Time
	for attempt := 0; ; attempt++ {
		res, err := p.once(ctx)
		if err == nil {
			log.Info("provisioned", "stream", Stream, "stream_replicas", res.Stream.CachedInfo().Config.Replicas,
				"bucket", Bucket, "consumer", ConsumerName)
			return res, nil
		}
		if first.IsZero() {
			first = time.Now()
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("provision: %w", errors.Join(err, ctx.Err()))
		}
		if permanent(err) || time.Since(first) > giveUp {
			return res, fmt.Errorf("provision: %w", err)
		}
		if attempt%10 == 3 {
			log.Warn("provision: retrying", "err", err)
		}
		if !sleep(ctx, backoff(attempt)) {
			return res, fmt.Errorf("provision: %w", errors.Join(err, ctx.Err()))
		}
	}
}

// permanent reports whether a JetStream answer will be the same however
// often it is asked.
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsErrReplicasNotSupported, jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
		return true
	}
	return apiErr.Code == 500
}

// jsErrReplicasNotSupported is nats-server's "replicas > 1 not supported
// in non-clustered mode".
const jsErrReplicasNotSupported jetstream.ErrorCode = 10074

type provisioner struct {
	js   jetstream.JetStream
	cfg  Options
	log  *slog.Logger
	told map[string]bool // warnings given, so a retry does not repeat them
}

func (p *provisioner) once(ctx context.Context) (Resources, error) {
	// Short attempts: a request sent before a cluster has a meta leader gets
	// no answer at all, and the next attempt is the quickest way through.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var res Resources
	want := StreamConfig(p.cfg)
	st, err := p.js.Stream(ctx, Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		res.Stream, err = p.js.CreateStream(ctx, want)
	case err == nil:
		want.Replicas = p.keep("stream "+Stream, "-stream-replicas", st.CachedInfo().Config.Replicas, want.Replicas)
		res.Stream, err = p.js.UpdateStream(ctx, want)
	}
	if err != nil {
		return res, fmt.Errorf("stream %s: %w", Stream, err)
	}
	bucket := BucketConfig(p.cfg)
	kv, err := p.js.KeyValue(ctx, Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		res.KV, err = p.js.CreateKeyValue(ctx, bucket)
	case err == nil:
		var have int
		if have, err = BucketReplicas(ctx, kv); err == nil {
			bucket.Replicas = p.keep("bucket "+Bucket, "-kv-replicas", have, bucket.Replicas)
			res.KV, err = p.js.UpdateKeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return res, fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	if err := ensureConsumer(ctx, p.js); err != nil {
		return res, err
	}
	return res, nil
}

// keep returns the replicas to give a resource that has have when the
// configuration (flag) asks for want: want, unless it is fewer. Then it
// warns, once, naming both.
func (p *provisioner) keep(what, flag string, have, want int) int {
	if want >= have {
		return want
	}
	if !p.told[what] {
		p.told[what] = true
		p.log.Warn(fmt.Sprintf("%s has %d replicas; %s %d asks for fewer: kept at %d (nothing lowers replicas; to lower them on purpose, use the NATS CLI)", what, have, flag, want, have),
			"resource", what, "replicas", have, "configured", want)
	}
	return have
}

// ensureConsumer creates the projector consumer when it is missing. One
// that exists is left as it is: a rebuild may have moved its start past
// the stream's end, and its replicas are its own.
func ensureConsumer(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.Consumer(ctx, Stream, ConsumerName)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		_, err = js.CreateConsumer(ctx, Stream, ConsumerConfig())
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	return nil
}

// BucketReplicas is the number of replicas of bucket kv.
func BucketReplicas(ctx context.Context, kv jetstream.KeyValue) (int, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, errors.New("bucket status has no stream info")
	}
	return bs.StreamInfo().Config.Replicas, nil
}

// Lookup finds the stream, the bucket and, with consumer, the projector
// consumer, and changes nothing: what it needs is the admin's to create
// (inkstream provision). While something is missing or JetStream does not
// answer it waits, saying what it waits for, until ctx ends. When a
// resource's replicas differ from cfg's it warns, naming both.
func Lookup(ctx context.Context, js jetstream.JetStream, cfg Options, consumer bool, log *slog.Logger) (Resources, error) {
	var lastLog time.Time
	for attempt := 0; ; attempt++ {
		res, what, err := lookupOnce(ctx, js, consumer)
		if err == nil {
			if have := res.Stream.CachedInfo().Config.Replicas; have != cfg.StreamReplicas {
				log.Warn(fmt.Sprintf("stream %s has %d replicas, -stream-replicas is %d: left as it is (provisioning is the admin's: inkstream provision)", Stream, have, cfg.StreamReplicas))
			}
			if have, err := BucketReplicas(ctx, res.KV); err == nil && have != cfg.KVReplicas {
				log.Warn(fmt.Sprintf("bucket %s has %d replicas, -kv-replicas is %d: left as it is (provisioning is the admin's: inkstream provision)", Bucket, have, cfg.KVReplicas))
			}
			return res, nil
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("look up %s: %w", what, errors.Join(err, ctx.Err()))
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			log.Warn("waiting for "+what+" (an admin creates it: inkstream provision)", "err", err)
		}
		if !sleep(ctx, backoff(attempt)) {
			return res, fmt.Errorf("look up %s: %w", what, errors.Join(err, ctx.Err()))
		}
	}
}

func lookupOnce(ctx context.Context, js jetstream.JetStream, consumer bool) (Resources, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var res Resources
	var err error
	if res.Stream, err = js.Stream(ctx, Stream); err != nil {
		return res, "stream " + Stream, err
	}
	if res.KV, err = js.KeyValue(ctx, Bucket); err != nil {
		return res, "bucket " + Bucket, err
	}
	if consumer {
		if _, err = js.Consumer(ctx, Stream, ConsumerName); err != nil {
			return res, "consumer " + ConsumerName, err
		}
	}
	return res, "", nil
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
