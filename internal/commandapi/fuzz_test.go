package commandapi

import (
	"errors"
	"testing"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// decodeSeeds are bodies of POST, PUT and PATCH, good and bad.
var decodeSeeds = []string{
	`{"title":"Hello","content":"World","author_id":"a","tags":["x","y"],"status":"draft"}`,
	`{"title":"a","title":"b"}`, `{"id":"x"}`, `{"version":1}`, `{"bogus":1}`, `{"tags":[1]}`, `{"tags":null}`,
	`{"status":null,"slug":null}`, `[]`, `null`, `{"title":"a"} {}`, `{"title":"a"`, "{\"title\":\"\xff\"}", ``, ` `,
	`{"title":{"nested":true}}`, `{"content":1e999}`, `{"Title":"case"}`,
}

// problemOrValid fails unless err is nil or a client error: a 4xx
// problem or a domain error kind that maps to one. No body is a 500.
func problemOrValid(t *testing.T, body string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	p, ok := httpx.ProblemFor(err)
	if !ok || p.Status < 400 || p.Status > 499 {
		t.Fatalf("%q: %v is not a client error (problem %+v)", body, err, p)
	}
}

// FuzzDecodeArticle: the POST and PUT decoder answers any body with the
// fields or a 4xx, never a panic; what it accepts names no read-only field.
func FuzzDecodeArticle(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := decodeArticle(body)
		problemOrValid(t, string(body), err)
		if err == nil {
			// A decoded article is validated next; that too answers 400 at worst.
			if verr := fields.Normalize("0196b5c2-7d1e-7a3b-8c4d-5e6f7a8b9c0d").Validate(); verr != nil && !errors.Is(verr, domain.ErrInvalid) {
				t.Fatalf("%q: validation %v", body, verr)
			}
		}
	})
}

// FuzzDecodePatch: the merge patch decoder likewise, and a patch it
// accepts applies to any article.
func FuzzDecodePatch(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePatch(body)
		problemOrValid(t, string(body), err)
		if err == nil {
			_ = p.ApplyTo(domain.Fields{Title: "T", Content: "C", AuthorID: "a", Status: domain.StatusDraft, Tags: []string{"x"}}).Normalize("id")
		}
	})
}
