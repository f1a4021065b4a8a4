package natsx

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Follow hands every message of the stream from stream sequence from on
// (0 or 1: from the first) to each, in order, then every new one as it
// arrives, until ctx ends (nil) or each returns an error (returned). It reads with an ordered
// consumer, which JetStream keeps in order and without gaps across
// reconnects. Errors: domain.ErrUnavailable, or each's.
func (l *Log) Follow(ctx context.Context, from uint64, each func(events.Message) error) error {
	stream, err := l.js.Stream(ctx, Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w: %v", Stream, domain.ErrUnavailable, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(from, 1),
	})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w: %v", domain.ErrUnavailable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("follow stream: %w: %v", domain.ErrUnavailable, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("follow stream: %w: %v", domain.ErrUnavailable, err)
		}
		if err := each(delivery(m).Message); err != nil {
			return err
		}
	}
}
