package projector

import (
	"context"
	"fmt"
	"reflect"
	"sort"

	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/events"
)

// StreamReader reads the whole log.
type StreamReader interface {
	// ReadAll hands every message, from the first to the log's last when it
	// began, to each in order, and returns that last sequence.
	// Errors: domain.ErrUnavailable, or each's.
	ReadAll(ctx context.Context, each func(events.Message) error) (uint64, error)
}

// SnapshotLister lists the bucket.
type SnapshotLister interface {
	// All returns every snapshot now. Errors: domain.ErrUnavailable.
	All(ctx context.Context) ([]readmodel.Entry, error)
}

// Difference is one article whose snapshot is not the fold of its events.
type Difference struct {
	ArticleID string
	Problem   string // missing, extra, behind, differs, unreadable, ahead of the log
	Want      *readmodel.Snapshot
	Got       *readmodel.Snapshot
}

// String describes the difference in one line.
func (d Difference) String() string {
	s := d.ArticleID + ": " + d.Problem
	snap := func(name string, x *readmodel.Snapshot) string {
		return fmt.Sprintf("%s: v%d seq %d deleted=%v", name, x.Article.Version, x.Seq, x.Deleted)
	}
	switch {
	case d.Want != nil && d.Got != nil:
		s += " (" + snap("stream", d.Want) + "; " + snap("kv", d.Got) + ")"
	case d.Want != nil:
		s += " (" + snap("stream", d.Want) + ")"
	case d.Got != nil:
		s += " (" + snap("kv", d.Got) + ")"
	}
	return s
}

// Report is what Verify found.
type Report struct {
	Articles    int              // articles in the log
	LastSeq     uint64           // the log's sequence the fold reached
	Differences []Difference     // sorted by article id
	Skipped     []events.Skipped // messages every fold leaves out: warnings
}

// FoldAll reads the whole log and folds every article under the one rule.
// It returns each article's history by id and the sequence it read up to.
func FoldAll(ctx context.Context, stream StreamReader) (map[string]*events.Replay, []events.Skipped, uint64, error) {
	out := make(map[string]*events.Replay)
	var stray []events.Skipped
	last, err := stream.ReadAll(ctx, func(m events.Message) error {
		id, ok := events.ArticleIDFromSubject(m.Subject)
		if !ok {
			stray = append(stray, events.Skipped{Seq: m.Seq, Subject: m.Subject, Reason: "not an article's subject"})
			return nil
		}
		r := out[id]
		if r == nil {
			r = events.NewReplay(id)
			out[id] = r
		}
		r.Add(m)
		return nil
	})
	return out, stray, last, err
}

// Verify folds the log and compares the result with every snapshot in the
// bucket, read afterwards. A snapshot newer than the fold (of an event
// written meanwhile) is checked against its article's history read again;
// one that claims a version or sequence the log does not have is a
// difference. Verify only reads.
func Verify(ctx context.Context, stream StreamReader, log EventLog, snaps SnapshotLister) (Report, error) {
	replays, skipped, last, err := FoldAll(ctx, stream)
	if err != nil {
		return Report{}, err
	}
	entries, err := snaps.All(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{LastSeq: last}
	want := make(map[string]readmodel.Snapshot, len(replays))
	erased := make(map[string]bool)
	for id, r := range replays {
		h := r.History()
		skipped = append(skipped, h.Skipped...)
		switch {
		case h.Fold.State.Erased:
			erased[id] = true // its snapshot is purged: the bucket must not hold one
		case h.Fold.State.Exists():
			want[id] = readmodel.FromState(h.Fold.State, h.Fold.Seq)
		}
	}
	got := make(map[string]readmodel.Snapshot, len(entries))
	newer := make(map[string]bool)
	for _, e := range entries {
		g, _, err := readmodel.Decode(e.Value)
		if err != nil {
			rep.Differences = append(rep.Differences, Difference{ArticleID: e.Key, Problem: "unreadable: " + err.Error()})
			continue
		}
		if g.Seq > last {
			newer[e.Key] = true
			// Written after the fold began, or forged: fold its history again.
			if d, ok := checkNewer(ctx, log, e.Key, g); !ok {
				rep.Differences = append(rep.Differences, d)
			} else if d.Problem != "" {
				return Report{}, fmt.Errorf("verify %s: %s", e.Key, d.Problem)
			}
			continue
		}
		got[e.Key] = g
	}
	for id, w := range want {
		w := w
		g, ok := got[id]
		switch {
		case !ok:
			if !newer[id] {
				rep.Differences = append(rep.Differences, Difference{ArticleID: id, Problem: "missing", Want: &w})
			}
		case g.Seq < w.Seq || g.Article.Version < w.Article.Version:
			rep.Differences = append(rep.Differences, Difference{ArticleID: id, Problem: "behind", Want: &w, Got: &g})
		case !sameSnapshot(w, g):
			rep.Differences = append(rep.Differences, Difference{ArticleID: id, Problem: "differs", Want: &w, Got: &g})
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			g := g
			problem := "extra (no events in the stream)"
			if erased[id] {
				problem = "erased, yet the bucket holds a snapshot"
			}
			rep.Differences = append(rep.Differences, Difference{ArticleID: id, Problem: problem, Got: &g})
		}
	}
	rep.Articles = len(want) + len(erased)
	rep.Skipped = skipped
	sort.Slice(rep.Differences, func(i, j int) bool { return rep.Differences[i].ArticleID < rep.Differences[j].ArticleID })
	sort.Slice(rep.Skipped, func(i, j int) bool { return rep.Skipped[i].Seq < rep.Skipped[j].Seq })
	return rep, nil
}

// checkNewer compares a snapshot past the fold with its article's history
// up to the snapshot's sequence. It reports false with the difference when
// they disagree, and true with a non-empty Problem when the history could
// not be read.
func checkNewer(ctx context.Context, log EventLog, id string, g readmodel.Snapshot) (Difference, bool) {
	h, err := log.History(ctx, id, g.Seq)
	if err != nil {
		return Difference{Problem: err.Error()}, true
	}
	if h.Fold.Seq != g.Seq {
		return Difference{ArticleID: id, Problem: fmt.Sprintf("ahead of the log: no event of the article at seq %d", g.Seq), Got: &g}, false
	}
	w := readmodel.FromState(h.Fold.State, h.Fold.Seq)
	if !sameSnapshot(w, g) {
		return Difference{ArticleID: id, Problem: "differs", Want: &w, Got: &g}, false
	}
	return Difference{}, true
}

func sameSnapshot(a, b readmodel.Snapshot) bool {
	a.Article.CreatedAt, a.Article.UpdatedAt = a.Article.CreatedAt.UTC(), a.Article.UpdatedAt.UTC()
	b.Article.CreatedAt, b.Article.UpdatedAt = b.Article.CreatedAt.UTC(), b.Article.UpdatedAt.UTC()
	return reflect.DeepEqual(a, b)
}
