package natsx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// Snapshots is the KV bucket of article snapshots.
type Snapshots struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// NewSnapshots returns the snapshot store on bucket kv.
func NewSnapshots(js jetstream.JetStream, kv jetstream.KeyValue) *Snapshots {
	return &Snapshots{js: js, kv: kv}
}

// Get returns the stored snapshot of id with its revision.
// Errors: domain.ErrNotFound, domain.ErrUnavailable.
func (s *Snapshots) Get(ctx context.Context, id string) (readmodel.Entry, error) {
	e, err := s.kv.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return readmodel.Entry{}, fmt.Errorf("snapshot %s: %w", id, domain.ErrNotFound)
	case err != nil:
		return readmodel.Entry{}, fmt.Errorf("snapshot %s: %w: %v", id, domain.ErrUnavailable, err)
	}
	return entry(e), nil
}

// Put writes the snapshot of id if the key is still at revision expect (0:
// absent), and returns the new revision. The write carries the trace
// context of ctx's span in its headers, under a span of its own.
// Errors: domain.ErrConflict when it is not, domain.ErrUnavailable.
func (s *Snapshots) Put(ctx context.Context, id string, value []byte, expect uint64) (rev uint64, err error) {
	ctx, span := obs.StartPublish(ctx, "put "+Bucket, KeySubject(id))
	defer func() { obs.End(span, err) }()
	if span == nil {
		// Without a trace, the bucket's own calls.
		if expect == 0 {
			rev, err = s.kv.Create(ctx, id, value)
		} else {
			rev, err = s.kv.Update(ctx, id, value, expect)
		}
	} else {
		// What kv.Update does, with the trace in the headers; a key that
		// was deleted or purged is created again by kv.Create, untraced.
		ack, perr := s.js.PublishMsg(ctx, s.msg(ctx, id, value, expect))
		switch {
		case perr == nil:
			rev = ack.Sequence
		case expect == 0 && IsConflict(perr):
			rev, err = s.kv.Create(ctx, id, value)
		default:
			err = perr
		}
	}
	if err != nil {
		return 0, putError(id, err)
	}
	return rev, nil
}

