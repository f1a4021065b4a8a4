package domain

import (
	"fmt"
	"slices"

	"github.com/inkstream/inkstream/pkg/events"
)

// State is an article folded from its events. The zero State is an article
// that has no events.
type State struct {
	Article Article
	Deleted bool
}

// Exists reports whether the article was ever created.
func (s State) Exists() bool { return s.Article.Version > 0 }

// Live reports whether the article exists and is not deleted.
func (s State) Live() bool { return s.Exists() && !s.Deleted }

// Decide returns the events cmd produces on s: one event, or none when a
// replace or patch changes nothing. Errors: ErrInvalid (a *ValidationError),
// ErrNotFound, ErrConflict (create of an existing id), ErrPreconditionFailed
// (a *PreconditionError).
func Decide(s State, cmd Command) ([]events.Envelope, error) {
	evs, _, err := DecideState(s, cmd)
	return evs, err
}

// DecideState is Decide that also returns the state after the events, the
// state Apply folds from them (s itself when there are none), without
// decoding the data it has just encoded.
func DecideState(s State, cmd Command) ([]events.Envelope, State, error) {
	switch c := cmd.(type) {
	case CreateArticle:
		if s.Exists() {
			return nil, s, fmt.Errorf("create article %s: %w", c.ID, ErrConflict)
		}
		f := c.Fields.Normalize(c.ID)
		if err := f.Validate(); err != nil {
			return nil, s, err
		}
		d := toData(f)
		e, err := events.NewEnvelope(c.EventID, events.ArticleCreated, c.ID, 1, c.At, d)
		if err != nil {
			return nil, s, err
		}
		d.Tags = slices.Clone(d.Tags) // the state's own, apart from the command's
		return []events.Envelope{e}, created(e.ArticleID, d, e.OccurredAt.UTC()), nil
	case ReplaceArticle:
		if err := check(s, c.ID, c.IfMatch); err != nil {
			return nil, s, err
		}
		return change(s, c.Meta, c.Fields.Normalize(c.ID))
	case PatchArticle:
		if err := check(s, c.ID, c.IfMatch); err != nil {
			return nil, s, err
		}
		// The slug stays as it was unless the patch names it; null derives it anew.
		return change(s, c.Meta, c.Patch.ApplyTo(s.Article.Fields).Normalize(c.ID))
	case DeleteArticle:
		if err := check(s, c.ID, c.IfMatch); err != nil {
			return nil, s, err
		}
		e, err := events.NewEnvelope(c.EventID, events.ArticleDeleted, c.ID, s.Article.Version+1, c.At, struct{}{})
		if err != nil {
			return nil, s, err
		}
		return []events.Envelope{e}, deleted(s, e.Version, e.OccurredAt.UTC()), nil
	default:
		return nil, s, fmt.Errorf("unknown command %T: %w", cmd, ErrInvalid)
	}
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

func change(s State, m Meta, f Fields) ([]events.Envelope, State, error) {
	if err := f.Validate(); err != nil {
		return nil, s, err
	}
	old := s.Article.Fields
	var c events.ArticleChanges
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
		st := string(f.Status)
		c.Status = &st
	}
	if !slices.Equal(f.Tags, old.Tags) {
		c.Tags = &f.Tags
	}
	if c.Empty() {
		return nil, s, nil
	}
	e, err := events.NewEnvelope(m.EventID, events.ArticleUpdated, s.Article.ID, s.Article.Version+1, m.At, c)
	if err != nil {
		return nil, s, err
	}
	return []events.Envelope{e}, updated(s, c, e.Version, e.OccurredAt.UTC()), nil
}

func toData(f Fields) events.ArticleData {
	return events.ArticleData{Title: f.Title, Slug: f.Slug, Content: f.Content, AuthorID: f.AuthorID, Status: string(f.Status), Tags: f.Tags}
}
