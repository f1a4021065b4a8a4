package domain

import (
	"fmt"
	"slices"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/inkstream/inkstream/pkg/events"
)

// Apply returns the state after e. The event must be the next version of the
// article: anything else is ErrConflict, so a fold never skips or repeats.
func Apply(s State, e events.Envelope) (State, error) {
	if e.Version != s.Article.Version+1 {
		return s, fmt.Errorf("apply %s v%d onto v%d of %s: %w", e.Type, e.Version, s.Article.Version, e.ArticleID, ErrConflict)
	}
	if s.Exists() && e.ArticleID != s.Article.ID {
		return s, fmt.Errorf("apply event of %s onto %s: %w", e.ArticleID, s.Article.ID, ErrConflict)
	}
	at := e.OccurredAt.UTC()
	switch e.Type {
	case events.ArticleCreated:
		if s.Exists() {
			return s, fmt.Errorf("apply %s v%d onto existing %s: %w", e.Type, e.Version, e.ArticleID, ErrConflict)
		}
		var d events.ArticleData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return s, fmt.Errorf("apply %s: %w", e.Type, err)
		}
		return created(e.ArticleID, d, at), nil
	case events.ArticleUpdated:
		if !s.Live() {
			return s, fmt.Errorf("apply %s to %s: %w", e.Type, e.ArticleID, ErrNotFound)
		}
		var c events.ArticleChanges
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return s, fmt.Errorf("apply %s: %w", e.Type, err)
		}
		return updated(s, c, e.Version, at), nil
	case events.ArticleDeleted:
		if !s.Live() {
			return s, fmt.Errorf("apply %s to %s: %w", e.Type, e.ArticleID, ErrNotFound)
		}
		return deleted(s, e.Version, at), nil
	default:
		return s, fmt.Errorf("apply unknown event type %q: %w", e.Type, ErrConflict)
	}
}

// Fold applies events in order onto the empty state.
func Fold(evs []events.Envelope) (State, error) {
	var s State
	for _, e := range evs {
		var err error
		if s, err = Apply(s, e); err != nil {
			return s, err
		}
	}
	return s, nil
}

// The state transitions of the three events, shared by Apply, which
// decodes an event's data first, and Decide, which has it typed.

// created is the state of a new article with data d; it keeps d.Tags.
func created(id string, d events.ArticleData, at time.Time) State {
	tags := d.Tags
	if tags == nil {
		tags = []string{}
	}
	return State{Article: Article{
		ID:        id,
		Fields:    Fields{Title: d.Title, Slug: d.Slug, Content: d.Content, AuthorID: d.AuthorID, Status: Status(d.Status), Tags: tags},
		Version:   1,
		CreatedAt: at,
		UpdatedAt: at,
	}}
}

// updated is s after the changes c, at version.
func updated(s State, c events.ArticleChanges, version int, at time.Time) State {
	a := s.Article
	a.Tags = slices.Clone(a.Tags)
	set(&a.Title, c.Title)
	set(&a.Slug, c.Slug)
	set(&a.Content, c.Content)
	set(&a.AuthorID, c.AuthorID)
	if c.Status != nil {
		a.Status = Status(*c.Status)
	}
	if c.Tags != nil {
		a.Tags = slices.Clone(*c.Tags)
		if a.Tags == nil {
			a.Tags = []string{}
		}
	}
	a.Version = version
	a.UpdatedAt = at
	return State{Article: a}
}

// deleted is the tombstone of s at version.
func deleted(s State, version int, at time.Time) State {
	a := s.Article
	a.Tags = slices.Clone(a.Tags)
	a.Version = version
	a.UpdatedAt = at
	return State{Article: a, Deleted: true}
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