// msg is the KV put of value at key id, expecting the key at revision
// expect, carrying the trace context of ctx's span.
func (s *Snapshots) msg(ctx context.Context, id string, value []byte, expect uint64) *nats.Msg {
	msg := &nats.Msg{Subject: KeySubject(id), Data: value, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	setTrace(msg.Header, obs.TraceOf(ctx))
	return msg
}

// PutAsync is Put without waiting: the KV put is a publish to the key's
// subject expecting the key's last revision, so many can be in flight. The
// result arrives on the returned future; the put's span ends when it is
// waited for.
func (s *Snapshots) PutAsync(ctx context.Context, id string, value []byte, expect uint64) readmodel.Pending {
	ctx, span := obs.StartPublish(ctx, "put "+Bucket, KeySubject(id))
	fut, err := s.js.PublishMsgAsync(s.msg(ctx, id, value, expect))
	return Put{id: id, fut: fut, err: err, span: span}
}

// Put is a snapshot write in flight.
type Put struct {
	id   string
	fut  jetstream.PubAckFuture
	err  error
	span trace.Span
}

// Wait returns the new revision, or domain.ErrConflict when the key had moved
// on, or domain.ErrUnavailable when no answer came before ctx ended.
func (p Put) Wait(ctx context.Context) (rev uint64, err error) {
	defer func() { obs.End(p.span, err) }()
	if p.err != nil {
		return 0, putError(p.id, p.err)
	}
	select {
	case ack := <-p.fut.Ok():
		return ack.Sequence, nil
	case err := <-p.fut.Err():
		return 0, putError(p.id, err)
	case <-ctx.Done():
		return 0, fmt.Errorf("snapshot %s: %w: %v", p.id, domain.ErrUnavailable, ctx.Err())
	}
}

func putError(id string, err error) error {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || IsConflict(err) {
		return fmt.Errorf("snapshot %s: %w", id, domain.ErrConflict)
	}
	return fmt.Errorf("snapshot %s: %w: %v", id, domain.ErrUnavailable, err)
}

// Watch calls fn with every snapshot in the bucket, then with a zero Entry
// once they have all been seen (Key ""), then with every change, until ctx
// ends. It is the bucket's own watcher (jetstream's KeyValue.WatchAll: an
// ordered push consumer of the last message per key) but for the headers,
// which that one drops: each Entry carries the trace of the write.
func (s *Snapshots) Watch(ctx context.Context, fn func(readmodel.Entry)) error {
	prefix := s.js.Options().APIPrefix
	if prefix == "" {
		prefix = jetstream.DefaultAPIPrefix
	}
	pushJS, err := s.js.Conn().JetStream(nats.APIPrefix(prefix))
	if err != nil {
		return fmt.Errorf("watch bucket: %w", err)
	}
	// The callback hands entries over in order; fn runs on this goroutine.
	updates := make(chan readmodel.Entry, 256)
	var (
		mu                    sync.Mutex
		initDone              bool
		received, initPending uint64
	)
	keyPrefix := KeySubject("")
	// Held until the initial count is known, so that no callback runs before.
	mu.Lock()
	sub, err := pushJS.Subscribe(keyPrefix+">", func(m *nats.Msg) {
		md, err := m.Metadata()
		if err != nil || len(m.Subject) <= len(keyPrefix) {
			return
		}
		e := readmodel.Entry{Key: m.Subject[len(keyPrefix):], Value: m.Data, Revision: md.Sequence.Stream, Trace: traceOf(m.Header)}
		switch m.Header.Get(kvOperation) {
		case "DEL", "PURGE":
			e.Deleted = true
		}
		switch m.Header.Get(jetstream.MarkerReasonHeader) {
		case "MaxAge", "Purge", "Remove":
			e.Deleted = true
		}
		mu.Lock()
		defer mu.Unlock()
		select {
		case updates <- e:
		case <-ctx.Done():
			return
		}
		if !initDone {
			received++
			if received >= initPending || md.NumPending == 0 {
				initDone = true
				select {
				case updates <- readmodel.Entry{}:
				case <-ctx.Done():
				}
			}
		}
	}, nats.BindStream(BucketStream), nats.OrderedConsumer(), nats.DeliverLastPerSubject(), nats.Context(ctx))
	if err != nil {
		mu.Unlock()
		return fmt.Errorf("watch bucket: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if pending, err := sub.InitialConsumerPending(); err == nil && pending == 0 {
		initDone = true
		updates <- readmodel.Entry{}
	} else if err == nil {
		initPending = pending
	}
	mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-updates:
			fn(e)
		}
	}
}

// kvOperation is the header of a KV delete or purge marker.
const kvOperation = "KV-Operation"

// All returns every snapshot in the bucket now.
func (s *Snapshots) All(ctx context.Context) ([]readmodel.Entry, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read bucket: %w: %v", domain.ErrUnavailable, err)
	}
	defer func() { _ = w.Stop() }()
	var out []readmodel.Entry
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read bucket: %w: %v", domain.ErrUnavailable, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("read bucket: %w: watcher closed", domain.ErrUnavailable)
			}
			if e == nil {
				return out, nil
			}
			out = append(out, entry(e))
		}
	}
}

// LastSeq is the sequence of the bucket's last write: a watcher that has
// applied it has seen every write before.
func (s *Snapshots) LastSeq(ctx context.Context) (uint64, error) {
	st, err := s.kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("bucket status: %w: %v", domain.ErrUnavailable, err)
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return bs.StreamInfo().State.LastSeq, nil
	}
	return 0, errors.New("bucket status has no stream info")
}

func entry(e jetstream.KeyValueEntry) readmodel.Entry {
	return readmodel.Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Deleted: e.Operation() != jetstream.KeyValuePut}
}
