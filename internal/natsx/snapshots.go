package natsx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"go.opentelemetry.io/otel/trace"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// The KV headers of a key's message (nats.go's own constants are not exported).
const (
	hdrKVOperation = "KV-Operation"
	kvDelete       = "DEL"
	kvPurge        = "PURGE"
)

// Snapshots is the KV bucket of article snapshots. Every snapshot is written
// with its index in a header (readmodel.HeaderIndex), so that the index of
// every article can be read without the bodies.
type Snapshots struct {
	js jetstream.JetStream
	kv jetstream.KeyValue

	mu     sync.Mutex
	stream jetstream.Stream // the bucket's stream, looked up once
}

// NewSnapshots returns the snapshot store on bucket kv.
func NewSnapshots(js jetstream.JetStream, kv jetstream.KeyValue) *Snapshots {
	return &Snapshots{js: js, kv: kv}
}

// Get returns the stored snapshot of id with its revision. A key whose last
// message deleted or purged it is an Entry with Deleted set and the
// marker's revision, which the next write must expect.
// Errors: domain.ErrNotFound (the key never had a value), domain.ErrUnavailable.
func (s *Snapshots) Get(ctx context.Context, id string) (readmodel.Entry, error) {
	st, err := s.bucketStream(ctx)
	if err != nil {
		return readmodel.Entry{}, fmt.Errorf("snapshot %s: %w: %v", id, domain.ErrUnavailable, err)
	}
	m, err := st.GetLastMsgForSubject(ctx, KeySubject(id))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return readmodel.Entry{}, fmt.Errorf("snapshot %s: %w", id, domain.ErrNotFound)
	case err != nil:
		return readmodel.Entry{}, fmt.Errorf("snapshot %s: %w: %v", id, domain.ErrUnavailable, err)
	}
	return entryOf(id, m.Sequence, m.Header, m.Data), nil
}

func (s *Snapshots) bucketStream(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		st, err := s.js.Stream(ctx, BucketStream)
		if err != nil {
			return nil, err
		}
		s.stream = st
	}
	return s.stream, nil
}

// GetMany returns the stored snapshots of ids (keys without one are left
// out), read together in one batch.
// Errors: domain.ErrUnavailable.
func (s *Snapshots) GetMany(ctx context.Context, ids []string) (map[string]readmodel.Entry, error) {
	out := make(map[string]readmodel.Entry, len(ids))
	for start := 0; start < len(ids); start += 1024 {
		subjects := make([]string, 0, min(1024, len(ids)-start))
		for _, id := range ids[start:min(start+1024, len(ids))] {
			subjects = append(subjects, KeySubject(id))
		}
		it, err := jetstreamext.GetLastMsgsFor(ctx, s.js, BucketStream, subjects)
		if err != nil {
			return nil, fmt.Errorf("snapshots: %w: %v", domain.ErrUnavailable, err)
		}
		for m, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("snapshots: %w: %v", domain.ErrUnavailable, err)
			}
			id := m.Subject[len(KeySubject("")):]
			out[id] = entryOf(id, m.Sequence, m.Header, m.Data)
		}
	}
	return out, nil
}

func entryOf(id string, rev uint64, hdr nats.Header, data []byte) readmodel.Entry {
	e := readmodel.Entry{Key: id, Value: data, Revision: rev, Trace: traceOf(hdr)}
	switch hdr.Get(hdrKVOperation) {
	case kvDelete, kvPurge:
		e.Deleted, e.Value = true, nil
		return e
	}
	if h := hdr.Get(readmodel.HeaderIndex); h != "" {
		if x, err := readmodel.DecodeIndex(h); err == nil {
			e.Index = &x
		}
	}
	return e
}

// snapshotMsg is the KV message of snap: a put of its key, expecting the
// key's last revision (0: the key has no message), with its index header
// and the trace context of ctx's span.
func snapshotMsg(ctx context.Context, snap readmodel.Snapshot, expect uint64) (*nats.Msg, error) {
	b, err := readmodel.Encode(snap)
	if err != nil {
		return nil, err
	}
	x, err := readmodel.EncodeIndex(readmodel.IndexOf(snap))
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: KeySubject(snap.Article.ID), Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	msg.Header.Set(readmodel.HeaderIndex, x)
	setTrace(msg.Header, obs.TraceOf(ctx))
	return msg, nil
}

