package domain

import "time"

// Event is one change of an article, as Decide returns it and Apply folds
// it: who (Actor) did what (Change) to which article (ArticleID), becoming
// which version, when. Its wire form is package events' business.
type Event struct {
	ID        string    // unique event id (a UUIDv7)
	ArticleID string    // the article it changes
	Version   int       // the article's version after it
	At        time.Time // when it happened, UTC
	Actor     string    // who made it: the writer's token subject; empty on events older than actors
	Change    Change    // what happened
}

// Change is what an event did: ArticleCreated, ArticleUpdated, ArticleDeleted
// or ArticleErased.
type Change interface{ isChange() }

// ArticleCreated is a new article with all its fields.
type ArticleCreated struct{ Fields Fields }

// ArticleUpdated holds only the fields that changed.
type ArticleUpdated struct{ Changes Changes }

// ArticleDeleted is a tombstone.
type ArticleDeleted struct{}

// ArticleErased marks an article whose every earlier event was purged (an
// erasure request); it holds no article data.
type ArticleErased struct{}

func (ArticleCreated) isChange() {}
func (ArticleUpdated) isChange() {}
func (ArticleDeleted) isChange() {}
func (ArticleErased) isChange()  {}

// Changes are the fields an update changed; nil means unchanged.
type Changes struct {
	Title, Slug, Content, AuthorID *string
	Status                         *Status
	Tags                           *[]string
}

// Empty reports whether no field changed.
func (c Changes) Empty() bool {
	return c.Title == nil && c.Slug == nil && c.Content == nil && c.AuthorID == nil && c.Status == nil && c.Tags == nil
}
