package systest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

type bulkAnswer struct {
	Items []domain.Article `json:"items"`
}

func bulkBody(n int, edit func(i int, a map[string]any)) map[string]any {
	arts := make([]map[string]any, n)
	for i := range arts {
		arts[i] = map[string]any{"title": fmt.Sprintf("Bulk %04d", i), "content": "imported", "author_id": "importer", "tags": []string{"bulk"}}
		if edit != nil {
			edit(i, arts[i])
		}
	}
	return map[string]any{"articles": arts}
}

// TestBulkCreate: a bulk of 1 000 articles is one atomic batch, all visible;
// one invalid article writes nothing and is named by its index; a retry
// with the same Idempotency-Key writes nothing new and answers the same.
func TestBulkCreate(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	url := s.Cmd() + "/api/articles/_bulk"

	t.Run("one invalid article writes nothing", func(t *testing.T) {
		before := s.StreamMsgs()
		r := s.Do(http.MethodPost, url, bulkBody(1000, func(i int, a map[string]any) {
			switch i {
			case 417:
				a["title"] = ""
			case 500:
				a["id"] = "mine"
			}
		}))
		r.RequireProblem(t, http.StatusBadRequest, "articles[417].title")
		r.RequireProblem(t, http.StatusBadRequest, "articles[500].id")
		if got := s.StreamMsgs(); got != before {
			t.Fatalf("stream grew from %d to %d", before, got)
		}
	})
	t.Run("sizes", func(t *testing.T) {
		s.Do(http.MethodPost, url, map[string]any{"articles": []any{}}).RequireProblem(t, http.StatusBadRequest, "articles")
		s.Do(http.MethodPost, url, bulkBody(1001, nil)).RequireProblem(t, http.StatusBadRequest, "articles")
		s.Do(http.MethodPost, url, `{"articles":[{"title":"t","content":"c","author_id":"a"}],"extra":1}`).RequireProblem(t, http.StatusBadRequest, "extra")
	})

	before := s.StreamMsgs()
	const key = "bulk-import-1"
	r := s.Do(http.MethodPost, url, bulkBody(1000, nil), "Idempotency-Key", key)
	r.Require(t, http.StatusCreated)
	var ans bulkAnswer
	r.JSON(t, &ans)
	if len(ans.Items) != 1000 {
		t.Fatalf("%d items, want 1000", len(ans.Items))
	}
	ids := map[string]bool{}
	for i, a := range ans.Items {
		if a.Title != fmt.Sprintf("Bulk %04d", i) || a.Version != 1 || a.ID == "" || ids[a.ID] {
			t.Fatalf("item %d: %+v", i, a)
		}
		ids[a.ID] = true
	}
	if got := s.StreamMsgs(); got != before+1000 {
		t.Fatalf("stream grew by %d, want 1000", got-before)
	}
	if r.Seq() != before+1000 {
		t.Fatalf("X-Event-Seq %d, want the last event's %d", r.Seq(), before+1000)
	}

	t.Run("a retry with the same key writes nothing and answers the same", func(t *testing.T) {
		again := s.Do(http.MethodPost, url, bulkBody(1000, nil), "Idempotency-Key", key)
		again.Require(t, http.StatusCreated)
		var ans2 bulkAnswer
		again.JSON(t, &ans2)
		for i := range ans.Items {
			if !systest.SameArticle(ans2.Items[i], ans.Items[i]) {
				t.Fatalf("item %d: %+v, first answer %+v", i, ans2.Items[i], ans.Items[i])
			}
		}
		if again.Seq() != r.Seq() || s.StreamMsgs() != before+1000 {
			t.Fatalf("retry: seq %d (first %d), stream %d", again.Seq(), r.Seq(), s.StreamMsgs())
		}
		s.Do(http.MethodPost, url, bulkBody(999, nil), "Idempotency-Key", key).RequireProblem(t, http.StatusUnprocessableEntity, "")
	})

	t.Run("all visible", func(t *testing.T) {
		s.WaitProjected(60 * time.Second)
		s.WaitArticle(ans.Items[999].ID, 1)
		n := 0
		cursor := ""
		for {
			q := "/api/articles?author_id=importer&limit=100"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			var page struct {
				Items      []domain.Article `json:"items"`
				NextCursor string           `json:"next_cursor"`
			}
			lr := s.Do(http.MethodGet, s.Query()+q, nil)
			lr.Require(t, http.StatusOK)
			lr.JSON(t, &page)
			for _, a := range page.Items {
				if !ids[a.ID] {
					t.Fatalf("listed %s, not one of the bulk", a.ID)
				}
				n++
			}
			if page.NextCursor == "" {
				break
			}
			cursor = url2(page.NextCursor)
		}
		if n != 1000 {
			t.Fatalf("listed %d of the bulk's 1000 articles", n)
		}
	})
	_ = strconv.Itoa
}

func url2(s string) string { return url.QueryEscape(s) }

