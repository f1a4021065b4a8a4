package events_test

import (
	"errors"
	"testing"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// msg is the message a writer would publish for e at stream sequence seq.
func msg(tb testing.TB, seq uint64, e domain.Event) events.Message {
	tb.Helper()
	b, err := events.Encode(e)
	if err != nil {
		tb.Fatal(err)
	}
	return events.Message{Seq: seq, Subject: events.SubjectOf(e), Data: b, MsgID: e.ID}
}

var created = domain.ArticleCreated{Fields: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: domain.StatusDraft, Tags: []string{}}}

func TestFoldSkipsWhatIsNotTheNextEvent(t *testing.T) {
	title := "T2"
	v2 := event(2, t0, domain.ArticleUpdated{Changes: domain.Changes{Title: &title}})
	other := event(2, t0, domain.ArticleUpdated{})
	other.ArticleID = "someone-else"
	onOtherSubject := msg(t, 11, other)
	onOtherSubject.Subject = "articles." + articleID + ".updated"
	wrongVerb := msg(t, 12, v2)
	wrongVerb.Subject = "articles." + articleID + ".deleted"
	tests := []struct {
		name string
		m    events.Message
		gap  bool
	}{
		{name: "undecodable", m: events.Message{Seq: 10, Subject: "articles." + articleID + ".updated", Data: []byte("not json")}},
		{name: "another article's envelope", m: onOtherSubject},
		{name: "an envelope on the wrong verb", m: wrongVerb},
		{name: "a repeated version", m: msg(t, 13, event(1, t0, created))},
		{name: "a version far ahead", m: msg(t, 14, event(99, t0, domain.ArticleUpdated{})), gap: true},
		{name: "another article's subject", m: msg(t, 15, other)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := events.Fold{ArticleID: articleID}
			if _, err := f.Next(msg(t, 1, event(1, t0, created))); err != nil {
				t.Fatal(err)
			}
			before := f
			_, err := f.Next(tt.m)
			var skip *events.SkipError
			if !errors.As(err, &skip) || skip.Skipped.Seq != tt.m.Seq || skip.Skipped.Reason == "" {
				t.Fatalf("Next = %v, want a skip of seq %d with a reason", err, tt.m.Seq)
			}
			if errors.Is(err, events.ErrGap) != tt.gap {
				t.Fatalf("gap = %v, want %v", errors.Is(err, events.ErrGap), tt.gap)
			}
			if f.Seq != before.Seq || f.State.Article.Version != 1 {
				t.Fatalf("a skipped message changed the fold: %+v", f)
			}
			// The article's next real event still applies.
			if _, err := f.Next(msg(t, 20, v2)); err != nil || f.State.Article.Title != "T2" || f.Seq != 20 {
				t.Fatalf("next event after the skip: %v, %+v", err, f)
			}
		})
	}
}

func TestReplayKeepsEventsAndSkips(t *testing.T) {
	r := events.NewReplay(articleID)
	r.Add(msg(t, 3, event(1, t0, created)))
	r.Add(events.Message{Seq: 5, Subject: "articles." + articleID + ".updated", Data: []byte("{}")})
	r.Add(msg(t, 8, event(3, t0, domain.ArticleDeleted{}))) // a gap from the start is a skip
	r.Add(msg(t, 9, event(2, t0, domain.ArticleDeleted{})))
	h := r.History()
	if len(h.Events) != 2 || h.Events[0].Seq != 3 || h.Events[1].Seq != 9 || h.Events[0].MsgID != "evt-1" {
		t.Fatalf("events = %+v", h.Events)
	}
	if len(h.Skipped) != 2 || h.Skipped[0].Seq != 5 || h.Skipped[1].Seq != 8 {
		t.Fatalf("skipped = %+v", h.Skipped)
	}
	if h.LastSeq != 9 || h.Fold.Seq != 9 || !h.Fold.State.Deleted {
		t.Fatalf("last %d, fold %+v", h.LastSeq, h.Fold)
	}
}

func TestErasureFollowsAnyVersion(t *testing.T) {
	r := events.NewReplay(articleID)
	r.Add(msg(t, 40, event(7, t0, domain.ArticleErased{}))) // all that an erasure leaves
	h := r.History()
	if len(h.Skipped) != 0 || !h.Fold.State.Erased || !h.Fold.State.Deleted || h.Fold.State.Article.Version != 7 {
		t.Fatalf("erased history: %+v", h)
	}
}
