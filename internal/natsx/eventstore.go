package natsx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// EventStore appends and reads article events in stream ARTICLES.
type EventStore struct {
	js jetstream.JetStream
	// ReadTimeout bounds a read that has no deadline of its own.
	readTimeout time.Duration
	pub         *obs.Publish
	group       atomic.Pointer[group] // the running group commit, if any
	groups      atomic.Uint64         // groups published
	grouped     atomic.Uint64         // appends in them
	reads       chan struct{}         // a slot per batch read in flight
}

// NewEventStore returns an event store on js.
func NewEventStore(js jetstream.JetStream) *EventStore {
	return &EventStore{js: js, readTimeout: 10 * time.Second, reads: make(chan struct{}, readsAtOnce)}
}

// Instrument makes the store count its publishes' latencies and retries in pub.
func (s *EventStore) Instrument(pub *obs.Publish) *EventStore {
	s.pub = pub
	return s
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

// JetStream's error codes for "too many requests" (nats-server
// server/errors.json): the stream's ingest queue is full (10167), too
// many atomic or fast batches in flight (10210, 10211).
const (
	jsErrCodeTooManyRequests       jetstream.ErrorCode = 10167
	jsErrCodeAtomicTooManyInflight jetstream.ErrorCode = 10210
	jsErrCodeBatchTooManyInflight  jetstream.ErrorCode = 10211
)

// IsTooManyRequests reports whether err is JetStream refusing a publish
// for too many requests (HTTP-like code 429).
func IsTooManyRequests(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsErrCodeTooManyRequests, jsErrCodeAtomicTooManyInflight, jsErrCodeBatchTooManyInflight:
		return true
	}
	return apiErr.Code == 429
}

// Append publishes e on its subject, expecting that the last message on the
// article's subjects has stream sequence expect (0: none), with msgID as
// Nats-Msg-Id. Timeouts and lost leaders are retried with the same message
// id until ctx ends, so a retry never duplicates the event. It returns the
// event's stream sequence, and whether the stream already held msgID (the
// sequence is then the original's). The message carries the trace context
// of ctx's span in its headers (traceparent, tracestate), under a span of
// its own for the publish.
//
// Errors: domain.ErrConflict when another write got there first,
// domain.ErrTooManyRequests when JetStream refuses more publishes for now,
// domain.ErrUnavailable when JetStream did not answer before ctx ended.
func (s *EventStore) Append(ctx context.Context, e domain.Event, expect uint64, msgID, requestHash string) (seq uint64, dup bool, err error) {
	msg, err := EventMsg(e, expect, msgID, requestHash)
	if err != nil {
		return 0, false, err
	}
	ctx, span := obs.StartPublish(ctx, "publish "+Stream, msg.Subject)
	defer func() { obs.End(span, err) }()
	if span != nil {
		setTrace(msg.Header, obs.TraceOf(ctx))
	}

	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.pub.Retry()
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		ack, err := s.await(actx, msg)
		cancel()
		if err == nil || IsConflict(err) {
			s.pub.Took(time.Since(start))
		}
		if err == nil {
			return ack.Sequence, ack.Duplicate, nil
		}
		if IsConflict(err) {
			// On R1 streams the sequence check runs before de-duplication: a
			// retry of a publish that did land answers "wrong last sequence".
			// Recognise our own message before calling it a conflict.
			last, lerr := s.Last(ctx, e.ArticleID)
			if lerr == nil && last.MsgID == msgID {
				return last.Seq, attempt == 0, nil
			}
			return 0, false, fmt.Errorf("append v%d of %s: %w", e.Version, e.ArticleID, domain.ErrConflict)
		}
		if IsTooManyRequests(err) {
			// The stream's ingest queue is full: nothing was stored, and
			// the client had better slow down than wait here.
			return 0, false, fmt.Errorf("append v%d of %s: %w: %v", e.Version, e.ArticleID, domain.ErrTooManyRequests, err)
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code != 503 && apiErr.Code != 0 {
			return 0, false, fmt.Errorf("append v%d of %s: %w", e.Version, e.ArticleID, err)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return 0, false, fmt.Errorf("append v%d of %s: %w: %v", e.Version, e.ArticleID, domain.ErrUnavailable, lastErr)
		case <-time.After(backoff(attempt)):
		}
	}
}

