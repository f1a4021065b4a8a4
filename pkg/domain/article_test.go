package domain_test

import (
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inkstream/inkstream/pkg/domain"
)

// testID is a UUIDv7 as the command API generates it; it is the slug fallback.
const testID = "0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a"

var slugRule = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// validFields returns fields that pass every rule.
func validFields() domain.Fields {
	return domain.Fields{
		Title:    "Hello World",
		Slug:     "hello-world",
		Content:  "Some content.",
		AuthorID: "author-1",
		Status:   domain.StatusPublished,
		Tags:     []string{"go", "nats"},
	}
}

// requireValid fails unless err is nil.
func requireValid(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("want no error, got %v", err)
	}
}

// requireInvalid fails unless err is a *ValidationError wrapping ErrInvalid
// whose field keys are exactly keys, each with a message.
func requireInvalid(tb testing.TB, err error, keys ...string) *domain.ValidationError {
	tb.Helper()
	if err == nil {
		tb.Fatalf("want a validation error on %v, got nil", keys)
	}
	if !errors.Is(err, domain.ErrInvalid) {
		tb.Fatalf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		tb.Fatalf("errors.As(%v, *ValidationError) = false", err)
	}
	got := make([]string, 0, len(ve.Fields))
	for k, msg := range ve.Fields {
		got = append(got, k)
		if msg == "" {
			tb.Errorf("field %q has an empty message", k)
		}
	}
	sort.Strings(got)
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		tb.Fatalf("invalid fields = %v, want %v (error: %v)", got, want, err)
	}
	return ve
}

// tagList returns n distinct valid tags.
func tagList(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = "tag-" + strings.Repeat("x", i+1)
	}
	return tags
}

func TestFieldsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *domain.Fields)
		want   []string // invalid field keys; none means valid
	}{
		{name: "valid", mutate: func(*domain.Fields) {}},

		// title
		{name: "title empty", mutate: func(f *domain.Fields) { f.Title = "" }, want: []string{"title"}},
		{name: "title whitespace only", mutate: func(f *domain.Fields) { f.Title = " \t\n\u00a0 " }, want: []string{"title"}},
		{name: "title one char", mutate: func(f *domain.Fields) { f.Title = "x" }},
		{name: "title 200 ascii", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("a", 200) }},
		{name: "title 201 ascii", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("a", 201) }, want: []string{"title"}},
		{name: "title 200 runes padded", mutate: func(f *domain.Fields) { f.Title = "   " + strings.Repeat("a", 200) + "\n\t" }},
		{name: "title 200 two-byte runes", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("é", 200) }},
		{name: "title 201 two-byte runes", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("é", 201) }, want: []string{"title"}},
		{name: "title 200 three-byte runes", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("日", 200) }},
		{name: "title 201 three-byte runes", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("日", 201) }, want: []string{"title"}},
		{name: "title 200 four-byte runes", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("😀", 200) }},
		{name: "title 201 four-byte runes", mutate: func(f *domain.Fields) { f.Title = strings.Repeat("😀", 201) }, want: []string{"title"}},

		// slug
		{name: "slug absent is derived", mutate: func(f *domain.Fields) { f.Slug = "" }},
		{name: "slug single letter", mutate: func(f *domain.Fields) { f.Slug = "a" }},
		{name: "slug single digit", mutate: func(f *domain.Fields) { f.Slug = "0" }},
		{name: "slug with digits and hyphens", mutate: func(f *domain.Fields) { f.Slug = "go-1-26-is-out" }},
		{name: "slug 200", mutate: func(f *domain.Fields) { f.Slug = strings.Repeat("a", 200) }},
		{name: "slug 200 with hyphens", mutate: func(f *domain.Fields) { f.Slug = strings.Repeat("a-", 99) + "ab" }},
		{name: "slug 201", mutate: func(f *domain.Fields) { f.Slug = strings.Repeat("a", 201) }, want: []string{"slug"}},
		{name: "slug upper case", mutate: func(f *domain.Fields) { f.Slug = "A" }, want: []string{"slug"}},
		{name: "slug mixed case", mutate: func(f *domain.Fields) { f.Slug = "Hello-world" }, want: []string{"slug"}},
		{name: "slug double hyphen", mutate: func(f *domain.Fields) { f.Slug = "a--b" }, want: []string{"slug"}},
		{name: "slug leading hyphen", mutate: func(f *domain.Fields) { f.Slug = "-a" }, want: []string{"slug"}},
		{name: "slug trailing hyphen", mutate: func(f *domain.Fields) { f.Slug = "a-" }, want: []string{"slug"}},
		{name: "slug hyphen only", mutate: func(f *domain.Fields) { f.Slug = "-" }, want: []string{"slug"}},
		{name: "slug space", mutate: func(f *domain.Fields) { f.Slug = "a b" }, want: []string{"slug"}},
		{name: "slug underscore", mutate: func(f *domain.Fields) { f.Slug = "a_b" }, want: []string{"slug"}},
		{name: "slug non-ascii", mutate: func(f *domain.Fields) { f.Slug = "café" }, want: []string{"slug"}},
		{name: "slug trailing newline", mutate: func(f *domain.Fields) { f.Slug = "ab\n" }, want: []string{"slug"}},

		// content
		{name: "content empty", mutate: func(f *domain.Fields) { f.Content = "" }, want: []string{"content"}},
		{name: "content one char", mutate: func(f *domain.Fields) { f.Content = "x" }},
		{name: "content 100000", mutate: func(f *domain.Fields) { f.Content = strings.Repeat("a", 100_000) }},
		{name: "content 100000 multibyte", mutate: func(f *domain.Fields) { f.Content = strings.Repeat("日", 100_000) }},
		{name: "content 100001", mutate: func(f *domain.Fields) { f.Content = strings.Repeat("a", 100_001) }, want: []string{"content"}},
		{name: "content 100001 multibyte", mutate: func(f *domain.Fields) { f.Content = strings.Repeat("é", 100_001) }, want: []string{"content"}},

		// author_id
		{name: "author empty", mutate: func(f *domain.Fields) { f.AuthorID = "" }, want: []string{"author_id"}},
		{name: "author blank", mutate: func(f *domain.Fields) { f.AuthorID = "   " }, want: []string{"author_id"}},
		{name: "author tab", mutate: func(f *domain.Fields) { f.AuthorID = "\t" }, want: []string{"author_id"}},
		{name: "author one char", mutate: func(f *domain.Fields) { f.AuthorID = "a" }},
		{name: "author 64", mutate: func(f *domain.Fields) { f.AuthorID = strings.Repeat("a", 64) }},
		{name: "author 64 multibyte", mutate: func(f *domain.Fields) { f.AuthorID = strings.Repeat("ü", 64) }},
		{name: "author 65", mutate: func(f *domain.Fields) { f.AuthorID = strings.Repeat("a", 65) }, want: []string{"author_id"}},
		{name: "author 65 multibyte", mutate: func(f *domain.Fields) { f.AuthorID = strings.Repeat("ü", 65) }, want: []string{"author_id"}},

		// status
		{name: "status absent defaults", mutate: func(f *domain.Fields) { f.Status = "" }},
		{name: "status draft", mutate: func(f *domain.Fields) { f.Status = domain.StatusDraft }},
		{name: "status under_review", mutate: func(f *domain.Fields) { f.Status = domain.StatusUnderReview }},
		{name: "status published", mutate: func(f *domain.Fields) { f.Status = domain.StatusPublished }},
		{name: "status unknown", mutate: func(f *domain.Fields) { f.Status = "archived" }, want: []string{"status"}},
		{name: "status wrong case", mutate: func(f *domain.Fields) { f.Status = "Draft" }, want: []string{"status"}},
		{name: "status padded", mutate: func(f *domain.Fields) { f.Status = " published" }, want: []string{"status"}},
		{name: "status hyphenated", mutate: func(f *domain.Fields) { f.Status = "under-review" }, want: []string{"status"}},

		// tags
		{name: "tags nil", mutate: func(f *domain.Fields) { f.Tags = nil }},
		{name: "tags empty", mutate: func(f *domain.Fields) { f.Tags = []string{} }},
		{name: "tags 10", mutate: func(f *domain.Fields) { f.Tags = tagList(10) }},
		{name: "tags 11", mutate: func(f *domain.Fields) { f.Tags = tagList(11) }, want: []string{"tags"}},
		{name: "tag 1 char", mutate: func(f *domain.Fields) { f.Tags = []string{"a"} }},
		{name: "tag hyphen only", mutate: func(f *domain.Fields) { f.Tags = []string{"-"} }},
		{name: "tag digits and hyphens", mutate: func(f *domain.Fields) { f.Tags = []string{"go-1-26", "-x-", "42"} }},
		{name: "tag 32", mutate: func(f *domain.Fields) { f.Tags = []string{strings.Repeat("a", 32)} }},
		{name: "tag 33", mutate: func(f *domain.Fields) { f.Tags = []string{"ok", strings.Repeat("a", 33)} }, want: []string{"tags[1]"}},
		{name: "tag empty", mutate: func(f *domain.Fields) { f.Tags = []string{"ok", ""} }, want: []string{"tags[1]"}},
		{name: "tag upper case", mutate: func(f *domain.Fields) { f.Tags = []string{"Go"} }, want: []string{"tags[0]"}},
		{name: "tag underscore", mutate: func(f *domain.Fields) { f.Tags = []string{"a_b"} }, want: []string{"tags[0]"}},
		{name: "tag space", mutate: func(f *domain.Fields) { f.Tags = []string{"a b"} }, want: []string{"tags[0]"}},
		{name: "tag non-ascii", mutate: func(f *domain.Fields) { f.Tags = []string{"café"} }, want: []string{"tags[0]"}},
		{name: "several bad tags", mutate: func(f *domain.Fields) { f.Tags = []string{"ok", "BAD", "", "fine"} }, want: []string{"tags[1]", "tags[2]"}},
		{name: "tags duplicate", mutate: func(f *domain.Fields) { f.Tags = []string{"go", "nats", "go"} }, want: []string{"tags"}},
		{name: "tags same but case", mutate: func(f *domain.Fields) { f.Tags = []string{"go", "GO"} }, want: []string{"tags[1]"}},

		// several rules at once
		{name: "everything broken", mutate: func(f *domain.Fields) {
			*f = domain.Fields{Slug: "Bad Slug", AuthorID: " ", Status: "gone", Tags: tagList(11)}
		}, want: []string{"title", "slug", "content", "author_id", "status", "tags"}},
		{name: "all absent", mutate: func(f *domain.Fields) { *f = domain.Fields{} }, want: []string{"title", "content", "author_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validFields()
			tt.mutate(&f)
			err := f.Normalize(testID).Validate()
			if len(tt.want) == 0 {
				requireValid(t, err)
				return
			}
			requireInvalid(t, err, tt.want...)
		})
	}
}

