package commandapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// request is one write: a command on one article.
type request struct {
	id      string
	fresh   bool             // the id was just generated: the article has no events
	key     string           // the event's message id from the Idempotency-Key ("": none)
	hash    string           // digest of the request, telling a retry from a reuse of the key
	by      domain.Principal // who writes: the actor of the event is its subject
	command func(domain.Meta) domain.Command
}

// result is the outcome of a write: the article's state and the stream
// sequence of its last event (the consistency token).
type result struct {
	state domain.State
	seq   uint64
}

// errLostRace means another writer appended to the article first.
var errLostRace = errors.New("another writer appended first")

// write runs one command on its article: load the aggregate, decide,
// append, answer. A write that loses a race to another writer is decided
// again on the caught-up state until the write timeout, so an unconditional
// write is never lost and a conditional one fails with 412. Writes of this
// instance to one article take turns on the aggregate's lock; JetStream's
// expected-sequence check orders them against other instances.
func (s *Service) write(ctx context.Context, r request) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	agg := s.aggs.lock(r.id, r.fresh)
	defer agg.mu.Unlock()
	// What was current at an earlier request may not be now: another
	// instance may have written since.
	agg.confirmed = r.fresh
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if err := s.load(ctx, agg, r.id); err != nil {
			return result{}, err
		}
		e, err := s.decide(agg, r)
		if err != nil || e == nil {
			res, again, err := s.settle(ctx, agg, r, err)
			if again {
				continue
			}
			return res, err
		}
		res, err := s.append(ctx, agg, r, *e)
		if !errors.Is(err, errLostRace) {
			return res, err
		}
		s.catchUp(ctx, agg, r.id)
		if attempt >= 3 && !pause(ctx, attempt) {
			break
		}
	}
	agg.loaded = false
	if r.fresh {
		s.aggs.forget(r.id)
	}
	// Nothing was appended: a retry (with the same key) is safe.
	return result{}, fmt.Errorf("article %s: the write did not land before the write timeout: %w", r.id, domain.ErrUnavailable)
}

// load reads the article's history into the aggregate unless it holds it.
// A history read from a replica may lag behind the log's leader, so the
// state is not yet confirmed current; one that has not reached a sequence
// the leader has shown is read again until the write timeout.
func (s *Service) load(ctx context.Context, agg *aggregate, id string) error {
	for attempt := 1; !agg.loaded; attempt++ {
		h, err := s.store.History(ctx, id, 0)
		if err != nil {
			return err
		}
		s.skips.Report(h.Skipped...)
		if h.LastSeq >= agg.atLeast {
			agg.state, agg.seq, agg.loaded, agg.confirmed = h.Fold.State, h.LastSeq, true, false
			s.aggs.weigh(id, agg)
			return nil
		}
		if !pause(ctx, attempt) {
			return fmt.Errorf("article %s: the replica read is behind seq %d: %w", id, agg.atLeast, domain.ErrUnavailable)
		}
	}
	return nil
}

// decide returns the event the command produces on the aggregate's state,
// nil when it changes nothing. The policy decides first: what the writer
// may not see is 404 before anything else, a stale If-Match included.
func (s *Service) decide(agg *aggregate, r request) (*domain.Event, error) {
	evID, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	meta := domain.Meta{EventID: evID.String(), At: time.Now().UTC().Truncate(time.Microsecond), Actor: r.by.Subject}
	cmd := r.command(meta)
	if err := domain.AuthorizeCommand(r.by, agg.state, cmd); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			// Worded as Decide words an article that does not exist.
			return nil, fmt.Errorf("article %s: %w", r.id, err)
		}
		return nil, err
	}
	evs, err := domain.Decide(agg.state, cmd)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return &evs[0], nil
}