// await publishes msg (pipelined, in the group commit when it runs) and
// waits for its acknowledgement until ctx ends.
func (s *EventStore) await(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	fut, err := s.publish(ctx, msg)
	if err != nil {
		return nil, err
	}
	select {
	case ack := <-fut.Ok():
		return ack, nil
	case err := <-fut.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// EventMsg is the message of event e as Append publishes it: the envelope
// on articles.<id>.<verb>, with msgID as Nats-Msg-Id, the expectation that
// the article's subjects end at stream sequence expect (0: no message), the
// event type and, when not empty, the request's digest.
func EventMsg(e domain.Event, expect uint64, msgID, requestHash string) (*nats.Msg, error) {
	data, err := events.Encode(e)
	if err != nil {
		return nil, err
	}
	hdr := nats.Header{}
	hdr.Set(jetstream.MsgIDHeader, msgID)
	hdr.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	hdr.Set(jetstream.ExpectedLastSubjSeqSubjHeader, events.ArticleSubjects(e.ArticleID))
	hdr.Set(events.HeaderEventType, string(events.TypeOf(e.Change)))
	if requestHash != "" {
		hdr.Set(events.HeaderRequestHash, requestHash)
	}
	return &nats.Msg{Subject: events.SubjectOf(e), Header: hdr, Data: data}, nil
}

// Last returns the last message on an article's subjects as the stream
// leader has it (it may not be a valid event: see events.Fold).
// Errors: domain.ErrNotFound when the article has no messages, domain.ErrUnavailable.
func (s *EventStore) Last(ctx context.Context, articleID string) (events.Message, error) {
	m, err := s.leaderGet(ctx, struct {
		LastFor string `json:"last_by_subj"`
	}{events.ArticleSubjects(articleID)})
	if err != nil {
		return m, fmt.Errorf("last event of %s: %w", articleID, err)
	}
	return m, nil
}

// Get returns the message at stream sequence seq as the stream leader has it.
// Errors: domain.ErrNotFound, domain.ErrUnavailable.
func (s *EventStore) Get(ctx context.Context, seq uint64) (events.Message, error) {
	m, err := s.leaderGet(ctx, struct {
		Seq uint64 `json:"seq"`
	}{seq})
	if err != nil {
		return m, fmt.Errorf("event %d: %w", seq, err)
	}
	return m, nil
}

// leaderGet asks the stream leader for one message. It does not use a
// direct get: any replica answers those, and a follower may not yet hold a
// write that was already acknowledged, so a direct get can return an older
// event than the writer's own (a stale read-your-writes check, a retried
// append not recognised).
func (s *EventStore) leaderGet(ctx context.Context, request any) (events.Message, error) {
	req, err := json.Marshal(request)
	if err != nil {
		return events.Message{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	reply, err := s.js.Conn().RequestWithContext(ctx, s.api("STREAM.MSG.GET."+Stream), req)
	if err != nil {
		return events.Message{}, fmt.Errorf("%w: %v", domain.ErrUnavailable, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Header  []byte `json:"hdrs"`
			Data    []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return events.Message{}, fmt.Errorf("%w: %v", domain.ErrUnavailable, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return events.Message{}, domain.ErrNotFound
	case resp.Error != nil:
		return events.Message{}, fmt.Errorf("%w: %v", domain.ErrUnavailable, resp.Error)
	case resp.Message == nil:
		return events.Message{}, fmt.Errorf("%w: empty answer", domain.ErrUnavailable)
	}
	m := events.Message{Seq: resp.Message.Seq, Subject: resp.Message.Subject, Data: resp.Message.Data}
	if len(resp.Message.Header) > 0 {
		hdr, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return events.Message{}, err
		}
		m.MsgID, m.RequestHash, m.Trace = hdr.Get(jetstream.MsgIDHeader), hdr.Get(events.HeaderRequestHash), traceOf(hdr)
	}
	return m, nil
}

// Read limits of one direct batch get.
const (
	readBatch    = 256
	readMaxBytes = 1 << 20
	// readsAtOnce bounds the batches in flight on one store's connection:
	// the server cuts off a client it has more than 64 MiB queued for (a
	// slow consumer), and many long histories read at once by a busy
	// client would get there.
	readsAtOnce = 4
)

// History reads every message on an article's subjects, up to and including
// stream sequence upTo (0: all), and folds them (events.Replay). It knows
// that it has read them all: each batch ends with the server's end-of-batch
// marker, which tells how many matching messages are left. Anything short
// of that — a time-out, a lost connection — is domain.ErrUnavailable, never
// a shorter history. An article with no messages has an empty history.
//
// A direct get may be answered by any replica, which can lag behind an
// acknowledged write: callers that must see a given write compare LastSeq.
func (s *EventStore) History(ctx context.Context, articleID string, upTo uint64) (events.History, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	msgs, err := s.articleMessages(ctx, articleID, upTo)
	if err != nil {
		return events.History{}, fmt.Errorf("history of %s: %w", articleID, err)
	}
	r := events.NewReplay(articleID)
	for _, m := range msgs {
		r.Add(m)
	}
	return r.History(), nil
}

// articleMessages returns every message on an article's subjects up to upTo
// (0: all), in stream order.
//
// It does not read them with the article's wildcard filter: on a stream of
// more than 64Ki subjects the server finds the next message on a wildcard
// by reading every block after the last one (17 ms on 300 000 messages,
// holding a lock that stalls the stream's writes), while it jumps to a
// literal subject's next message by its index. So it asks first for the
// last message of each of the article's subjects (one multi-last get, which
// also fixes the sequence the read is as of), then reads each subject on its
// own up to its last message, and merges them.
func (s *EventStore) articleMessages(ctx context.Context, articleID string, upTo uint64) ([]events.Message, error) {
	subjects, err := s.subjectsOf(ctx, events.ArticleSubjects(articleID), upTo)
	if errors.Is(err, errTooManySubjects) {
		var out []events.Message
		err := s.read(ctx, events.ArticleSubjects(articleID), 1, upTo, func(m events.Message) { out = append(out, m) })
		return out, err
	}
	if err != nil || len(subjects) == 0 {
		return nil, err
	}
	var out []events.Message
	for _, subject := range subjects {
		var last uint64
		err := s.read(ctx, subject.name, 1, subject.last, func(m events.Message) {
			out, last = append(out, m), m.Seq
		})
		switch {
		case err != nil:
			return nil, err
		case last != subject.last:
			// Any replica answers a direct get: this one is behind the one
			// that listed the subjects.
			return nil, fmt.Errorf("%w: %s read up to %d, not to its last message %d", domain.ErrUnavailable, subject.name, last, subject.last)
		}
	}
	if len(subjects) > 1 {
		slices.SortFunc(out, func(a, b events.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return out, nil
}

// errTooManySubjects: a multi-last get could not list them all in one answer.
var errTooManySubjects = errors.New("too many subjects for one multi-last get")

// subject is one subject of an article and the sequence of its last message.
type subject struct {
	name string
	last uint64
}

// subjectsOf lists the subjects that match filter with the sequence of
// their last message at or before upTo (0: the stream's last sequence).
func (s *EventStore) subjectsOf(ctx context.Context, filter string, upTo uint64) ([]subject, error) {
	r, err := s.subscribe()
	if err != nil {
		return nil, err
	}
	defer r.close()
	req, _ := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
		UpTo      uint64   `json:"up_to_seq,omitempty"`
		Batch     int      `json:"batch"`
		MaxBytes  int      `json:"max_bytes"`
	}{[]string{filter}, upTo, readBatch, readMaxBytes})
	if err := s.request(ctx, r.inbox, req); err != nil {
		return nil, err
	}
	defer func() { <-s.reads }()
	var subjects []subject
	for {
		msg, err := r.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: the multi-last get ended before its end marker: %v", domain.ErrUnavailable, err)
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
			seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: message without %s", domain.ErrUnavailable, jetstream.SequenceHeader)
			}
			subjects = append(subjects, subject{msg.Header.Get(jetstream.SubjectHeader), seq})
			continue
		case "404":
			if msg.Header.Get("Description") == "No Results" {
				return nil, nil
			}
		case "413":
			return nil, errTooManySubjects
		case "204":
			pending, err := strconv.ParseUint(msg.Header.Get(hdrNumPending), 10, 64)
			switch {
			case err != nil:
				return nil, fmt.Errorf("%w: multi-last end of batch without %s", domain.ErrUnavailable, hdrNumPending)
			case pending > 0: // cut short by batch or max_bytes
				return nil, errTooManySubjects
			}
			return subjects, nil
		}
		return nil, fmt.Errorf("%w: multi-last get answered %s %s", domain.ErrUnavailable, msg.Header.Get("Status"), msg.Header.Get("Description"))
	}
}

// replies is an inbox for the answers to direct gets, on a channel sized
// for one answer (a batch and its end marker). nats.go gives a synchronous
// subscription a channel of 65 536 messages: 512 KiB allocated and cleared
// for every read, which was most of the command API's CPU when it loaded
// histories. Each read has its own: a read that stops before the end marker
// leaves the rest of its answer behind.
type replies struct {
	inbox string
	sub   *nats.Subscription
	ch    chan *nats.Msg
}

func (s *EventStore) subscribe() (*replies, error) {
	nc := s.js.Conn()
	r := &replies{inbox: nc.NewRespInbox(), ch: make(chan *nats.Msg, readBatch+1)}
	sub, err := nc.ChanSubscribe(r.inbox, r.ch)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", domain.ErrUnavailable, err)
	}
	r.sub = sub
	return r, nil
}

// next returns the next answer, or ctx's error.
func (r *replies) next(ctx context.Context) (*nats.Msg, error) {
	select {
	case m := <-r.ch:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *replies) close() { _ = r.sub.Unsubscribe() }

// request sends one direct get request, answered on inbox, once a read slot
// is free; the caller gives the slot back (<-s.reads) when it has the answer.
func (s *EventStore) request(ctx context.Context, inbox string, req []byte) error {
	select {
	case s.reads <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for a read: %v", domain.ErrUnavailable, ctx.Err())
	}
	if err := s.js.Conn().PublishRequest(s.api("DIRECT.GET."+Stream), inbox, req); err != nil {
		<-s.reads
		return fmt.Errorf("%w: %v", domain.ErrUnavailable, err)
	}
	return nil
}

// read hands every message on filter from sequence from up to upTo (0: the
// end) to each, in stream order.
func (s *EventStore) read(ctx context.Context, filter string, from, upTo uint64, each func(events.Message)) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	r, err := s.subscribe()
	if err != nil {
		return err
	}
	defer r.close()
	for {
		req, _ := json.Marshal(struct {
			Seq      uint64 `json:"seq"`
			NextFor  string `json:"next_by_subj"`
			Batch    int    `json:"batch"`
			MaxBytes int    `json:"max_bytes"`
		}{from, filter, readBatch, readMaxBytes})
		if err := s.request(ctx, r.inbox, req); err != nil {
			return err
		}
		pending, done, err := s.batch(ctx, r, upTo, &from, each)
		<-s.reads
		if err != nil {
			return err
		}
		if done || pending == 0 {
			return nil
		}
	}
}

// batch reads the answer to one batch request up to its end-of-batch marker.
// It returns how many matching messages the server has left, and done when
// there is nothing more to read (no messages, or upTo passed).
func (s *EventStore) batch(ctx context.Context, r *replies, upTo uint64, next *uint64, each func(events.Message)) (uint64, bool, error) {
	for {
		msg, err := r.next(ctx)
		if err != nil {
			return 0, false, fmt.Errorf("%w: the batch read ended before its end marker: %v", domain.ErrUnavailable, err)
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "404":
			return 0, true, nil // no message matches
		case "204": // end of batch
			pending, err := strconv.ParseUint(msg.Header.Get(hdrNumPending), 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("%w: end of batch without %s", domain.ErrUnavailable, hdrNumPending)
			}
			return pending, false, nil
		default:
			return 0, false, fmt.Errorf("%w: direct get answered %s %s", domain.ErrUnavailable, status, msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%w: message without %s", domain.ErrUnavailable, jetstream.SequenceHeader)
		}
		if upTo > 0 && seq > upTo {
			return 0, true, nil
		}
		*next = seq + 1
		each(events.Message{
			Seq: seq, Subject: msg.Header.Get(jetstream.SubjectHeader), Data: msg.Data,
			MsgID: msg.Header.Get(jetstream.MsgIDHeader), RequestHash: msg.Header.Get(events.HeaderRequestHash),
			Trace: traceOf(msg.Header),
		})
		if seq == upTo {
			return 0, true, nil
		}
	}
}

func (s *EventStore) api(subject string) string {
	prefix := s.js.Options().APIPrefix
	if prefix == "" {
		prefix = jetstream.DefaultAPIPrefix
	}
	return prefix + subject
}

// bound gives ctx the store's read time-out unless it has a deadline.
func (s *EventStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.readTimeout)
}

// hdrNumPending is the header of an end-of-batch marker that counts the
// matching messages left after the batch.
const hdrNumPending = "Nats-Num-Pending"

// Purge removes every message of an article from the stream that comes
// before stream sequence before (an erasure keeps its ArticleErased). It
// may be done again. Errors: domain.ErrUnavailable.
func (s *EventStore) Purge(ctx context.Context, articleID string, before uint64) error {
	st, err := s.js.Stream(ctx, Stream)
	if err == nil {
		err = st.Purge(ctx, jetstream.WithPurgeSubject(events.ArticleSubjects(articleID)), jetstream.WithPurgeSequence(before))
	}
	if err != nil {
		return fmt.Errorf("purge %s: %w: %v", articleID, domain.ErrUnavailable, err)
	}
	return nil
}

// setTrace puts a trace context into message headers, under the W3C names.
func setTrace(hdr nats.Header, tc events.TraceContext) {
	if tc.Parent != "" {
		hdr.Set(events.HeaderTraceParent, tc.Parent)
		if tc.State != "" {
			hdr.Set(events.HeaderTraceState, tc.State)
		}
	}
}

// traceOf reads the trace context of message headers.
func traceOf(hdr nats.Header) events.TraceContext {
	return events.TraceContext{Parent: hdr.Get(events.HeaderTraceParent), State: hdr.Get(events.HeaderTraceState)}
}
