package systest_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// gtList reads a list page into its items.
func gtList(tb testing.TB, r systest.Response) []domain.Article {
	tb.Helper()
	var page struct {
		Items []domain.Article `json:"items"`
	}
	r.JSON(tb, &page)
	return page.Items
}

// gtFind returns the article with id from a list.
func gtFind(items []domain.Article, id string) (domain.Article, bool) {
	for _, a := range items {
		if a.ID == id {
			return a, true
		}
	}
	return domain.Article{}, false
}

// TestReadYourWritesWithoutProjector: with the projector stopped, a read of
// one article carrying the write's X-Min-Event-Seq still sees the write (the
// query API replays the stream), while a list, which cannot be replayed,
// answers 503 with Retry-After; once a projector runs again both see it.
func TestReadYourWritesWithoutProjector(t *testing.T) {
	s := gtStart(t, 1)
	qcfg := systest.QueryConfig(s.URL, 1)
	qcfg.MinSeqWait = 300 * time.Millisecond
	quick := "http://" + s.StartQueryAPI(qcfg).Addr
	queries := []string{s.Query(), quick}

	a, created := gtCreate(t, s, gtBody(1))
	s.WaitProjected(30 * time.Second)
	for _, q := range queries {
		// Both views hold version 1 before the projector stops.
		natstest.WaitFor(t, 10*time.Second, func() error {
			r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil)
			if r.Status != http.StatusOK || gtETag(t, r) != 1 {
				return fmt.Errorf("%s: %d %s", q, r.Status, r.Body)
			}
			return nil
		})
	}
	// A token the view has reached is served at once.
	r := s.Do(http.MethodGet, quick+"/api/articles", nil, "X-Min-Event-Seq", strconv.FormatUint(created.Seq(), 10))
	gtRequireStatus(t, r, http.StatusOK)

	if err := s.Projectors[0].Stop(); err != nil {
		t.Fatalf("stop projector: %v", err)
	}
	w := s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+a.ID, gtBody(2))
	gtRequireStatus(t, w, http.StatusOK)
	want := gtArticle(t, w)
	token := strconv.FormatUint(w.Seq(), 10)

	for _, q := range queries {
		r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil, "X-Min-Event-Seq", token)
		gtRequireStatus(t, r, http.StatusOK)
		if gtETag(t, r) != 2 {
			t.Fatalf("%s: ETag %s with X-Min-Event-Seq %s, want 2", q, r.Header.Get("ETag"), token)
		}
		gtRequireSameArticle(t, gtArticle(t, r), want)
	}
	// The projector is stopped: the snapshot in KV is still version 1, so
	// the answer above came from the stream.
	kve, err := s.Res.KV.Get(natstest.Context(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if snap, _, err := readmodel.Decode(kve.Value()); err != nil || snap.Article.Version != 1 {
		t.Fatalf("snapshot moved on without a projector: %s (%v)", kve.Value(), err)
	}

	start := time.Now()
	r = s.Do(http.MethodGet, quick+"/api/articles", nil, "X-Min-Event-Seq", token)
	gtRequireProblem(t, r, http.StatusServiceUnavailable)
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("503 without a usable Retry-After: %q", r.Header.Get("Retry-After"))
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("503 after %v: the list did not wait MinSeqWait (300ms) for the view", took)
	}

	s.StartProjector()
	for _, q := range queries {
		natstest.WaitFor(t, 20*time.Second, func() error {
			r := s.Do(http.MethodGet, q+"/api/articles", nil, "X-Min-Event-Seq", token)
			if r.Status != http.StatusOK {
				return fmt.Errorf("%s list: %d %s", q, r.Status, r.Body)
			}
			got, ok := gtFind(gtList(t, r), a.ID)
			if !ok {
				return fmt.Errorf("%s list lacks %s: %s", q, a.ID, r.Body)
			}
			// Once the list answers with the token it must hold the write.
			gtRequireSameArticle(t, got, want)
			return nil
		})
		r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil, "X-Min-Event-Seq", token)
		gtRequireStatus(t, r, http.StatusOK)
		gtRequireSameArticle(t, gtArticle(t, r), want)
	}
	gtRequireSnapshot(t, s, a.ID)

	// A token that is not a stream sequence is a client error.
	for _, bad := range []string{"abc", "-1", "1.5", "0x10", "18446744073709551616"} {
		for _, path := range []string{"/api/articles/" + a.ID, "/api/articles"} {
			r := s.Do(http.MethodGet, quick+path, nil, "X-Min-Event-Seq", bad)
			gtRequireProblem(t, r, http.StatusBadRequest)
		}
	}
}
