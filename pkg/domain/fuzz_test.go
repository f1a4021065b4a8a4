package domain_test

import (
	"errors"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inkstream/inkstream/pkg/domain"
)

// tagRule is the tag pattern of the README, kept apart from the one under test.
var tagRule = regexp.MustCompile(`^[a-z0-9-]+$`)

// brokenRules checks every rule of the article's fields (README, API) independently
// of Validate and returns the names of the fields that break one.
func brokenRules(f domain.Fields) []string {
	var broken []string
	if n := utf8.RuneCountInString(strings.TrimSpace(f.Title)); n < 1 || n > 200 || f.Title != strings.TrimSpace(f.Title) {
		broken = append(broken, "title")
	}
	if len(f.Slug) > 200 || !slugRule.MatchString(f.Slug) {
		broken = append(broken, "slug")
	}
	if n := utf8.RuneCountInString(f.Content); n < 1 || n > 100_000 {
		broken = append(broken, "content")
	}
	if n := utf8.RuneCountInString(f.AuthorID); n < 1 || n > 64 || strings.TrimSpace(f.AuthorID) == "" {
		broken = append(broken, "author_id")
	}
	switch f.Status {
	case "draft", "under_review", "published":
	default:
		broken = append(broken, "status")
	}
	tagsOK := f.Tags != nil && len(f.Tags) <= 10
	seen := map[string]bool{}
	for _, tag := range f.Tags {
		if n := utf8.RuneCountInString(tag); n < 1 || n > 32 || !tagRule.MatchString(tag) || seen[tag] {
			tagsOK = false
		}
		seen[tag] = true
	}
	if !tagsOK {
		broken = append(broken, "tags")
	}
	sort.Strings(broken)
	return broken
}

// splitTags turns the fuzzer's string into a tag list: nil when absent,
// otherwise the comma-separated parts (so empty tags occur too).
func splitTags(s string, absent bool) []string {
	if absent {
		return nil
	}
	return strings.Split(s, ",")
}

func FuzzValidate(f *testing.F) {
	f.Add("Hello World", "", "content", "author-1", "", "go,nats", false, testID)
	f.Add("  Hello, World!  ", "hello-world", "c", "a", "published", "", true, testID)
	f.Add("日本語", "", "c", "a", "draft", "a", false, testID)
	f.Add("日本語", "", "c", "a", "draft", "a", false, "")
	f.Add("!!!", "", "c", "a", "under_review", "x,x", false, "---")
	f.Add("", "", "", "", "", "", false, "")
	f.Add(" \t\n", "A", "c", "   ", "Draft", "a,,b", false, testID)
	f.Add("t", "a--b", "c", "a", "archived", "A,b_c,d e", false, testID)
	f.Add("t", "-a", "c", "a", "draft", "0,1,2,3,4,5,6,7,8,9,10", false, testID)
	f.Add("t", "a-", "c", "a", "draft", strings.Repeat("a", 32)+","+strings.Repeat("b", 33), false, testID)
	f.Add(strings.Repeat("é", 200), "", "c", strings.Repeat("ü", 64), "", "", true, testID)
	f.Add(strings.Repeat("é", 201), strings.Repeat("a", 201), "c", strings.Repeat("a", 65), "", "-", false, testID)
	f.Add(strings.Repeat("a b ", 60), "", "\x00", "\xff", "published", "é", false, "\xff")
	f.Add("\u00a0title\u2003", "", "c", "\u00a0", "", "", true, testID)

	f.Fuzz(func(t *testing.T, title, slug, content, author, status, tags string, noTags bool, fallback string) {
		in := domain.Fields{Title: title, Slug: slug, Content: content, AuthorID: author, Status: domain.Status(status), Tags: splitTags(tags, noTags)}
		n := in.Normalize(fallback)

		// Normalize fills every default and is idempotent.
		if n.Title != strings.TrimSpace(title) {
			t.Fatalf("title %q not trimmed: %q", title, n.Title)
		}
		if slug != "" && n.Slug != slug {
			t.Fatalf("explicit slug %q changed to %q", slug, n.Slug)
		}
		if slug == "" {
			requireSlugShape(t, n.Slug)
		}
		if status == "" && n.Status != domain.StatusDraft {
			t.Fatalf("absent status became %q", n.Status)
		}
		if n.Tags == nil {
			t.Fatal("Normalize left tags nil")
		}
		requireFieldsEqual(t, n.Normalize(fallback), n)
		requireSlugShape(t, domain.Slugify(title))
		requireSlugShape(t, domain.Slugify(fallback))

		err := n.Validate()
		want := brokenRules(n)
		if err == nil {
			if len(want) != 0 {
				t.Fatalf("Validate accepted %+v, which breaks %v", n, want)
			}
			return
		}
		if !errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
		var ve *domain.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("error %v is not a *ValidationError", err)
		}
		got := map[string]bool{}
		for k, msg := range ve.Fields {
			if msg == "" {
				t.Fatalf("field %q has an empty message", k)
			}
			field, _, _ := strings.Cut(k, "[")
			got[field] = true
		}
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if strings.Join(keys, ",") != strings.Join(want, ",") {
			t.Fatalf("Validate(%+v) names %v (%v), the rules break %v", n, keys, err, want)
		}
	})
}