// Put writes snap if its key is still at revision expect (0: the key has no
// message, not even a deletion marker), and returns the new revision.
// Errors: domain.ErrConflict when it is not, domain.ErrUnavailable.
func (s *Snapshots) Put(ctx context.Context, snap readmodel.Snapshot, expect uint64) (rev uint64, err error) {
	ctx, span := obs.StartPublish(ctx, "put "+Bucket, KeySubject(snap.Article.ID))
	defer func() { obs.End(span, err) }()
	msg, err := snapshotMsg(ctx, snap, expect)
	if err != nil {
		return 0, err
	}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, putError(snap.Article.ID, err)
	}
	return ack.Sequence, nil
}

// PutAsync is Put without waiting, so many can be in flight; the result
// arrives on the returned future.
func (s *Snapshots) PutAsync(ctx context.Context, snap readmodel.Snapshot, expect uint64) readmodel.Pending {
	ctx, span := obs.StartPublish(ctx, "put "+Bucket, KeySubject(snap.Article.ID))
	msg, err := snapshotMsg(ctx, snap, expect)
	if err != nil {
		return Put{id: snap.Article.ID, err: err, span: span}
	}
	// When the connection has as many publishes unanswered as it allows,
	// wait for room as long as ctx allows, not the client's 200 ms.
	stall := 30 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		stall = max(time.Until(deadline), time.Millisecond)
	}
	fut, err := s.js.PublishMsgAsync(msg, jetstream.WithStallWait(stall))
	return Put{id: snap.Article.ID, fut: fut, err: err, span: span}
}

// Put is a snapshot write in flight; its span ends when it is waited for.
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

// Watch calls fn with the index of every snapshot in the bucket (Entry.Index
// without a Value: only the messages' headers are read, not the bodies),
// then with a zero Entry once they have all been seen (Key ""), then with
// every change, value included, until ctx ends. A snapshot without an index
// header is read whole.
func (s *Snapshots) Watch(ctx context.Context, fn func(readmodel.Entry)) error {
	st, err := s.js.Stream(ctx, BucketStream)
	if err != nil {
		return fmt.Errorf("watch bucket: %w", err)
	}
	info := st.CachedInfo()
	last := info.State.LastSeq
	if info.State.Msgs > 0 {
		if last, err = s.indexes(ctx, st, last, fn); err != nil {
			return err
		}
	}
	fn(readmodel.Entry{})
	return s.follow(ctx, st, last+1, fn)
}

// indexes hands fn the last message's headers of every key up to the
// bucket's sequence last, and returns the highest sequence seen.
func (s *Snapshots) indexes(ctx context.Context, st jetstream.Stream, last uint64, fn func(readmodel.Entry)) (uint64, error) {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{BucketSubjects}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, HeadersOnly: true,
	})
	if err != nil {
		return 0, fmt.Errorf("watch bucket: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, fmt.Errorf("watch bucket: %w", err)
	}
	defer it.Stop()
	seen := uint64(0)
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return 0, fmt.Errorf("watch bucket: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, err
		}
		id := m.Subject()[len(KeySubject("")):]
		e := entryOf(id, md.Sequence.Stream, m.Headers(), nil)
		if !e.Deleted && e.Index == nil {
			// Written without an index header: read it whole.
			if e, err = s.Get(ctx, id); err != nil {
				return 0, err
			}
		}
		fn(e)
		seen = max(seen, md.Sequence.Stream)
		if md.NumPending == 0 || seen >= last {
			return seen, nil
		}
	}
}

// follow hands fn every message of the bucket from sequence from on, with
// its value, until ctx ends.
func (s *Snapshots) follow(ctx context.Context, st jetstream.Stream, from uint64, fn func(readmodel.Entry)) error {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{BucketSubjects}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return fmt.Errorf("watch bucket: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		fn(entryOf(m.Subject()[len(KeySubject("")):], md.Sequence.Stream, m.Headers(), m.Data()))
	})
	if err != nil {
		return fmt.Errorf("watch bucket: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// All returns every snapshot in the bucket now, values included.
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
			out = append(out, readmodel.Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision()})
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

// Purge removes every revision of id's snapshot, if the key is still at
// revision expect, and returns the purge marker's revision.
// Errors: domain.ErrConflict, domain.ErrUnavailable.
func (s *Snapshots) Purge(ctx context.Context, id string, expect uint64) (uint64, error) {
	msg := &nats.Msg{Subject: KeySubject(id), Header: nats.Header{}}
	msg.Header.Set(hdrKVOperation, kvPurge)
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, putError(id, err)
	}
	return ack.Sequence, nil
}
