package natsx

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
// absent), and returns the new revision.
// Errors: domain.ErrConflict when it is not, domain.ErrUnavailable.
func (s *Snapshots) Put(ctx context.Context, id string, value []byte, expect uint64) (uint64, error) {
	var rev uint64
	var err error
	if expect == 0 {
		rev, err = s.kv.Create(ctx, id, value)
	} else {
		rev, err = s.kv.Update(ctx, id, value, expect)
	}
	if err != nil {
		return 0, putError(id, err)
	}
	return rev, nil
}

// PutAsync is Put without waiting: the KV put is a publish to the key's
// subject expecting the key's last revision, so many can be in flight. The
// result arrives on the returned future.
func (s *Snapshots) PutAsync(id string, value []byte, expect uint64) readmodel.Pending {
	msg := &nats.Msg{Subject: KeySubject(id), Data: value, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	fut, err := s.js.PublishMsgAsync(msg)
	return Put{id: id, fut: fut, err: err}
}

// Put is a snapshot write in flight.
type Put struct {
	id  string
	fut jetstream.PubAckFuture
	err error
}

// Wait returns the new revision, or domain.ErrConflict when the key had moved
// on, or domain.ErrUnavailable when no answer came before ctx ended.
func (p Put) Wait(ctx context.Context) (uint64, error) {
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
// ends.
func (s *Snapshots) Watch(ctx context.Context, fn func(readmodel.Entry)) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case kve, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if kve == nil {
				fn(readmodel.Entry{})
				continue
			}
			fn(entry(kve))
		}
	}
}

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
