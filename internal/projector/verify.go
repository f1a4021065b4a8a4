package projector

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Difference is one article whose KV snapshot is not the fold of its events.
type Difference struct {
	ArticleID string
	Problem   string // missing, extra, behind, differs, unreadable
	Want      *readmodel.Snapshot
	Got       *readmodel.Snapshot
}

// String describes the difference in one line.
func (d Difference) String() string {
	s := d.ArticleID + ": " + d.Problem
	if d.Want != nil {
		s += fmt.Sprintf(" (stream: v%d seq %d deleted=%v", d.Want.Article.Version, d.Want.Seq, d.Want.Deleted)
		if d.Got != nil {
			s += fmt.Sprintf("; kv: v%d seq %d deleted=%v", d.Got.Article.Version, d.Got.Seq, d.Got.Deleted)
		}
		s += ")"
	}
	return s
}

// Fold reads the stream from the start up to its last sequence now and
// folds every article. It returns the snapshots by article id and the
// sequence it read up to.
func Fold(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, progress func(done, total uint64)) (map[string]readmodel.Snapshot, uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("stream info: %w", err)
	}
	last := info.State.LastSeq
	out := make(map[string]readmodel.Snapshot)
	if info.State.Msgs == 0 {
		return out, last, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, 0, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, 0, err
	}
	defer it.Stop()
	states := make(map[string]domain.State)
	var n uint64
	tick := time.Now()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, 0, fmt.Errorf("read stream: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, 0, err
		}
		seq := md.Sequence.Stream
		if seq > last {
			break
		}
		ev, err := events.Decode(m.Data())
		if err != nil {
			return nil, 0, fmt.Errorf("seq %d: %w", seq, err)
		}
		st, err := domain.Apply(states[ev.ArticleID], ev)
		if err != nil {
			return nil, 0, fmt.Errorf("seq %d: %w", seq, err)
		}
		states[ev.ArticleID] = st
		out[ev.ArticleID] = readmodel.FromState(st, seq)
		n++
		if progress != nil && time.Since(tick) > time.Second {
			progress(seq, last)
			tick = time.Now()
		}
		if seq == last {
			break
		}
	}
	return out, last, nil
}

// Snapshots reads every snapshot in the bucket.
func Snapshots(ctx context.Context, kv jetstream.KeyValue) (map[string]readmodel.Snapshot, map[string]error, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = w.Stop() }()
	out := make(map[string]readmodel.Snapshot)
	bad := make(map[string]error)
	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, nil, errors.New("watcher closed")
			}
			if e == nil {
				return out, bad, nil
			}
			snap, _, err := readmodel.Decode(e.Value())
			if err != nil {
				bad[e.Key()] = err
				continue
			}
			out[e.Key()] = snap
		}
	}
}

// Verify folds the stream and compares the result with every snapshot in
// the bucket. Snapshots of events written after the fold began are left
// out. The differences come sorted by article id.
func Verify(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, kv jetstream.KeyValue) ([]Difference, int, error) {
	want, last, err := Fold(ctx, js, stream, nil)
	if err != nil {
		return nil, 0, err
	}
	got, bad, err := Snapshots(ctx, kv)
	if err != nil {
		return nil, 0, err
	}
	var diffs []Difference
	for id, w := range want {
		w := w
		g, ok := got[id]
		switch {
		case bad[id] != nil:
			diffs = append(diffs, Difference{ArticleID: id, Problem: "unreadable: " + bad[id].Error(), Want: &w})
		case !ok:
			diffs = append(diffs, Difference{ArticleID: id, Problem: "missing", Want: &w})
		case g.Seq > last:
			// Written after the fold started: newer than what we compare.
		case g.Seq < w.Seq || g.Article.Version < w.Article.Version:
			diffs = append(diffs, Difference{ArticleID: id, Problem: "behind", Want: &w, Got: &g})
		case !sameSnapshot(w, g):
			diffs = append(diffs, Difference{ArticleID: id, Problem: "differs", Want: &w, Got: &g})
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok && g.Seq <= last {
			g := g
			diffs = append(diffs, Difference{ArticleID: id, Problem: "extra (no events in the stream)", Got: &g})
		}
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].ArticleID < diffs[j].ArticleID })
	return diffs, len(want), nil
}

func sameSnapshot(a, b readmodel.Snapshot) bool {
	a.Article.CreatedAt, a.Article.UpdatedAt = a.Article.CreatedAt.UTC(), a.Article.UpdatedAt.UTC()
	b.Article.CreatedAt, b.Article.UpdatedAt = b.Article.CreatedAt.UTC(), b.Article.UpdatedAt.UTC()
	return reflect.DeepEqual(a, b)
}
