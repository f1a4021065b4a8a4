package domain

import (
	"fmt"
	"slices"
)

// State is an article folded from its events. The zero State is an article
// that has no events.
type State struct {
	Article Article
	Deleted bool
	// Erased is true once an erasure purged the article's history; the
	// article keeps only its id and version then.
	Erased bool
}

// Exists reports whether the article was ever created.
func (s State) Exists() bool { return s.Article.Version > 0 }

// Live reports whether the article exists and is not deleted.
func (s State) Live() bool { return s.Exists() && !s.Deleted }

// Decide returns the events cmd produces on s: one event, or none when a
// replace or patch changes nothing. Apply folds them onto s. Errors:
// ErrInvalid (a *ValidationError), ErrNotFound, ErrConflict (create of an
// existing id), ErrPreconditionFailed (a *PreconditionError).
func Decide(s State, cmd Command) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateArticle:
		if s.Exists() {
			return nil, fmt.Errorf("create article %s: %w", c.ID, ErrConflict)
		}
		f := c.Fields.Normalize(c.ID)
		if err := f.Validate(); err != nil {
			return nil, err
		}
		f.Tags = slices.Clone(f.Tags) // the event's own, apart from the command's
		return one(c.Meta, c.ID, 1, ArticleCreated{Fields: f}), nil
	case ReplaceArticle:
		if err := check(s, c.ID, c.IfMatch); err != nil {
			return nil, err
		}
		return change(s, c.Meta, c.Fields.Normalize(c.ID))
	case PatchArticle:
		if err := check(s, c.ID, c.IfMatch); err != nil {
			return nil, err
		}
		// The slug stays as it was unless the patch names it; null derives it anew.
		return change(s, c.Meta, c.Patch.ApplyTo(s.Article.Fields).Normalize(c.ID))
	case DeleteArticle:
		if err := check(s, c.ID, c.IfMatch); err != nil {
			return nil, err
		}
		return one(c.Meta, c.ID, s.Article.Version+1, ArticleDeleted{}), nil
	case EraseArticle:
		switch {
		case !s.Exists():
			return nil, fmt.Errorf("article %s: %w", c.ID, ErrNotFound)
		case s.Erased:
			return nil, nil // erased already: the rest of the erasure may be done again
		}
		return one(c.Meta, c.ID, s.Article.Version+1, ArticleErased{}), nil
	default:
		return nil, fmt.Errorf("unknown command %T: %w", cmd, ErrInvalid)
	}
}

func one(m Meta, id string, version int, c Change) []Event {
	return []Event{{ID: m.EventID, ArticleID: id, Version: version, At: m.At.UTC(), Actor: m.Actor, Change: c}}
}

func check(s State, id string, ifMatch *int) error {
	if !s.Live() {
		return fmt.Errorf("article %s: %w", id, ErrNotFound)
	}
	if ifMatch != nil && *ifMatch != s.Article.Version {
		return fmt.Errorf("article %s: %w", id, &PreconditionError{Expected: *ifMatch, Actual: s.Article.Version})
	}
	return nil
}

func change(s State, m Meta, f Fields) ([]Event, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	old := s.Article.Fields
	var c Changes
	if f.Title != old.Title {
		c.Title = &f.Title
	}
	if f.Slug != old.Slug {
		c.Slug = &f.Slug
	}
	if f.Content != old.Content {
		c.Content = &f.Content
	}
	if f.AuthorID != old.AuthorID {
		c.AuthorID = &f.AuthorID
	}
	if f.Status != old.Status {
		c.Status = &f.Status
	}
	if !slices.Equal(f.Tags, old.Tags) {
		tags := slices.Clone(f.Tags)
		c.Tags = &tags
	}
	if c.Empty() {
		return nil, nil
	}
	return one(m, s.Article.ID, s.Article.Version+1, ArticleUpdated{Changes: c}), nil
}
