package domain

import (
	"regexp"
	"strings"
	"time"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"github.com/gosimple/slug"
)

// Status is the editorial state of an article.
type Status string

// The statuses an article can have.
const (
	StatusDraft       Status = "draft"
	StatusUnderReview Status = "under_review"
	StatusPublished   Status = "published"
)

// Limits of the article fields.
const (
	MaxTitle    = 200
	MaxSlug     = 200
	MaxContent  = 100_000
	MaxAuthorID = 64
	MaxTags     = 10
	MaxTag      = 32
)

var (
	slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	tagPattern  = regexp.MustCompile(`^[a-z0-9-]+$`)
	nonSlug     = regexp.MustCompile(`[^a-z0-9]+`)
)

// rules are the field rules, built once: building an ozzo rule formats its
// error message, which would otherwise cost every request.
var rules = struct {
	title, slug, content, authorID, status, tags []validation.Rule
}{
	title: []validation.Rule{validation.Required.Error("is required"),
		validation.RuneLength(1, MaxTitle).Error("must be 1 to 200 characters")},
	slug: []validation.Rule{validation.Required.Error("is required"),
		validation.RuneLength(0, MaxSlug).Error("must be at most 200 characters"),
		validation.Match(slugPattern).Error("must be lower-case letters and digits separated by single hyphens")},
	content: []validation.Rule{validation.Required.Error("is required"),
		validation.RuneLength(0, MaxContent).Error("must be at most 100000 characters")},
	authorID: []validation.Rule{validation.Required.Error("is required"),
		validation.By(notBlank),
		validation.RuneLength(1, MaxAuthorID).Error("must be 1 to 64 characters")},
	status: []validation.Rule{validation.Required.Error("is required"),
		validation.In(StatusDraft, StatusUnderReview, StatusPublished).Error("must be one of draft, under_review, published")},
	tags: []validation.Rule{validation.Length(0, MaxTags).Error("must have at most 10 tags"),
		validation.By(uniqueTags),
		validation.Each(validation.Required.Error("must be 1 to 32 characters"),
			validation.RuneLength(1, MaxTag).Error("must be 1 to 32 characters"),
			validation.Match(tagPattern).Error("must be lower-case letters, digits and hyphens"))},
}

// Fields are the mutable fields of an article, as a client sends them.
type Fields struct {
	Title    string   `json:"title"`
	Slug     string   `json:"slug"`
	Content  string   `json:"content"`
	AuthorID string   `json:"author_id"`
	Status   Status   `json:"status"`
	Tags     []string `json:"tags"`
}

// Article is the current state of one article.
type Article struct {
	ID string `json:"id"`
	Fields
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Normalize fills the defaults: the title is trimmed, an absent slug is
// derived from the title (or, when the title has nothing to transliterate,
// is a prefix of fallback, the article's id), an absent status is draft, absent tags are an empty list.
func (f Fields) Normalize(fallback string) Fields {
	f.Title = strings.TrimSpace(f.Title)
	if f.Slug == "" {
		f.Slug = Slugify(f.Title)
		if f.Slug == "" {
			f.Slug = fallbackSlug(fallback)
		}
	}
	if f.Status == "" {
		f.Status = StatusDraft
	}
	if f.Tags == nil {
		f.Tags = []string{}
	}
	return f
}

// Validate checks every field rule and returns a *ValidationError (ErrInvalid)
// naming each broken one, or nil. Call it on normalized fields.
func (f Fields) Validate() error {
	err := validation.ValidateStruct(&f,
		validation.Field(&f.Title, rules.title...),
		validation.Field(&f.Slug, rules.slug...),
		validation.Field(&f.Content, rules.content...),
		validation.Field(&f.AuthorID, rules.authorID...),
		validation.Field(&f.Status, rules.status...),
		validation.Field(&f.Tags, rules.tags...),
	)
	if err == nil {
		return nil
	}
	ve := &ValidationError{Fields: map[string]string{}}
	flatten("", err, ve.Fields)
	return ve
}

func flatten(prefix string, err error, out map[string]string) {
	errs, ok := err.(validation.Errors)
	if !ok {
		if prefix == "" {
			prefix = "article"
		}
		out[prefix] = err.Error()
		return
	}
	for k, e := range errs {
		key := k
		if prefix != "" {
			key = prefix + "[" + k + "]"
		}
		flatten(key, e, out)
	}
}

func notBlank(v any) error {
	if s, _ := v.(string); s != "" && strings.TrimSpace(s) == "" {
		return validation.NewError("blank", "must not be blank")
	}
	return nil
}

func uniqueTags(v any) error {
	tags, _ := v.([]string)
	seen := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		if _, dup := seen[t]; dup {
			return validation.NewError("duplicate_tag", "must not repeat tag "+t)
		}
		seen[t] = struct{}{}
	}
	return nil
}

// Slugify derives a slug from s: transliterated to ASCII by a slug library
// (gosimple/slug: "Café Über Straße" → "cafe-uber-strasse", Cyrillic,
// Greek and CJK too), lower-case letters and digits, every other run of
// characters one hyphen, at most MaxSlug long (cut at a hyphen when there
// is one). It is empty when s has nothing to transliterate.
func Slugify(s string) string {
	// The library keeps underscores; a slug here has none.
	out := strings.Trim(nonSlug.ReplaceAllString(slug.Make(s), "-"), "-")
	if len(out) > MaxSlug {
		out = out[:MaxSlug]
		if i := strings.LastIndexByte(out, '-'); i > 0 {
			out = out[:i]
		}
		out = strings.TrimRight(out, "-")
	}
	return out
}

// IsSlug reports whether s is a valid slug.
func IsSlug(s string) bool { return len(s) <= MaxSlug && slugPattern.MatchString(s) }

// fallbackSlugLen is how much of the article's id becomes the slug of a
// title with nothing to transliterate.
const fallbackSlugLen = 8

// fallbackSlug is the slug of an article whose title has nothing to
// transliterate: a prefix of its id.
func fallbackSlug(id string) string {
	s := Slugify(id)
	if len(s) > fallbackSlugLen {
		s = strings.TrimRight(s[:fallbackSlugLen], "-")
	}
	return s
}
