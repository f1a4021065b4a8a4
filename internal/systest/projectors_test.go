package systest_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// syMetric reads an unlabelled sample from a role's /metrics.
func syMetric(tb testing.TB, s *systest.System, addr, name string) float64 {
	tb.Helper()
	r := s.Do(http.MethodGet, "http://"+addr+"/metrics", nil)
	syExpectStatus(tb, r, http.StatusOK, "GET /metrics")
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				tb.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	tb.Fatalf("metric %s not found at %s", name, addr)
	return 0
}

// sySnapshotOf reads and decodes the KV snapshot of an article.
func sySnapshotOf(tb testing.TB, s *systest.System, id string) (readmodel.Snapshot, bool) {
	tb.Helper()
	e, err := s.Res.KV.Get(natstest.Context(tb), id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return readmodel.Snapshot{}, false
	}
	if err != nil {
		tb.Fatalf("kv get %s: %v", id, err)
	}
	snap, body, err := readmodel.Decode(e.Value())
	if err != nil {
		tb.Fatalf("kv value of %s: %v", id, err)
	}
	if snap.Article.ID != id || len(body) == 0 {
		tb.Fatalf("kv value of %s holds article %q", id, snap.Article.ID)
	}
	return snap, true
}

// syExpectSnapshotIsFold fails unless the KV snapshot of id is the fold of
// the article's events: same fields, version, deletion and sequence.
func syExpectSnapshotIsFold(tb testing.TB, s *systest.System, id string) readmodel.Snapshot {
	tb.Helper()
	h := s.History(id)
	st, seq := h.Fold.State, h.Fold.Seq
	snap, ok := sySnapshotOf(tb, s, id)
	if !ok {
		tb.Fatalf("article %s (v%d in the stream) has no snapshot", id, st.Article.Version)
	}
	if !sySameArticle(snap.Article, st.Article) || snap.Deleted != st.Deleted || snap.Seq != seq {
		tb.Fatalf("snapshot of %s is not the fold of its events:\n  kv:     v%d seq %d deleted=%v %+v\n  stream: v%d seq %d deleted=%v %+v",
			id, snap.Article.Version, snap.Seq, snap.Deleted, snap.Article, st.Article.Version, seq, st.Deleted, st.Article)
	}
	return snap
}

