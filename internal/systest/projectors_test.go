package systest_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// TestProjectorsThreeInstances runs three projectors on the one durable
// consumer while two command APIs take 200 concurrent updates of 20
// articles; afterwards every KV snapshot is the fold of its article's events.
func TestProjectorsThreeInstances(t *testing.T) {
	_, s := systest.StartSingle(t, 3)
	// A second command API: its writes race the first one's in JetStream.
	second := systest.Base(s.StartCommandAPI(systest.CommandConfig(s.URL, 1)))
	cmds := []string{s.Cmd(), second}

	const articles, updates = 20, 200
	ids := make([]string, articles)
	for i := range ids {
		a, _ := s.Create(map[string]any{"title": fmt.Sprintf("Article %d", i), "content": "v1", "author_id": fmt.Sprintf("author-%d", i%4)})
		ids[i] = a.ID
	}

	// 200 updates at once, every one a change (a unique content),
	// alternating PUT and PATCH and the two command APIs.
	perArticle := make([]int, articles)
	for i := 0; i < updates; i++ {
		perArticle[i%articles]++
	}
	rs := systest.Concurrently(t, updates, func(i int) (systest.Response, error) {
		url := cmds[i%2] + "/api/articles/" + ids[i%articles]
		content := fmt.Sprintf("update %d", i)
		if i%3 == 0 {
			return systest.Do(s.Client, http.MethodPut, url, map[string]any{
				"title": fmt.Sprintf("Article %d", i%articles), "content": content, "author_id": fmt.Sprintf("author-%d", i%4),
				"status": []string{"draft", "under_review", "published"}[(i/3)%3], "tags": []string{fmt.Sprintf("t%d", i%5)},
			})
		}
		return systest.Do(s.Client, http.MethodPatch, url, map[string]any{"content": content, "tags": []string{fmt.Sprintf("w%d", i%8)}},
			"Content-Type", systest.MergePatch)
	})
	for _, r := range rs {
		r.Require(t, http.StatusOK)
	}
	// Two tombstones as well.
	for _, id := range ids[:2] {
		s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+id, nil).Require(t, http.StatusNoContent)
	}

	s.WaitProjected(30 * time.Second)

	s.Run(t, "every snapshot is the fold of its events", func(t *testing.T) {
		for i, id := range ids {
			snap := s.RequireSnapshotIsFold(id)
			// Every update landed as its own version: none was lost.
			want := 1 + perArticle[i]
			if i < 2 {
				want++
			}
			if snap.Article.Version != want || snap.Deleted != (i < 2) {
				t.Errorf("article %d: v%d deleted=%v, want v%d deleted=%v", i, snap.Article.Version, snap.Deleted, want, i < 2)
			}
		}
		if msgs := s.StreamMsgs(); msgs != articles+updates+2 {
			t.Errorf("stream holds %d events, want %d", msgs, articles+updates+2)
		}
	})

	s.Run(t, "verify finds no difference", func(t *testing.T) {
		rep := s.Verify()
		for _, d := range rep.Differences {
			t.Error("verify:", d)
		}
		if rep.Articles != articles {
			t.Errorf("verify folded %d articles, want %d", rep.Articles, articles)
		}
	})

	s.Run(t, "the instances shared the work", func(t *testing.T) {
		busy := 0
		var handled []float64
		for _, p := range s.Projectors {
			a := s.Metric(systest.Base(p), "inkstream_projector_events_applied_total") + s.Metric(systest.Base(p), "inkstream_projector_events_duplicate_total")
			handled = append(handled, a)
			if a > 0 {
				busy++
			}
		}
		t.Logf("events handled per projector: %v", handled)
		if busy < 2 {
			t.Errorf("only %d of 3 projectors handled events: %v", busy, handled)
		}
	})

	s.Run(t, "the query API serves the fold", func(t *testing.T) {
		for _, id := range ids[2:] {
			st := s.History(id).Fold.State
			systest.RequireSameArticle(t, s.WaitArticle(id, st.Article.Version), st.Article)
		}
	})
}

