package events

import (
	"errors"
	"fmt"
	"time"

	"github.com/inkstream/inkstream/pkg/domain"
)

// Message is one message on an article's subjects as the stream holds it.
type Message struct {
	Seq         uint64 // stream sequence
	Subject     string
	Data        []byte
	MsgID       string // Nats-Msg-Id
	RequestHash string // HeaderRequestHash
	// Trace is the W3C trace context of the write that published the
	// message, from its headers; empty when it carries none.
	Trace TraceContext
}

// Stored is a valid event with where it sits in the stream.
type Stored struct {
	Seq         uint64
	MsgID       string
	RequestHash string
	Event       domain.Event
}

// Skipped is a message on an article's subjects that is not a valid next
// event of that article: undecodable, another article's, or a version that
// does not follow. Every fold leaves it out the same way.
type Skipped struct {
	Seq     uint64
	Subject string
	Reason  string
}

// String names the message and why it was skipped.
func (s Skipped) String() string {
	return fmt.Sprintf("seq %d on %s: %s", s.Seq, s.Subject, s.Reason)
}

// History is an article's events as read from the stream: complete up to
// LastSeq, the sequence of the last message on the article's subjects when
// it was read (0: none), which an append must expect.
type History struct {
	ArticleID string
	Events    []Stored  // the valid events, versions in order
	Skipped   []Skipped // the messages the fold left out
	LastSeq   uint64
	Fold      Fold // the state after the events
}

// ErrGap means an event's version is beyond the next one: the fold has not
// seen its predecessors. A fold that has seen every earlier message of the
// article (a replay from the start) treats a gap as a skipped message.
var ErrGap = errors.New("the event's predecessor has not been folded")

// Fold folds one article's messages in stream order under the one rule that
// every reader shares (projector, replays, history, verify): a message is
// applied if it is the article's next valid event, and otherwise skipped.
// The zero Fold of an id is the article before its first message.
type Fold struct {
	ArticleID string
	State     domain.State
	Seq       uint64 // stream sequence of the last event applied
}

// Next applies m when it is the next valid event and returns it. Otherwise
// it returns a *SkipError, which wraps ErrGap when only a missing
// predecessor could make m valid; the state is then unchanged.
func (f *Fold) Next(m Message) (Stored, error) {
	skip := func(format string, args ...any) (Stored, error) {
		return Stored{}, &SkipError{Skipped{Seq: m.Seq, Subject: m.Subject, Reason: fmt.Sprintf(format, args...)}, false}
	}
	if id, ok := ArticleIDFromSubject(m.Subject); !ok || id != f.ArticleID {
		return skip("subject is not one of article %s", f.ArticleID)
	}
	e, err := Decode(m.Data)
	if err != nil {
		return skip("%v", err)
	}
	if e.ArticleID != f.ArticleID {
		return skip("event of article %s", e.ArticleID)
	}
	if Subject(e.ArticleID, TypeOf(e.Change)) != m.Subject {
		return skip("a %s event on subject %s", TypeOf(e.Change), m.Subject)
	}
	v := f.State.Article.Version
	_, erased := e.Change.(domain.ArticleErased)
	if e.Version > v+1 && !erased {
		return Stored{}, &SkipError{Skipped{Seq: m.Seq, Subject: m.Subject, Reason: fmt.Sprintf("version %d does not follow %d", e.Version, v)}, true}
	}
	st, err := domain.Apply(f.State, e)
	if err != nil {
		return skip("%v", err)
	}
	f.State, f.Seq = st, m.Seq
	return Stored{Seq: m.Seq, MsgID: m.MsgID, RequestHash: m.RequestHash, Event: e}, nil
}

// SkipError is why Fold.Next left a message out.
type SkipError struct {
	Skipped Skipped
	gap     bool
}

func (e *SkipError) Error() string { return "skipped " + e.Skipped.String() }

// Unwrap makes errors.Is(err, ErrGap) true for a gap.
func (e *SkipError) Unwrap() error {
	if e.gap {
		return ErrGap
	}
	return nil
}

// Replay folds an article's messages from its first one: everything that is
// not the next valid event, gaps included, is skipped.
type Replay struct {
	h History
}

// NewReplay starts the history of article id.
func NewReplay(id string) *Replay {
	return &Replay{h: History{ArticleID: id, Fold: Fold{ArticleID: id}}}
}

// Add folds the next message.
func (r *Replay) Add(m Message) {
	r.h.LastSeq = max(r.h.LastSeq, m.Seq)
	st, err := r.h.Fold.Next(m)
	var se *SkipError
	switch {
	case err == nil:
		r.h.Events = append(r.h.Events, st)
	case errors.As(err, &se):
		r.h.Skipped = append(r.h.Skipped, se.Skipped)
	}
}

// History is what the replay has folded so far.
func (r *Replay) History() History { return r.h }

// Delivery is a message handed to a consumer, acknowledged once handled.
type Delivery struct {
	Message
	Acker
}

// Acker settles a delivered message.
type Acker interface {
	// Ack says the message is done with.
	Ack()
	// Nak asks for the message again after delay.
	Nak(delay time.Duration)
}
