package natsx

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/pkg/events"
)

// acker settles a message of the projector consumer.
type acker struct{ msg jetstream.Msg }

func (a acker) Ack()                    { _ = a.msg.Ack() }
func (a acker) Nak(delay time.Duration) { _ = a.msg.NakWithDelay(delay) }

// Consumer feeds the projector from the durable consumer projector.
type Consumer struct {
	js        jetstream.JetStream
	provision bool
	log       *slog.Logger
}

// NewConsumer returns the projector's source; with provision (the admin
// user) it creates the durable consumer when it is missing, otherwise it
// waits for it.
func NewConsumer(js jetstream.JetStream, provision bool, log *slog.Logger) *Consumer {
	return &Consumer{js: js, provision: provision, log: log}
}

// Consume hands messages to handle, up to batch pulled at once, until ctx
// ends. When the consumer is deleted (a rebuild resets it) it binds to the
// new one. It returns nil on a clean stop, after handle has had every
// message the client had buffered.
func (c *Consumer) Consume(ctx context.Context, batch int, handle func(events.Delivery)) error {
	for ctx.Err() == nil {
		var cons jetstream.Consumer
		var err error
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		// Bind to the consumer as it is (a rebuild may have moved its
		// start); create it only when it is missing.
		cons, err = c.js.Consumer(cctx, Stream, ConsumerName)
		if errors.Is(err, jetstream.ErrConsumerNotFound) && c.provision {
			cons, err = c.js.CreateConsumer(cctx, Stream, ConsumerConfig())
		}
		cancel()
		if err != nil {
			c.log.Warn("projector: waiting for consumer "+ConsumerName, "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		lost := make(chan struct{})
		var once sync.Once
		cc, err := cons.Consume(func(m jetstream.Msg) { handle(delivery(m)) },
			jetstream.PullMaxMessages(batch),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
					once.Do(func() { close(lost) })
					return
				}
				c.log.Debug("projector: consume", "err", err)
			}))
		if err != nil {
			c.log.Warn("projector: consume", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		select {
		case <-ctx.Done():
			// Drain, not Stop: Stop drops the messages the client has
			// buffered, which then sit unacknowledged on the server for
			// AckWait before any other instance gets them, holding the ack
			// floor back. Drain hands them to handle first.
			cc.Drain()
			<-cc.Closed()
			return nil
		case <-lost:
			c.log.Info("projector: consumer was deleted; binding again")
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

func delivery(m jetstream.Msg) events.Delivery {
	d := events.Delivery{Acker: acker{m}, Message: events.Message{Subject: m.Subject(), Data: m.Data()}}
	if md, err := m.Metadata(); err == nil {
		d.Message.Seq = md.Sequence.Stream
	}
	if h := m.Headers(); h != nil {
		d.Message.MsgID, d.Message.RequestHash, d.Message.Trace = h.Get(jetstream.MsgIDHeader), h.Get(events.HeaderRequestHash), traceOf(h)
	}
	return d
}

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