func TestFieldsValidateNoSlugToDerive(t *testing.T) {
	// Neither the title nor the fallback has a letter or digit: there is no
	// slug, and Validate must not accept an article without one.
	f := domain.Fields{Title: "🎉🚀", Content: "c", AuthorID: "a"}.Normalize("---")
	if f.Slug != "" {
		t.Fatalf("slug = %q, want empty", f.Slug)
	}
	requireInvalid(t, f.Validate(), "slug")
}

func TestValidationErrorError(t *testing.T) {
	f := domain.Fields{Title: "t", Slug: "ok", Content: "", AuthorID: ""}.Normalize(testID)
	err := f.Validate()
	ve := requireInvalid(t, err, "author_id", "content")
	msg := ve.Error()
	if !strings.HasPrefix(msg, "invalid article: ") {
		t.Errorf("Error() = %q, want prefix %q", msg, "invalid article: ")
	}
	a, c := strings.Index(msg, "author_id: "), strings.Index(msg, "content: ")
	if a < 0 || c < 0 || a > c {
		t.Errorf("Error() = %q, want author_id before content", msg)
	}
}

func TestFieldsNormalize(t *testing.T) {
	tests := []struct {
		name     string
		in       domain.Fields
		fallback string
		want     domain.Fields
	}{
		{
			name:     "defaults",
			in:       domain.Fields{Title: "  Hello, World!  ", Content: "c", AuthorID: "a"},
			fallback: testID,
			want:     domain.Fields{Title: "Hello, World!", Slug: "hello-world", Content: "c", AuthorID: "a", Status: domain.StatusDraft, Tags: []string{}},
		},
		{
			name:     "explicit values kept",
			in:       domain.Fields{Title: "Hello", Slug: "custom", Content: " c ", AuthorID: " a ", Status: domain.StatusUnderReview, Tags: []string{"x"}},
			fallback: testID,
			want:     domain.Fields{Title: "Hello", Slug: "custom", Content: " c ", AuthorID: " a ", Status: domain.StatusUnderReview, Tags: []string{"x"}},
		},
		{
			name:     "invalid explicit slug is not rewritten",
			in:       domain.Fields{Title: "Hello", Slug: "Not A Slug", Status: "bogus"},
			fallback: testID,
			want:     domain.Fields{Title: "Hello", Slug: "Not A Slug", Status: "bogus", Tags: []string{}},
		},
		{
			name:     "a title in another script is transliterated",
			in:       domain.Fields{Title: "日本語のタイトル"},
			fallback: testID,
			want:     domain.Fields{Title: "日本語のタイトル", Slug: "ri-ben-yu-notaitoru", Status: domain.StatusDraft, Tags: []string{}},
		},
		{
			name:     "punctuation-only title falls back to a prefix of the id",
			in:       domain.Fields{Title: "!!! ??? ..."},
			fallback: testID,
			want:     domain.Fields{Title: "!!! ??? ...", Slug: testID[:8], Status: domain.StatusDraft, Tags: []string{}},
		},
		{
			name:     "fallback is slugified too",
			in:       domain.Fields{Title: "—"},
			fallback: "ID_With Caps",
			want:     domain.Fields{Title: "—", Slug: "id-with", Status: domain.StatusDraft, Tags: []string{}},
		},
		{
			name:     "empty title falls back",
			in:       domain.Fields{Title: "   "},
			fallback: testID,
			want:     domain.Fields{Title: "", Slug: testID[:8], Status: domain.StatusDraft, Tags: []string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.Normalize(tt.fallback)
			requireFieldsEqual(t, got, tt.want)
			if got.Tags == nil {
				t.Error("Normalize left Tags nil, want an empty list")
			}
			requireFieldsEqual(t, got.Normalize(tt.fallback), got) // idempotent
		})
	}
}

