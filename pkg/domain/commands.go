package domain

import "time"

// Meta is what every command carries besides its intent: the id of the event
// it may produce and the time it happens. Keeping both outside makes Decide
// deterministic.
type Meta struct {
	EventID string
	At      time.Time
	Actor   string // who gives the command: the token subject
}

// Command is one of CreateArticle, ReplaceArticle, PatchArticle, DeleteArticle, EraseArticle.
type Command interface {
	articleID() string
}

// CreateArticle creates a new article with a server-generated id.
type CreateArticle struct {
	Meta
	ID     string
	Fields Fields
}

// ReplaceArticle replaces every mutable field (PUT).
type ReplaceArticle struct {
	Meta
	ID      string
	Fields  Fields
	IfMatch *int
}

// PatchArticle changes the fields a merge patch names (PATCH, RFC 7396).
type PatchArticle struct {
	Meta
	ID      string
	Patch   Patch
	IfMatch *int
}

// EraseArticle erases an article: every earlier event of it is purged,
// and one ArticleErased remains.
type EraseArticle struct {
	Meta
	ID string
}

// DeleteArticle writes a tombstone.
type DeleteArticle struct {
	Meta
	ID      string
	IfMatch *int
}

func (c CreateArticle) articleID() string  { return c.ID }
func (c ReplaceArticle) articleID() string { return c.ID }
func (c PatchArticle) articleID() string   { return c.ID }
func (c DeleteArticle) articleID() string  { return c.ID }
func (c EraseArticle) articleID() string   { return c.ID }

// Value is one member of a merge patch: absent (Set false), null (Set true,
// Null true) or a value.
type Value[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// Patch is a JSON merge patch of the mutable fields. null resets a field to
// its default: the slug is derived from the title again, the status becomes
// draft, the tags become empty, and a required field fails validation.
type Patch struct {
	Title, Slug, Content, AuthorID Value[string]
	Status                         Value[Status]
	Tags                           Value[[]string]
}

// ApplyTo returns f with the patch applied (before normalization).
func (p Patch) ApplyTo(f Fields) Fields {
	patch(&f.Title, p.Title)
	patch(&f.Slug, p.Slug)
	patch(&f.Content, p.Content)
	patch(&f.AuthorID, p.AuthorID)
	patch(&f.Status, p.Status)
	patch(&f.Tags, p.Tags)
	return f
}

func patch[T any](dst *T, v Value[T]) {
	if !v.Set {
		return
	}
	if v.Null {
		var zero T
		*dst = zero
		return
	}
	*dst = v.Value
}
