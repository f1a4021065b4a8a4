package natsx

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// groupMax is the most appends one group commit publishes together.
const groupMax = 256

// group is the group commit of the write path: one goroutine publishes
// every append that is waiting when it comes round, back to back, as
// pipelined publishes, so that concurrent requests reach JetStream
// together (the server handles what arrives together for less than the
// same messages one by one). Nothing waits for a group to fill: a lone
// append goes out at once, and under load each group is what queued while
// the one before went out. Every message keeps its own expected sequence
// and message id, and every append waits for its own acknowledgement.
type group struct {
	js jetstream.JetStream
	in chan groupAppend
}

// GroupCommits counts the groups the group commit has published and the
// appends in them.
func (s *EventStore) GroupCommits() (groups, appends uint64) {
	return s.groups.Load(), s.grouped.Load()
}

type groupAppend struct {
	msg  *nats.Msg
	sent chan groupSent
}

type groupSent struct {
	fut jetstream.PubAckFuture
	err error
}

// RunGroupCommit publishes the store's appends in groups until ctx ends;
// until it runs, and after, each append publishes on its own.
func (s *EventStore) RunGroupCommit(ctx context.Context) error {
	g := &group{js: s.js, in: make(chan groupAppend, groupMax)}
	s.group.Store(g)
	defer s.group.Store(nil)
	batch := make([]groupAppend, 0, groupMax)
	for {
		select {
		case <-ctx.Done():
			// Appends still queued go out on their own.
			for {
				select {
				case a := <-g.in:
					fut, err := s.js.PublishMsgAsync(a.msg)
					a.sent <- groupSent{fut, err}
				default:
					return nil
				}
			}
		case a := <-g.in:
			batch = append(batch[:0], a)
		fill:
			for len(batch) < groupMax {
				select {
				case a := <-g.in:
					batch = append(batch, a)
				default:
					break fill
				}
			}
			for _, a := range batch {
				fut, err := s.js.PublishMsgAsync(a.msg)
				a.sent <- groupSent{fut, err}
			}
			s.groups.Add(1)
			s.grouped.Add(uint64(len(batch)))
		}
	}
}

// publish sends msg, in the running group commit if there is one, and
// returns the future of its acknowledgement.
func (s *EventStore) publish(ctx context.Context, msg *nats.Msg) (jetstream.PubAckFuture, error) {
	g := s.group.Load()
	if g == nil {
		return s.js.PublishMsgAsync(msg)
	}
	a := groupAppend{msg: msg, sent: make(chan groupSent, 1)}
	select {
	case g.in <- a:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued the message goes out even if ctx ends: a retry with its
	// message id is de-duplicated.
	select {
	case r := <-a.sent:
		return r.fut, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