func TestFieldsNormalizeDoesNotModifyReceiver(t *testing.T) {
	in := domain.Fields{Title: "  t  "}
	_ = in.Normalize(testID)
	if in.Title != "  t  " || in.Slug != "" || in.Status != "" || in.Tags != nil {
		t.Fatalf("Normalize changed its receiver: %+v", in)
	}
}

// requireFieldsEqual fails unless got and want are the same fields.
func requireFieldsEqual(tb testing.TB, got, want domain.Fields) {
	tb.Helper()
	if got.Title != want.Title || got.Slug != want.Slug || got.Content != want.Content ||
		got.AuthorID != want.AuthorID || got.Status != want.Status || !slices.Equal(got.Tags, want.Tags) {
		tb.Fatalf("fields = %+v, want %+v", got, want)
	}
}

// TestSlugify derives slugs from titles in many scripts: transliterated to
// lower-case ASCII, or nothing when there is nothing to transliterate (the
// article's id then gives the slug: TestFieldsNormalize).
func TestSlugify(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "simple", in: "hello", want: "hello"},
		{name: "upper case", in: "UPPER case", want: "upper-case"},
		{name: "punctuation", in: "Hello, World!", want: "hello-world"},
		{name: "leading and trailing", in: "  --Leading and trailing!--  ", want: "leading-and-trailing"},
		{name: "runs collapse", in: "multiple---hyphens___and   spaces", want: "multiple-hyphens-and-spaces"},
		{name: "digits", in: "Go 1.26 is out", want: "go-1-26-is-out"},
		{name: "already a slug", in: "already-a-slug", want: "already-a-slug"},
		{name: "control characters", in: "a\tb\nc\x00d", want: "a-b-c-d"},
		{name: "Latin accents", in: "Crème brûlée à São Paulo: ação", want: "creme-brulee-a-sao-paulo-acao"},
		{name: "German", in: "Café Über Straße", want: "cafe-uber-strasse"},
		{name: "German initial umlauts", in: "Ärger mit Öl", want: "arger-mit-ol"},
		{name: "Nordic and Polish", in: "Ærøskøbing Łódź", want: "aeroskobing-lodz"},
		{name: "Cyrillic", in: "Привет, мир", want: "privet-mir"},
		{name: "Greek", in: "Καλημέρα κόσμε", want: "kalemera-kosme"},
		{name: "Chinese", in: "中文标题", want: "zhong-wen-biao-ti"},
		{name: "Japanese", in: "日本語のタイトル", want: "ri-ben-yu-notaitoru"},
		{name: "Korean", in: "한국어 제목", want: "hangugeo-jemog"},
		{name: "CJK then ASCII", in: "日本語 Go", want: "ri-ben-yu-go"},
		{name: "ampersand", in: "NATS & Go", want: "nats-and-go"},
		{name: "emoji among words", in: "🚀 Launch 🚀 day", want: "launch-day"},
		{name: "emoji only", in: "🎉🚀", want: ""},
		{name: "punctuation only", in: "!!! ... ???", want: ""},
		{name: "dashes only", in: "— – -", want: ""},
		{name: "invalid utf-8", in: "a\xffb c", want: "ab-c"},
		{name: "truncated to 200", in: strings.Repeat("a", 250), want: strings.Repeat("a", 200)},
		{name: "200 exact", in: strings.Repeat("b", 200), want: strings.Repeat("b", 200)},
		{name: "no trailing hyphen at 199", in: strings.Repeat("a", 199) + " b", want: strings.Repeat("a", 199)},
		{name: "no trailing hyphen at 200", in: strings.Repeat("a", 200) + " b", want: strings.Repeat("a", 200)},
		{name: "cut at a hyphen, not in a word", in: strings.Repeat("a", 198) + " bc", want: strings.Repeat("a", 198)},
		{name: "long words", in: strings.Repeat("word ", 100), want: strings.TrimSuffix(strings.Repeat("word-", 40), "-")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := domain.Slugify(tt.in)
			if got != tt.want {
				t.Fatalf("Slugify(%q) = %q, want %q", tt.in, got, tt.want)
			}
			requireSlugShape(t, got)
		})
	}
}

