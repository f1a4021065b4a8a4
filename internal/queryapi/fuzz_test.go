package queryapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// fuzzService is a query service whose view holds 30 articles by three
// authors, one in three published; lists need nothing of NATS.
func fuzzService(tb testing.TB) fasthttp.RequestHandler {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(nil, nil, nil, nil, Options{Versions: 10, MinSeqWait: time.Second, ReadTimeout: time.Second, CacheBytes: 1 << 20}, prometheus.NewRegistry(), log)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		st := []domain.Status{domain.StatusPublished, domain.StatusDraft, domain.StatusUnderReview}[i%3]
		a := domain.Article{ID: fmt.Sprintf("0196b5c2-7d1e-7a3b-8c4d-%012d", i), Version: 1,
			Fields:    domain.Fields{Title: fmt.Sprintf("T%d", i%7), Slug: "t", Content: "c", AuthorID: fmt.Sprintf("a%d", i%3), Status: st, Tags: []string{"go", fmt.Sprintf("t%d", i%4)}},
			CreatedAt: t0.Add(time.Duration(i%5) * time.Minute), UpdatedAt: t0.Add(time.Duration(i) * time.Second)}
		b, err := json.Marshal(a)
		if err != nil {
			tb.Fatal(err)
		}
		s.view.put(newEntry(readmodel.IndexOf(readmodel.Snapshot{Article: a, Seq: uint64(i + 1)})), uint64(i+1))
		s.bodies.Set(a.ID, &body{version: a.Version, json: b})
	}
	app := httpx.NewApp("fuzz", 0, log)
	s.Routes(app)
	return app.Handler()
}

// FuzzListQuery sends any query string to GET /api/articles as an
// anonymous reader: the answer is a page (200) or a 400 problem, never a
// 500 or a panic, and never lists an unpublished article.
func FuzzListQuery(f *testing.F) {
	h := fuzzService(f)
	for _, q := range []string{"", "limit=1", "limit=0", "limit=101", "limit=-1", "limit=1e3", "sort=title", "sort=-title", "sort=bogus",
		"status=draft", "status=published&author_id=a0", "tag=go&sort=-updated_at&limit=2", "author_id=a1&status=draft",
		"cursor=eyJzIjoiLWNyZWF0ZWRfYXQiLCJpIjoieCJ9", "cursor=%%%", "cursor=", "limit=2&limit=3", "status=DRAFT", "tag=%00"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(http.MethodGet)
		ctx.Request.SetRequestURI("/api/articles?" + requestLine(q))
		h(&ctx)
		switch st := ctx.Response.StatusCode(); st {
		case http.StatusOK:
			var page struct {
				Items      []domain.Article `json:"items"`
				NextCursor string           `json:"next_cursor"`
			}
			if err := json.Unmarshal(ctx.Response.Body(), &page); err != nil {
				t.Fatalf("%q: 200 with %s: %v", q, ctx.Response.Body(), err)
			}
			for _, a := range page.Items {
				if a.Status != domain.StatusPublished {
					t.Fatalf("%q: an anonymous reader got %s article %s", q, a.Status, a.ID)
				}
			}
		case http.StatusBadRequest:
			if ct := string(ctx.Response.Header.ContentType()); ct != httpx.ContentTypeProblem {
				t.Fatalf("%q: 400 as %s", q, ct)
			}
		default:
			t.Fatalf("%q: status %d: %s", q, st, ctx.Response.Body())
		}
	})
}

// requestLine escapes what a request line cannot carry (controls,
// blanks, bytes past ASCII, '#'); everything else goes as the client sent it.
func requestLine(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzCursor: any cursor decodes or is a 400; one that decodes encodes to
// a cursor that decodes to the same place.
func FuzzCursor(f *testing.F) {
	e := &entry{id: "0196b5c2-7d1e-7a3b-8c4d-5e6f7a8b9c0d", title: "T", createdAt: time.Unix(1, 5).UTC(), updatedAt: time.Unix(2, 0).UTC()}
	for s := range sorts {
		f.Add(encodeCursor(s, e), s)
	}
	f.Add("", "title")
	f.Add("e30", "title")
	f.Fuzz(func(t *testing.T, cur, sort string) {
		if _, ok := sorts[sort]; !ok {
			return
		}
		pivot, err := decodeCursor(cur, sort)
		if err != nil {
			if p, ok := httpx.ProblemFor(err); !ok || p.Status != http.StatusBadRequest {
				t.Fatalf("%q: %v", cur, err)
			}
			return
		}
		again, err := decodeCursor(encodeCursor(sort, pivot), sort)
		if err != nil || again.id != pivot.id || again.title != pivot.title ||
			!again.createdAt.Equal(pivot.createdAt) || !again.updatedAt.Equal(pivot.updatedAt) {
			t.Fatalf("%q: %+v re-encoded to %+v (%v)", cur, pivot, again, err)
		}
	})
}
