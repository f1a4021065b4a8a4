package natsx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// ErrUnavailable means JetStream did not acknowledge or answer in time (no
// quorum, a leader election, no connection). Nothing is known to be lost:
// the caller may retry with the same message id.
var ErrUnavailable = errors.New("JetStream unavailable")

// ErrMismatch means a message with the same id exists but was produced by a
// different request (an Idempotency-Key reused with another body).
var ErrMismatch = errors.New("idempotency key reused with a different request")

// StoredEvent is an event with where it sits in the stream.
type StoredEvent struct {
	Seq         uint64
	MsgID       string
	RequestHash string
	Event       events.Envelope
}

// Appended is the result of Append.
type Appended struct {
	Seq       uint64 // stream sequence of the event: the consistency token
	Duplicate bool   // the stream already held this message id; Seq is the original's
}

// EventStore appends and reads article events in stream ARTICLES.
type EventStore struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// NewEventStore returns an event store on the stream handle.
func NewEventStore(js jetstream.JetStream, stream jetstream.Stream) *EventStore {
	return &EventStore{js: js, stream: stream}
}

// IsConflict reports whether err is JetStream's "wrong last sequence" answer
// (10071, or 10164 on replicated streams).
func IsConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// Append publishes e on its subject, expecting that the last event of the
// article has stream sequence expect (0: the article has no events), with
// msgID as Nats-Msg-Id. Timeouts and lost leaders are retried with the same
// message id until ctx ends, so a retry never duplicates the event.
//
// Errors: domain.ErrConflict when another write got there first,
// ErrUnavailable when JetStream did not answer before ctx ended.
func (s *EventStore) Append(ctx context.Context, e events.Envelope, expect uint64, msgID, requestHash string) (Appended, error) {
	data, err := events.Encode(e)
	if err != nil {
		return Appended{}, err
	}
	filter := events.ArticleSubjects(e.ArticleID)
	hdr := nats.Header{}
	hdr.Set(jetstream.MsgIDHeader, msgID)
	hdr.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	hdr.Set(jetstream.ExpectedLastSubjSeqSubjHeader, filter)
	hdr.Set(events.HeaderEventType, string(e.Type))
	if requestHash != "" {
		hdr.Set(events.HeaderRequestHash, requestHash)
	}
	msg := &nats.Msg{Subject: events.Subject(e.ArticleID, e.Type), Header: hdr, Data: data}

	var lastErr error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err := s.js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			return Appended{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
		}
		if IsConflict(err) {
			// On R1 streams the sequence check runs before de-duplication: a
			// retry of a publish that did land answers "wrong last sequence".
			// Recognise our own message before calling it a conflict.
			last, lerr := s.Last(ctx, e.ArticleID)
			if lerr == nil && last.MsgID == msgID {
				return Appended{Seq: last.Seq, Duplicate: attempt == 0}, nil
			}
			return Appended{}, fmt.Errorf("append %s v%d of %s: %w", e.Type, e.Version, e.ArticleID, domain.ErrConflict)
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code != 503 && apiErr.Code != 0 {
			return Appended{}, fmt.Errorf("append %s of %s: %w", e.Type, e.ArticleID, err)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return Appended{}, fmt.Errorf("append %s of %s: %w: %v", e.Type, e.ArticleID, ErrUnavailable, lastErr)
		case <-time.After(backoff(attempt)):
		}
	}
}

// Last returns the last event of an article as the stream leader has it.
// Errors: domain.ErrNotFound when the article has no events, ErrUnavailable.
func (s *EventStore) Last(ctx context.Context, articleID string) (StoredEvent, error) {
	se, err := s.leaderGet(ctx, struct {
		LastFor string `json:"last_by_subj"`
	}{events.ArticleSubjects(articleID)})
	if errors.Is(err, domain.ErrNotFound) {
		return se, fmt.Errorf("article %s: %w", articleID, err)
	}
	if err != nil {
		return se, fmt.Errorf("last event of %s: %w", articleID, err)
	}
	return se, nil
}