// TestProjectorsThreeInstances runs three projectors on the one durable
// consumer while two command APIs take 200 concurrent updates of 20
// articles; afterwards every KV snapshot is the fold of its article's events.
func TestProjectorsThreeInstances(t *testing.T) {
	_, s := systest.StartSingle(t, 3)
	// A second command API: its writes race the first one's in JetStream.
	second := "http://" + s.StartCommandAPI(systest.CommandConfig(s.URL, 1)).Addr
	cmds := []string{s.Cmd(), second}

	const articles, updates, writers = 20, 200, 8
	syIDs := make([]string, articles)
	for i := range syIDs {
		a, _ := syCreate(t, s, map[string]any{"title": fmt.Sprintf("Article %d", i), "content": "v1", "author_id": fmt.Sprintf("author-%d", i%4)})
		syIDs[i] = a.ID
	}

	// 200 updates from 8 goroutines, every one a change (a unique content),
	// alternating PUT and PATCH and the two command APIs.
	var wg sync.WaitGroup
	errs := make(chan error, updates)
	perArticle := make([]int, articles)
	for i := 0; i < updates; i++ {
		perArticle[i%articles]++
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < updates; i += writers {
				id := syIDs[i%articles]
				content := fmt.Sprintf("update %d by writer %d", i, w)
				var r systest.Response
				var err error
				url := cmds[i%2] + "/api/articles/" + id
				if i%3 == 0 {
					r, err = systest.Do(s.Client, http.MethodPut, url, map[string]any{
						"title": fmt.Sprintf("Article %d", i%articles), "content": content, "author_id": fmt.Sprintf("author-%d", i%4),
						"status": []string{"draft", "under_review", "published"}[(i/3)%3], "tags": []string{fmt.Sprintf("t%d", i%5)},
					})
				} else {
					r, err = systest.Do(s.Client, http.MethodPatch, url, map[string]any{"content": content, "tags": []string{fmt.Sprintf("w%d", w)}},
						"Content-Type", syMergePatch)
				}
				if err == nil && r.Status != http.StatusOK {
					err = fmt.Errorf("update %d of %s: %d %s", i, id, r.Status, r.Body)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	// Two tombstones as well.
	for _, id := range syIDs[:2] {
		syExpectStatus(t, s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+id, nil), http.StatusNoContent, "DELETE "+id)
	}

	s.WaitProjected(30 * time.Second)
	for i, id := range syIDs {
		snap := syExpectSnapshotIsFold(t, s, id)
		// Every update landed as its own version: none was lost.
		want := 1 + perArticle[i]
		if i < 2 {
			want++
		}
		if snap.Article.Version != want || snap.Deleted != (i < 2) {
			t.Errorf("article %d: v%d deleted=%v, want v%d deleted=%v", i, snap.Article.Version, snap.Deleted, want, i < 2)
		}
	}
	rep := s.Verify()
	for _, d := range rep.Differences {
		t.Error("verify:", d)
	}
	if rep.Articles != articles {
		t.Errorf("verify folded %d articles, want %d", rep.Articles, articles)
	}
	if msgs := s.StreamMsgs(); msgs != articles+updates+2 {
		t.Errorf("stream holds %d events, want %d", msgs, articles+updates+2)
	}

	// The three instances shared the work.
	busy := 0
	var handled []float64
	for _, p := range s.Projectors {
		a := syMetric(t, s, p.Addr, "inkstream_projector_events_applied_total") + syMetric(t, s, p.Addr, "inkstream_projector_events_duplicate_total")
		handled = append(handled, a)
		if a > 0 {
			busy++
		}
	}
	t.Logf("events handled per projector: %v", handled)
	if busy < 2 {
		t.Errorf("only %d of 3 projectors handled events: %v", busy, handled)
	}

	// The query API serves the same state.
	for _, id := range syIDs[2:] {
		st := s.History(id).Fold.State
		if got := syWaitArticle(t, s, id, st.Article.Version); !sySameArticle(got, st.Article) {
			t.Fatalf("query API serves %+v, want %+v", got, st.Article)
		}
	}
}

// TestQueryRebuildsMissingSnapshot removes snapshots from KV (one deleted,
// one purged): the query API's view drops them, yet it still serves each
// article, rebuilt from the stream; so does a query API started afresh; and
// the next event puts a correct snapshot back.
func TestQueryRebuildsMissingSnapshot(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	ctx := natstest.Context(t)
	a, _ := syCreate(t, s, map[string]any{"title": "Deleted from KV", "content": "one", "author_id": "alice", "tags": []string{"kv"}})
	a, _ = syWrite(t, s, http.MethodPatch, a.ID, map[string]any{"content": "two"}, "Content-Type", syMergePatch)
	b, _ := syCreate(t, s, map[string]any{"title": "Purged from KV", "content": "one", "author_id": "bob"})
	s.WaitProjected(10 * time.Second)
	syWaitArticle(t, s, a.ID, 2)
	syWaitArticle(t, s, b.ID, 1)
	query := s.QueryAPI.Addr
	if n := syMetric(t, s, query, "inkstream_query_articles"); n != 2 {
		t.Fatalf("view holds %v articles, want 2", n)
	}
	replays := syMetric(t, s, query, "inkstream_query_replays_total")

	if err := s.Res.KV.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Res.KV.Purge(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, ok := sySnapshotOf(t, s, id); ok {
			t.Fatalf("snapshot of %s still in KV", id)
		}
	}
	// The view follows KV and evicts both.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := syMetric(t, s, query, "inkstream_query_articles"); n != 0 {
			return fmt.Errorf("view still holds %v articles", n)
		}
		return nil
	})

	// Reads rebuild them from the stream.
	for _, want := range []domain.Article{a, b} {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+want.ID, nil)
		syExpectStatus(t, r, http.StatusOK, "GET after the snapshot was removed")
		if got := syDecodeArticle(t, r); !sySameArticle(got, want) || r.Header.Get("ETag") != syETag(want.Version) {
			t.Fatalf("GET %s: ETag %s %+v, want %+v", want.ID, r.Header.Get("ETag"), got, want)
		}
	}
	if got := syMetric(t, s, query, "inkstream_query_replays_total"); got != replays+2 {
		t.Fatalf("replays went from %v to %v, want +2", replays, got)
	}

	// A query API started now loads a bucket without them, and still serves them.
	qa := s.QueryAPI
	s.QueryAPI = s.StartQueryAPI(systest.QueryConfig(s.URL, 1))
	if err := qa.Stop(); err != nil {
		t.Fatalf("stop the first query API: %v", err)
	}
	if n := syMetric(t, s, s.QueryAPI.Addr, "inkstream_query_articles"); n != 0 {
		t.Fatalf("fresh view holds %v articles, want 0", n)
	}
	for _, want := range []domain.Article{a, b} {
		if got := syWaitArticle(t, s, want.ID, want.Version); !sySameArticle(got, want) {
			t.Fatalf("fresh query API: %+v, want %+v", got, want)
		}
	}

	// The next event of a puts a correct snapshot back (from the stream);
	// b, without new events, is still served from the stream.
	a, _ = syWrite(t, s, http.MethodPatch, a.ID, map[string]any{"content": "three"}, "Content-Type", syMergePatch)
	s.WaitProjected(10 * time.Second)
	syExpectSnapshotIsFold(t, s, a.ID)
	if got := syWaitArticle(t, s, a.ID, 3); !sySameArticle(got, a) {
		t.Fatalf("after the next event: %+v, want %+v", got, a)
	}
	if _, ok := sySnapshotOf(t, s, b.ID); ok {
		t.Fatalf("snapshot of %s came back without an event", b.ID)
	}
	if got := syWaitArticle(t, s, b.ID, 1); !sySameArticle(got, b) {
		t.Fatalf("b: %+v, want %+v", got, b)
	}
	// Verify reports b's snapshot as missing, and nothing else.
	diffs := s.Verify().Differences
	if len(diffs) != 1 || diffs[0].ArticleID != b.ID || diffs[0].Problem != "missing" {
		t.Fatalf("verify: %v, want only %s missing", diffs, b.ID)
	}
}