// TestQueryWithinByteBudget gives a query API 1 MiB for article bodies and
// about 2.4 MB of articles: it serves every one of them (from its cache, from
// KV, replayed from the stream once KV has lost the snapshot), lists them
// all across pages, and its cache metrics show the misses and evictions.
func TestQueryWithinByteBudget(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	qCfg := systest.QueryConfig(s.URL, 1)
	qCfg.CacheBytes = 1 << 20
	small := "http://" + s.StartQueryAPI(qCfg).Addr

	const n = 600
	content := strings.Repeat("A body that does not fit many times over. ", 100) // 4 200 bytes
	want := map[string]domain.Article{}
	for start := 0; start < n; start += 200 {
		r := s.Do(http.MethodPost, s.Cmd()+"/api/articles/_bulk", bulkBody(200, func(i int, a map[string]any) {
			a["title"], a["content"], a["author_id"] = fmt.Sprintf("Budget %04d", start+i), content, "budget"
		}))
		r.Require(t, http.StatusCreated)
		var ans bulkAnswer
		r.JSON(t, &ans)
		for _, a := range ans.Items {
			want[a.ID] = a
		}
	}
	s.WaitProjected(60 * time.Second)
	get := func(id string) domain.Article {
		t.Helper()
		var a domain.Article
		natstest.WaitFor(t, 10*time.Second, func() error {
			r := s.Do(http.MethodGet, small+"/api/articles/"+id, nil)
			if r.Status != http.StatusOK {
				return fmt.Errorf("GET %s: %d %s", id, r.Status, r.Body)
			}
			a = r.Article(t)
			return nil
		})
		return a
	}
	for round := range 2 {
		for id, w := range want {
			if got := get(id); !systest.SameArticle(got, w) {
				t.Fatalf("round %d: GET %s = %+v, want %+v", round, id, got, w)
			}
		}
	}

	listed := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		q := "/api/articles?author_id=budget&limit=100&sort=title"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var p struct {
			Items      []domain.Article `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		r := s.Do(http.MethodGet, small+q, nil)
		r.Require(t, http.StatusOK)
		r.JSON(t, &p)
		for _, a := range p.Items {
			if listed[a.ID] || !systest.SameArticle(a, want[a.ID]) {
				t.Fatalf("page %d lists %+v (listed before: %v)", page, a, listed[a.ID])
			}
			listed[a.ID] = true
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(listed) != n {
		t.Fatalf("the pages listed %d of %d articles", len(listed), n)
	}

	metric := func(name string) float64 { return s.Metric(small, name) }
	if ev, miss, held := metric("inkstream_cache_evictions_total"), metric("inkstream_cache_misses_total"), metric("inkstream_cache_bytes"); ev == 0 || miss == 0 || held > 1<<20 {
		t.Fatalf("cache: %v evictions, %v misses, %v bytes held; want evictions and misses within 1 MiB", ev, miss, held)
	}

	// Snapshots gone from KV: the reads replay the articles from the stream.
	replays := metric("inkstream_query_replays_total")
	var gone []string
	for id := range want {
		if len(gone) == 20 {
			break
		}
		if err := s.Res.KV.Purge(natstest.Context(t), id); err != nil {
			t.Fatal(err)
		}
		gone = append(gone, id)
	}
	for _, id := range gone {
		if got := get(id); !systest.SameArticle(got, want[id]) {
			t.Fatalf("GET %s after its snapshot was purged = %+v", id, got)
		}
	}
	if got := metric("inkstream_query_replays_total") - replays; got < float64(len(gone)) {
		t.Fatalf("%v replays for %d articles whose snapshot was purged", got, len(gone))
	}
}

// TestErasure erases an article while the projector is stopped and some of
// its events are not projected yet: the stream keeps only the
// ArticleErased marker on the article's subjects, the bucket no snapshot,
// and no read shows anything of it; the projector started again converges
// without bringing the article back, and verify finds no difference.
func TestErasure(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	ctx := natstest.Context(t)
	a, _ := s.Create(systest.Body(1))
	keep, _ := s.Create(systest.Body(2))
	s.Write(http.MethodPatch, a.ID, map[string]any{"status": "published"}, "Content-Type", "application/merge-patch+json")
	s.WaitProjected(30 * time.Second)
	if err := s.Projectors[0].Stop(); err != nil {
		t.Fatal(err)
	}
	s.Write(http.MethodPut, a.ID, systest.Body(3)) // never projected before the erasure

	admin := systest.As(s.Token("root", "admin"))
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID+"?erase=true", nil).RequireProblem(t, http.StatusForbidden, "") // an editor may not
	r := s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID+"?erase=true", nil, admin...)
	r.Require(t, http.StatusNoContent)
	erasedAt := r.Seq()

	stream, err := s.Conn.JS.Stream(ctx, "ARTICLES")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("articles."+a.ID+".>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 1 || info.State.Subjects["articles."+a.ID+".erased"] != 1 {
		t.Fatalf("the article's subjects hold %v, want only its erasure", info.State.Subjects)
	}
	h := s.History(a.ID)
	if len(h.Events) != 1 || h.Events[0].Seq != erasedAt {
		t.Fatalf("history after the erasure: %+v", h.Events)
	}

	s.StartProjector()
	s.WaitProjected(30 * time.Second)
	if _, ok := s.Snapshot(a.ID); ok {
		t.Fatal("the bucket still holds a snapshot of the erased article")
	}
	s.WaitGone(a.ID)
	for _, path := range []string{"", "/versions", "/versions/1", "/events"} {
		s.Do(http.MethodGet, s.Query()+"/api/articles/"+a.ID+path, nil).RequireProblem(t, http.StatusNotFound, "")
	}
	var list struct {
		Items []domain.Article `json:"items"`
	}
	lr := s.Do(http.MethodGet, s.Query()+"/api/articles?limit=100", nil)
	lr.Require(t, http.StatusOK)
	lr.JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != keep.ID {
		t.Fatalf("the list holds %+v, want only %s", list.Items, keep.ID)
	}
	s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+a.ID, systest.Body(4)).RequireProblem(t, http.StatusNotFound, "")
	if out, err := s.VerifyCLI(); err != nil {
		t.Fatalf("verify after the erasure: %v\n%s", err, out)
	}
	// An erasure may be done again; an unknown article has none.
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID+"?erase=true", nil, admin...).Require(t, http.StatusNoContent)
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a?erase=true", nil, admin...).RequireProblem(t, http.StatusNotFound, "")
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+keep.ID+"?erase=maybe", nil, admin...).RequireProblem(t, http.StatusBadRequest, "")
}
