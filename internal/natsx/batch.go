package natsx

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// jsErrAtomicDuplicate is JetStream's answer to an atomic batch holding a
// message id the stream has already stored.
const jsErrAtomicDuplicate = 10201

// AppendBatch appends the creates evs as one atomic batch (the stream must
// allow atomic publishing): every event lands, each expecting its article
// to have no message yet, or none does. msgIDs are the events' message ids.
// It returns the sequences of the first and last event. When the stream
// already holds the first message id (a retried batch) it stores nothing
// and returns that message's sequence with duplicate set.
//
// Errors: domain.ErrConflict (an article already has events),
// domain.ErrUnavailable (no answer in time: retry with the same ids).
func (s *EventStore) AppendBatch(ctx context.Context, evs []domain.Event, msgIDs []string, requestHash string) (first, last uint64, duplicate bool, err error) {
	if len(evs) == 0 || len(evs) != len(msgIDs) {
		return 0, 0, false, fmt.Errorf("append batch: %d events, %d message ids", len(evs), len(msgIDs))
	}
	b, err := jetstreamext.NewBatchPublisher(s.js)
	if err != nil {
		return 0, 0, false, err
	}
	var ack *jetstreamext.BatchAck
	var firstMsg *nats.Msg
	for i, e := range evs {
		msg, err := EventMsg(e, 0, msgIDs[i], requestHash)
		if err != nil {
			_ = b.Discard()
			return 0, 0, false, err
		}
		if i == 0 {
			firstMsg = msg
		}
		if i < len(evs)-1 {
			err = b.AddMsg(msg)
		} else {
			ack, err = b.CommitMsg(ctx, msg)
		}
		if err != nil {
			_ = b.Discard()
			return s.batchError(ctx, err, firstMsg)
		}
	}
	if ack.BatchSize != uint64(len(evs)) {
		return 0, 0, false, fmt.Errorf("append batch: %d of %d events committed: %w", ack.BatchSize, len(evs), domain.ErrUnavailable)
	}
	return ack.Sequence - uint64(len(evs)) + 1, ack.Sequence, false, nil
}

// batchError tells why a batch was refused. A batch refused for holding a
// message id the stream has stored is a retry: every message id of a batch
// derives from one key and the first is always in it, so the stream knows
// the first message's id, and publishing the first message alone again is
// de-duplicated (nothing is stored) and answers the original's sequence. Its
// article is new, so its expected sequence of 0 holds on every replica
// count, whichever check the server makes first.
func (s *EventStore) batchError(ctx context.Context, err error, first *nats.Msg) (uint64, uint64, bool, error) {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrAtomicDuplicate:
		delete(first.Header, jetstreamext.BatchIDHeader)
		delete(first.Header, jetstreamext.BatchSeqHeader)
		delete(first.Header, jetstreamext.BatchCommitHeader)
		ack, perr := s.js.PublishMsg(ctx, first)
		if perr != nil {
			return 0, 0, false, fmt.Errorf("append batch: find the original: %w: %v", domain.ErrUnavailable, perr)
		}
		if !ack.Duplicate {
			return 0, 0, false, fmt.Errorf("append batch: refused as a duplicate, yet its first message %s was new", first.Header.Get(jetstream.MsgIDHeader))
		}
		return ack.Sequence, 0, true, nil
	case IsConflict(err):
		return 0, 0, false, fmt.Errorf("append batch: an article already has events: %w", domain.ErrConflict)
	case errors.As(err, &apiErr) && apiErr.Code != 503 && apiErr.Code != 0:
		return 0, 0, false, fmt.Errorf("append batch: %w", err)
	default:
		return 0, 0, false, fmt.Errorf("append batch: %w: %v", domain.ErrUnavailable, err)
	}
}

// Range returns the messages of the stream from sequence from to to, in
// order, complete or domain.ErrUnavailable.
func (s *EventStore) Range(ctx context.Context, from, to uint64) ([]events.Message, error) {
	var out []events.Message
	if err := s.read(ctx, events.StreamSubjects, from, to, func(m events.Message) { out = append(out, m) }); err != nil {
		return nil, fmt.Errorf("messages %d to %d: %w", from, to, err)
	}
	return out, nil
}
