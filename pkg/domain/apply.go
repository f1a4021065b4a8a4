package domain

import (
	"fmt"
	"slices"
	"time"
)

// Apply returns the state after e. The event must be the next version of the
// article: anything else is ErrConflict (or ErrNotFound for a change of an
// article that is not live), so a fold never skips or repeats. The one
// exception is ArticleErased, which begins the history an erasure leaves
// and so follows any version.
func Apply(s State, e Event) (State, error) {
	if s.Exists() && e.ArticleID != s.Article.ID {
		return s, fmt.Errorf("apply event of %s onto %s: %w", e.ArticleID, s.Article.ID, ErrConflict)
	}
	if _, erased := e.Change.(ArticleErased); erased {
		if e.Version <= s.Article.Version {
			return s, fmt.Errorf("apply erasure v%d onto v%d of %s: %w", e.Version, s.Article.Version, e.ArticleID, ErrConflict)
		}
		return State{Article: Article{ID: e.ArticleID, Version: e.Version, UpdatedAt: e.At.UTC()}, Deleted: true, Erased: true}, nil
	}
	if e.Version != s.Article.Version+1 {
		return s, fmt.Errorf("apply v%d onto v%d of %s: %w", e.Version, s.Article.Version, e.ArticleID, ErrConflict)
	}
	at := e.At.UTC()
	switch c := e.Change.(type) {
	case ArticleCreated:
		if s.Exists() {
			return s, fmt.Errorf("apply create v%d onto existing %s: %w", e.Version, e.ArticleID, ErrConflict)
		}
		return created(e.ArticleID, c.Fields, at), nil
	case ArticleUpdated:
		if !s.Live() {
			return s, fmt.Errorf("apply update to %s: %w", e.ArticleID, ErrNotFound)
		}
		return updated(s, c.Changes, e.Version, at), nil
	case ArticleDeleted:
		if !s.Live() {
			return s, fmt.Errorf("apply delete to %s: %w", e.ArticleID, ErrNotFound)
		}
		return deleted(s, e.Version, at), nil
	default:
		return s, fmt.Errorf("apply unknown change %T: %w", e.Change, ErrConflict)
	}
}

// Fold applies events in order onto the empty state.
func Fold(evs []Event) (State, error) {
	var s State
	for _, e := range evs {
		var err error
		if s, err = Apply(s, e); err != nil {
			return s, err
		}
	}
	return s, nil
}

// created is the state of a new article with fields f; it keeps f.Tags.
func created(id string, f Fields, at time.Time) State {
	if f.Tags == nil {
		f.Tags = []string{}
	}
	return State{Article: Article{ID: id, Fields: f, Version: 1, CreatedAt: at, UpdatedAt: at}}
}

// updated is s after the changes c, at version.
func updated(s State, c Changes, version int, at time.Time) State {
	a := s.Article
	a.Tags = slices.Clone(a.Tags)
	set(&a.Title, c.Title)
	set(&a.Slug, c.Slug)
	set(&a.Content, c.Content)
	set(&a.AuthorID, c.AuthorID)
	set(&a.Status, c.Status)
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
