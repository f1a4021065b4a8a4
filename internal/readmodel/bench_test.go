package readmodel_test

import (
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// BenchmarkProjectEvent is the projector's work per event: decode the
// event, apply it, encode the snapshot (and the query side's decode of it).
func BenchmarkProjectEvent(b *testing.B) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	created := domain.Event{ID: "0193a1b2-0000-7000-8000-000000000001", ArticleID: "0193a1b2-0000-7000-8000-0000000000aa", Version: 1, At: at,
		Change: domain.ArticleCreated{Fields: domain.Fields{Title: "Benchmarking a blog backend", Slug: "benchmarking-a-blog-backend",
			Content: "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " +
				"Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.",
			AuthorID: "author-42", Status: "draft", Tags: []string{"go", "nats", "cqrs"}}}}
	title := "Benchmarking a blog backend, again"
	updated := domain.Event{ID: "0193a1b2-0000-7000-8000-000000000002", ArticleID: created.ArticleID, Version: 2, At: at.Add(time.Second),
		Change: domain.ArticleUpdated{Changes: domain.Changes{Title: &title}}}
	cb, err := events.Encode(created)
	if err != nil {
		b.Fatal(err)
	}
	ub, err := events.Encode(updated)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var st domain.State
		for i, raw := range [][]byte{cb, ub} {
			ev, err := events.Decode(raw)
			if err != nil {
				b.Fatal(err)
			}
			if st, err = domain.Apply(st, ev); err != nil {
				b.Fatal(err)
			}
			v, err := readmodel.Encode(readmodel.FromState(st, uint64(i+1)))
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := readmodel.Decode(v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecodeSnapshot is the query API's work per KV update: the
// snapshot of the article inkbench posts, decoded with its article's JSON.
func BenchmarkDecodeSnapshot(b *testing.B) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	a := domain.Article{ID: "0193a1b2-0000-7000-8000-0000000000aa", Version: 3, CreatedAt: at, UpdatedAt: at.Add(time.Minute),
		Fields: domain.Fields{Title: "Posted article 17", Slug: "posted-article-17",
			Content:  strings.Repeat("Event sourcing keeps every change as an immutable fact; the read side folds them. ", 12),
			AuthorID: "author-1", Status: domain.StatusDraft, Tags: []string{"bench", "nats", "go"}}}
	v, err := readmodel.Encode(readmodel.Snapshot{Article: a, Seq: 12345})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := readmodel.Decode(v); err != nil {
			b.Fatal(err)
		}
	}
}