// requireSlugShape fails unless s is empty or a valid slug of at most 200 characters.
func requireSlugShape(tb testing.TB, s string) {
	tb.Helper()
	if s == "" {
		return
	}
	if utf8.RuneCountInString(s) > domain.MaxSlug || !slugRule.MatchString(s) {
		tb.Fatalf("slug %q (len %d) is not a valid slug", s, len(s))
	}
}

func TestPatchApplyTo(t *testing.T) {
	base := validFields()
	tests := []struct {
		name  string
		patch domain.Patch
		want  domain.Fields
	}{
		{name: "empty patch keeps all", patch: domain.Patch{}, want: base},
		{
			name:  "values replace",
			patch: domain.Patch{Title: domain.Value[string]{Set: true, Value: "T"}, Tags: domain.Value[[]string]{Set: true, Value: []string{"z"}}},
			want:  domain.Fields{Title: "T", Slug: base.Slug, Content: base.Content, AuthorID: base.AuthorID, Status: base.Status, Tags: []string{"z"}},
		},
		{
			name: "nulls reset to zero",
			patch: domain.Patch{
				Title: domain.Value[string]{Set: true, Null: true}, Slug: domain.Value[string]{Set: true, Null: true},
				Content: domain.Value[string]{Set: true, Null: true}, AuthorID: domain.Value[string]{Set: true, Null: true},
				Status: domain.Value[domain.Status]{Set: true, Null: true}, Tags: domain.Value[[]string]{Set: true, Null: true},
			},
			want: domain.Fields{},
		},
		{
			name:  "null wins over a value",
			patch: domain.Patch{Status: domain.Value[domain.Status]{Set: true, Null: true, Value: domain.StatusPublished}},
			want:  domain.Fields{Title: base.Title, Slug: base.Slug, Content: base.Content, AuthorID: base.AuthorID, Tags: base.Tags},
		},
		{
			name:  "unset value is ignored",
			patch: domain.Patch{Title: domain.Value[string]{Value: "ignored"}},
			want:  base,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireFieldsEqual(t, tt.patch.ApplyTo(base), tt.want)
		})
	}
}
