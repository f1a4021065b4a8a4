package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/inkstream/inkstream/internal/cache"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// RebuildReport is what Rebuild did.
type RebuildReport struct {
	LastSeq   uint64        // the stream sequence it folded up to
	Events    uint64        // messages read
	Articles  int           // snapshots written (or purged, for an erased article)
	Windows   int           // times it wrote out what it had folded
	Skipped   int           // messages that are not a valid next event
	Elapsed   time.Duration // from start to the last write acknowledged
	Throttled int           // snapshot writes redone after losing to a projector
}

// window is the articles folded since the last write-out, each with the
// bucket's revision of its key when it was first seen in the window.
type window struct {
	folds map[string]*windowFold
	bytes int
}

type windowFold struct {
	fold  events.Fold
	rev   uint64 // the key's revision to expect (0: no message)
	dirty bool
}

// Rebuild folds the whole log into the bucket in memory, without the
// durable consumer: it reads the stream with an ordered consumer (no acks),
// folds each article under the one rule, and writes one snapshot per
// article per window, pipelined; a window ends when its folds weigh budget
// bytes. Projectors may run meanwhile (the caller has moved their consumer
// past the stream's end): an article whose snapshot a projector wrote
// further than the rebuild's fold is left to it, and every write is a
// compare-and-set. progress is told the sequence reached about once a
// second.
func Rebuild(ctx context.Context, stream StreamReader, snaps Snapshots, budget int, skips *obs.Skips, progress func(seq uint64)) (RebuildReport, error) {
	start := time.Now()
	var rep RebuildReport
	w := &window{folds: map[string]*windowFold{}}
	tick := time.Now()
	pending := make([]events.Message, 0, readAhead)
	_, err := stream.ReadAll(ctx, func(m events.Message) error {
		pending = append(pending, m)
		if len(pending) < readAhead {
			return nil
		}
		err := w.fold(ctx, snaps, pending, budget, skips, &rep)
		pending = pending[:0]
		if progress != nil && time.Since(tick) >= time.Second {
			progress(m.Seq)
			tick = time.Now()
		}
		return err
	})
	if err == nil {
		err = w.fold(ctx, snaps, pending, budget, skips, &rep)
	}
	if err == nil {
		err = w.flush(ctx, snaps, &rep)
	}
	if err != nil {
		return rep, fmt.Errorf("rebuild: %w", err)
	}
	rep.Elapsed = time.Since(start)
	if progress != nil {
		progress(rep.LastSeq)
	}
	return rep, nil
}

// readAhead is how many messages are folded together: the bucket's
// snapshots of the articles they touch first are read in one batch.
const readAhead = 1024

// fold folds msgs (stream order) into the window, reading the bucket's
// snapshots of the articles new to the window in one batch first, and
// writes the window out whenever it weighs budget bytes.
func (w *window) fold(ctx context.Context, snaps Snapshots, msgs []events.Message, budget int, skips *obs.Skips, rep *RebuildReport) error {
	var fresh []string
	seen := map[string]bool{}
	for _, m := range msgs {
		if id, ok := events.ArticleIDFromSubject(m.Subject); ok && w.folds[id] == nil && !seen[id] {
			fresh, seen[id] = append(fresh, id), true
		}
	}
	if err := w.bases(ctx, snaps, fresh); err != nil {
		return err
	}
	for _, m := range msgs {
		rep.Events++
		rep.LastSeq = m.Seq
		id, ok := events.ArticleIDFromSubject(m.Subject)
		if !ok {
			rep.Skipped++
			skips.Report(events.Skipped{Seq: m.Seq, Subject: m.Subject, Reason: "not an article's subject"})
			continue
		}
		wf := w.folds[id]
		if wf == nil { // written out by a flush in this batch: read it again
			if err := w.bases(ctx, snaps, []string{id}); err != nil {
				return err
			}
			wf = w.folds[id]
		}
		if m.Seq <= wf.fold.Seq {
			continue // folded already, by an earlier window or a projector
		}
		before := cache.ArticleBytes(wf.fold.State.Article)
		if _, err := wf.fold.Next(m); err != nil {
			// A whole fold from the first message: a gap is no less a skip.
			var se *events.SkipError
			if !errors.As(err, &se) {
				return err
			}
			rep.Skipped++
			skips.Report(se.Skipped)
			continue
		}
		wf.dirty = true
		w.bytes += cache.ArticleBytes(wf.fold.State.Article) - before
		if w.bytes >= budget {
			if err := w.flush(ctx, snaps, rep); err != nil {
				return err
			}
		}
	}
	return nil
}