// settle answers a decision that appends nothing: no change, 404 or 412.
// JetStream checks only appends, so a state that may be stale is confirmed
// against the leader first (again: decide once more on the fresh state).
// A retried write that did land (a delete, a write with If-Match) cannot be
// decided again: it is recognised by the last event's message id.
func (s *Service) settle(ctx context.Context, agg *aggregate, r request, err error) (res result, again bool, _ error) {
	stateBound := err == nil || errors.Is(err, domain.ErrPreconditionFailed) || errors.Is(err, domain.ErrForbidden) ||
		(errors.Is(err, domain.ErrNotFound) && !agg.state.Deleted)
	retry := err != nil && r.key != "" && agg.state.Exists()
	if (stateBound && !agg.confirmed) || retry {
		last, lerr := s.store.Last(ctx, r.id)
		switch {
		case errors.Is(lerr, domain.ErrNotFound):
			last = events.Message{}
		case lerr != nil:
			return result{}, false, lerr
		}
		if last.Seq != agg.seq {
			agg.loaded, agg.atLeast = false, last.Seq
			return result{}, true, nil
		}
		agg.confirmed = true
		if retry && last.MsgID == r.key {
			res, err := s.original(ctx, last.Seq, r.hash)
			return res, false, err
		}
	}
	if err != nil {
		return result{}, false, err
	}
	return result{state: agg.state, seq: agg.seq}, false, nil
}

// append appends the decided event, expecting the aggregate's last
// sequence, and moves the aggregate on. errLostRace means another writer
// appended first. A duplicate message id answers the original write.
func (s *Service) append(ctx context.Context, agg *aggregate, r request, e domain.Event) (result, error) {
	msgID := e.ID
	if r.key != "" {
		msgID = r.key
	}
	seq, dup, err := s.store.Append(ctx, e, agg.seq, msgID, r.hash)
	switch {
	case errors.Is(err, domain.ErrConflict):
		s.conflicts.Inc()
		return result{}, errLostRace
	case err != nil:
		return result{}, err
	case dup:
		agg.loaded = false
		return s.original(ctx, seq, r.hash)
	}
	next, err := domain.Apply(agg.state, e)
	if err != nil {
		agg.loaded = false
		return result{}, err
	}
	agg.state, agg.seq, agg.confirmed = next, seq, true
	s.aggs.weigh(r.id, agg)
	return result{state: next, seq: seq}, nil
}

// catchUp brings the aggregate forward after a lost race. In the common case
// one other write got in, and folding the article's last message is enough;
// otherwise the next attempt loads the whole history. Reading one message
// instead of the whole history keeps the loser's next attempt quick, so a
// busy instance does not starve another one.
func (s *Service) catchUp(ctx context.Context, agg *aggregate, id string) {
	last, err := s.store.Last(ctx, id)
	if err != nil {
		agg.loaded = false
		return
	}
	f := events.Fold{ArticleID: id, State: agg.state, Seq: agg.seq}
	if _, err := f.Next(last); err != nil {
		agg.loaded, agg.atLeast = false, last.Seq
		return
	}
	agg.state, agg.seq, agg.confirmed = f.State, last.Seq, true
	s.aggs.weigh(id, agg)
}

// original returns the result of the earlier write that a retry repeated:
// the article as it was right after the event at seq.
func (s *Service) original(ctx context.Context, seq uint64, requestHash string) (result, error) {
	m, err := s.store.Get(ctx, seq)
	if err != nil {
		return result{}, err
	}
	if m.RequestHash != requestHash {
		return result{}, domain.ErrIdempotencyMismatch
	}
	id, _ := events.ArticleIDFromSubject(m.Subject)
	for attempt := 1; ; attempt++ {
		h, err := s.store.History(ctx, id, seq)
		if err != nil {
			return result{}, err
		}
		if h.Fold.Seq == seq {
			return result{state: h.Fold.State, seq: seq}, nil
		}
		// The history was read from a replica that does not hold seq yet:
		// the leader has it (Get above), so wait for the replica.
		if !pause(ctx, attempt) {
			return result{}, fmt.Errorf("state of %s at seq %d: %w", id, seq, domain.ErrUnavailable)
		}
	}
}

// pause waits a short random while before another attempt, growing with
// attempt, so writers on different instances stop colliding in lockstep.
func pause(ctx context.Context, attempt int) bool {
	d := time.Duration(1+rand.IntN(min(attempt, 20))) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
