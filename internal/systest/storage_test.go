package systest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

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
