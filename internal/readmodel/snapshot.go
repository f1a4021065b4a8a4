// Package readmodel is the shape of the read model: the snapshot of one
// article that the projector writes to KV bucket articles (key = id) and
// the query API reads.
package readmodel

import (
	"context"
	"fmt"

	json "github.com/go-json-experiment/json/v1"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Snapshot is the KV value of one article.
type Snapshot struct {
	Article domain.Article `json:"article"`
	Deleted bool           `json:"deleted,omitempty"`
	// Seq is the stream sequence of the last event folded into the snapshot.
	Seq uint64 `json:"seq"`
}

// State returns the aggregate state the snapshot holds.
func (s Snapshot) State() domain.State { return domain.State{Article: s.Article, Deleted: s.Deleted} }

// FromState builds the snapshot of a state whose last event has stream sequence seq.
func FromState(st domain.State, seq uint64) Snapshot {
	return Snapshot{Article: st.Article, Deleted: st.Deleted, Seq: seq}
}

// Encode returns the KV value of s.
func Encode(s Snapshot) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot %s: %w", s.Article.ID, err)
	}
	return b, nil
}

// Raw is a snapshot whose article stays encoded, for serving it as it is.
type Raw struct {
	Article json.RawMessage `json:"article"`
	Deleted bool            `json:"deleted,omitempty"`
	Seq     uint64          `json:"seq"`
}

// Decode parses a KV value into the snapshot and the article's JSON.
func Decode(b []byte) (Snapshot, []byte, error) {
	var raw Raw
	if err := json.Unmarshal(b, &raw); err != nil {
		return Snapshot{}, nil, fmt.Errorf("decode snapshot: %w", err)
	}
	s := Snapshot{Deleted: raw.Deleted, Seq: raw.Seq}
	if err := json.Unmarshal(raw.Article, &s.Article); err != nil {
		return Snapshot{}, nil, fmt.Errorf("decode snapshot article: %w", err)
	}
	return s, raw.Article, nil
}

// Entry is one key of the snapshot bucket as stored: its value (an encoded
// Snapshot) and revision, or a deletion.
type Entry struct {
	Key      string
	Value    []byte // nil when only the index was read
	Revision uint64
	Deleted  bool   // the key's last message deleted or purged it
	Index    *Index // from the message's header, when it has one
	// Trace is the W3C trace context of the write, from its headers.
	Trace events.TraceContext
}

// Pending is a snapshot write in flight.
type Pending interface {
	// Wait returns the key's new revision. Errors: domain.ErrConflict when
	// the key had moved on from the expected revision, domain.ErrUnavailable.
	Wait(ctx context.Context) (uint64, error)
}