// Get returns the event at stream sequence seq as the stream leader has it.
// Errors: domain.ErrNotFound, ErrUnavailable.
func (s *EventStore) Get(ctx context.Context, seq uint64) (StoredEvent, error) {
	se, err := s.leaderGet(ctx, struct {
		Seq uint64 `json:"seq"`
	}{seq})
	if err != nil {
		return se, fmt.Errorf("event %d: %w", seq, err)
	}
	return se, nil
}

// leaderGet asks the stream leader for one message. It does not use a
// direct get: any replica answers those, and a follower may not yet hold a
// write that was already acknowledged, so a direct get can return an older
// event than the writer's own (a stale read-your-writes check, a retried
// append not recognised).
func (s *EventStore) leaderGet(ctx context.Context, request any) (StoredEvent, error) {
	req, err := json.Marshal(request)
	if err != nil {
		return StoredEvent{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	prefix := s.js.Options().APIPrefix
	if prefix == "" {
		prefix = jetstream.DefaultAPIPrefix
	}
	reply, err := s.js.Conn().RequestWithContext(ctx, prefix+"STREAM.MSG.GET."+events.StreamName, req)
	if err != nil {
		return StoredEvent{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return StoredEvent{}, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return StoredEvent{}, domain.ErrNotFound
	case resp.Error != nil:
		return StoredEvent{}, fmt.Errorf("%w: %v", ErrUnavailable, resp.Error)
	case resp.Message == nil:
		return StoredEvent{}, fmt.Errorf("%w: empty answer", ErrUnavailable)
	}
	raw := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Seq, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if raw.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return StoredEvent{}, err
		}
	}
	return decodeRaw(raw)
}

// loadBatch is how many messages one direct batch get asks for.
const loadBatch = 256

// Load returns every event of an article in stream order, up to and
// including stream sequence upTo (0: all). An article with no events
// returns an empty list and no error.
func (s *EventStore) Load(ctx context.Context, articleID string, upTo uint64) ([]StoredEvent, error) {
	filter := events.ArticleSubjects(articleID)
	var out []StoredEvent
	next := uint64(1)
	for {
		it, err := jetstreamext.GetBatch(ctx, s.js, events.StreamName, loadBatch,
			jetstreamext.GetBatchSeq(next), jetstreamext.GetBatchSubject(filter))
		if err != nil {
			return nil, fmt.Errorf("load %s: %w: %v", articleID, ErrUnavailable, err)
		}
		n := 0
		for raw, err := range it {
			if err != nil {
				if errors.Is(err, jetstreamext.ErrNoMessages) {
					break
				}
				return nil, fmt.Errorf("load %s: %w: %v", articleID, ErrUnavailable, err)
			}
			n++
			next = raw.Sequence + 1
			if upTo > 0 && raw.Sequence > upTo {
				return out, nil
			}
			se, err := decodeRaw(raw)
			if err != nil {
				return nil, err
			}
			out = append(out, se)
		}
		if n < loadBatch {
			return out, nil
		}
	}
}

// State folds the events of an article up to stream sequence upTo (0: all)
// and returns the state with the sequence of its last event (0 if none).
func (s *EventStore) State(ctx context.Context, articleID string, upTo uint64) (domain.State, uint64, error) {
	evs, err := s.Load(ctx, articleID, upTo)
	if err != nil {
		return domain.State{}, 0, err
	}
	return FoldStored(evs)
}

// FoldStored folds stored events and returns the state and the last sequence.
func FoldStored(evs []StoredEvent) (domain.State, uint64, error) {
	var st domain.State
	var seq uint64
	for _, se := range evs {
		var err error
		if st, err = domain.Apply(st, se.Event); err != nil {
			return st, seq, fmt.Errorf("fold at seq %d: %w", se.Seq, err)
		}
		seq = se.Seq
	}
	return st, seq, nil
}

func decodeRaw(raw *jetstream.RawStreamMsg) (StoredEvent, error) {
	e, err := events.Decode(raw.Data)
	if err != nil {
		return StoredEvent{}, fmt.Errorf("event at seq %d: %w", raw.Sequence, err)
	}
	se := StoredEvent{Seq: raw.Sequence, Event: e}
	if raw.Header != nil {
		se.MsgID = raw.Header.Get(jetstream.MsgIDHeader)
		se.RequestHash = raw.Header.Get(events.HeaderRequestHash)
	}
	return se, nil
}