// TestQueryRebuildsMissingSnapshot removes snapshots from KV (one deleted,
// one purged): the query API's view drops them, yet it still serves each
// article, rebuilt from the stream; so does a query API started afresh; and
// the next event puts a correct snapshot back.
func TestQueryRebuildsMissingSnapshot(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	ctx := natstest.Context(t)
	a, _ := s.Create(map[string]any{"title": "Deleted from KV", "content": "one", "author_id": "alice", "tags": []string{"kv"}})
	a, _ = s.Write(http.MethodPatch, a.ID, map[string]any{"content": "two"}, "Content-Type", systest.MergePatch)
	b, _ := s.Create(map[string]any{"title": "Purged from KV", "content": "one", "author_id": "bob"})
	s.WaitProjected(10 * time.Second)
	s.WaitArticle(a.ID, 2)
	s.WaitArticle(b.ID, 1)
	viewSize := func() float64 { return s.Metric(s.Query(), "inkstream_query_articles") }
	if n := viewSize(); n != 2 {
		t.Fatalf("view holds %v articles, want 2", n)
	}

	s.Step(t, "the view follows KV", func(t *testing.T) {
		if err := s.Res.KV.Delete(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Res.KV.Purge(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{a.ID, b.ID} {
			if _, ok := s.Snapshot(id); ok {
				t.Fatalf("snapshot of %s still in KV", id)
			}
		}
		natstest.WaitFor(t, 10*time.Second, func() error {
			if n := viewSize(); n != 0 {
				return fmt.Errorf("view still holds %v articles", n)
			}
			return nil
		})
	})

	s.Step(t, "reads replay the stream", func(t *testing.T) {
		replays := s.Metric(s.Query(), "inkstream_query_replays_total")
		for _, want := range []domain.Article{a, b} {
			r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+want.ID, nil)
			r.Require(t, http.StatusOK)
			if r.ETagVersion(t) != want.Version {
				t.Fatalf("GET %s: ETag %s, want %d", want.ID, r.Header.Get("ETag"), want.Version)
			}
			systest.RequireSameArticle(t, r.Article(t), want)
		}
		if got := s.Metric(s.Query(), "inkstream_query_replays_total"); got != replays+2 {
			t.Fatalf("replays went from %v to %v, want +2", replays, got)
		}
	})

	// A query API started now loads a bucket without them, and still serves them.
	first := s.QueryAPI
	s.QueryAPI = s.StartQueryAPI(systest.QueryConfig(s.URL, 1))
	if err := first.Stop(); err != nil {
		t.Fatalf("stop the first query API: %v", err)
	}
	s.Step(t, "a fresh query API", func(t *testing.T) {
		if n := viewSize(); n != 0 {
			t.Fatalf("fresh view holds %v articles, want 0", n)
		}
		for _, want := range []domain.Article{a, b} {
			systest.RequireSameArticle(t, s.WaitArticle(want.ID, want.Version), want)
		}
	})

	s.Step(t, "the next event puts the snapshot back", func(t *testing.T) {
		// b, without new events, is still served from the stream.
		a, _ = s.Write(http.MethodPatch, a.ID, map[string]any{"content": "three"}, "Content-Type", systest.MergePatch)
		s.WaitProjected(10 * time.Second)
		s.RequireSnapshotIsFold(a.ID)
		systest.RequireSameArticle(t, s.WaitArticle(a.ID, 3), a)
		if _, ok := s.Snapshot(b.ID); ok {
			t.Fatalf("snapshot of %s came back without an event", b.ID)
		}
		systest.RequireSameArticle(t, s.WaitArticle(b.ID, 1), b)
	})

	// Verify reports b's snapshot as missing, and nothing else.
	diffs := s.Verify().Differences
	if len(diffs) != 1 || diffs[0].ArticleID != b.ID || diffs[0].Problem != "missing" {
		t.Fatalf("verify: %v, want only %s missing", diffs, b.ID)
	}
}