// bases adds to the window the folds of ids as the bucket has them now:
// what an earlier window wrote (or a projector, further), or nothing.
func (w *window) bases(ctx context.Context, snaps Snapshots, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	entries, err := snaps.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		wf := &windowFold{fold: events.Fold{ArticleID: id}}
		if e, ok := entries[id]; ok {
			wf.rev = e.Revision
			if !e.Deleted {
				snap, _, err := readmodel.Decode(e.Value)
				if err != nil {
					return err
				}
				wf.fold.State, wf.fold.Seq = snap.State(), snap.Seq
			}
		}
		w.folds[id] = wf
		w.bytes += cache.ArticleBytes(wf.fold.State.Article)
	}
	return nil
}

// base is an article's fold as the bucket has it now: what an earlier
// window wrote (or a projector, further), or nothing.
func base(ctx context.Context, snaps Snapshots, id string) (*windowFold, error) {
	e, err := snaps.Get(ctx, id)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return &windowFold{fold: events.Fold{ArticleID: id}}, nil
	case err != nil:
		return nil, err
	case e.Deleted:
		return &windowFold{fold: events.Fold{ArticleID: id}, rev: e.Revision}, nil
	}
	snap, _, err := readmodel.Decode(e.Value)
	if err != nil {
		return nil, err
	}
	return &windowFold{fold: events.Fold{ArticleID: id, State: snap.State(), Seq: snap.Seq}, rev: e.Revision}, nil
}

// flush writes every article the window changed, putsInFlight at a time,
// and empties the window. A write that loses to a projector is redone on
// the snapshot the projector wrote, unless that one is further.
func (w *window) flush(ctx context.Context, snaps Snapshots, rep *RebuildReport) error {
	type put struct {
		id string
		wf *windowFold
		p  readmodel.Pending
	}
	settle := func(pt put) error {
		for {
			_, err := pt.p.Wait(ctx)
			if err == nil {
				rep.Articles++
				return nil
			}
			if !errors.Is(err, domain.ErrConflict) {
				return err
			}
			rep.Throttled++
			now, err := base(ctx, snaps, pt.id)
			if err != nil {
				return err
			}
			if now.fold.Seq >= pt.wf.fold.Seq {
				return nil // a projector got further
			}
			pt.wf.rev = now.rev
			pt.p = write(ctx, snaps, pt.wf)
		}
	}
	// At most putsInFlight at once: the connection holds a bounded number
	// of unanswered publishes, and a window has many more articles.
	inflight := make([]put, 0, putsInFlight)
	for id, wf := range w.folds {
		if !wf.dirty {
			continue
		}
		if len(inflight) == putsInFlight {
			if err := settle(inflight[0]); err != nil {
				return err
			}
			inflight = inflight[1:]
		}
		inflight = append(inflight, put{id, wf, write(ctx, snaps, wf)})
	}
	for _, pt := range inflight {
		if err := settle(pt); err != nil {
			return err
		}
	}
	rep.Windows++
	w.folds, w.bytes = map[string]*windowFold{}, 0
	return nil
}

// putsInFlight bounds a window's snapshot writes in flight, well under the
// connection's bound on unanswered publishes (natsx.Connect).
const putsInFlight = 1024

// write sends the snapshot of wf (a purge for an erased article).
func write(ctx context.Context, snaps Snapshots, wf *windowFold) readmodel.Pending {
	if wf.fold.State.Erased {
		rev, err := snaps.Purge(ctx, wf.fold.ArticleID, wf.rev)
		return done{rev, err}
	}
	return snaps.PutAsync(ctx, readmodel.FromState(wf.fold.State, wf.fold.Seq), wf.rev)
}

// done is a write that has already been answered.
type done struct {
	rev uint64
	err error
}

func (d done) Wait(context.Context) (uint64, error) { return d.rev, d.err }
