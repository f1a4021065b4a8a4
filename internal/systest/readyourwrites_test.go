package systest_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// TestReadYourWritesWithoutProjector: with the projector stopped, a read of
// one article carrying the write's X-Min-Event-Seq still sees the write (the
// query API replays the stream), while a list, which cannot be replayed,
// answers 503 with Retry-After; once a projector runs again both see it.
func TestReadYourWritesWithoutProjector(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	qcfg := systest.QueryConfig(s.URL, 1)
	qcfg.MinSeqWait = 300 * time.Millisecond
	quick := systest.Base(s.StartQueryAPI(qcfg))
	queries := []string{s.Query(), quick}

	a, created := s.Create(systest.Body(1))
	s.WaitProjected(30 * time.Second)
	for _, q := range queries {
		// Both views hold version 1 before the projector stops.
		natstest.WaitFor(t, 10*time.Second, func() error {
			r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil)
			if r.Status != http.StatusOK || r.ETagVersion(t) != 1 {
				return fmt.Errorf("%s: %d %s", q, r.Status, r.Body)
			}
			return nil
		})
	}
	// A token the view has reached is served at once.
	s.Do(http.MethodGet, quick+"/api/articles", nil, "X-Min-Event-Seq", strconv.FormatUint(created.Seq(), 10)).Require(t, http.StatusOK)

	if err := s.Projectors[0].Stop(); err != nil {
		t.Fatalf("stop projector: %v", err)
	}
	want, w := s.Write(http.MethodPut, a.ID, systest.Body(2))
	token := strconv.FormatUint(w.Seq(), 10)

	s.Step(t, "a read of the article replays the stream", func(t *testing.T) {
		for _, q := range queries {
			r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil, "X-Min-Event-Seq", token)
			r.Require(t, http.StatusOK)
			if r.ETagVersion(t) != 2 {
				t.Fatalf("%s: ETag %s with X-Min-Event-Seq %s, want 2", q, r.Header.Get("ETag"), token)
			}
			systest.RequireSameArticle(t, r.Article(t), want)
		}
		// The projector is stopped: the snapshot in KV is still version 1, so
		// the answer above came from the stream.
		if snap, ok := s.Snapshot(a.ID); !ok || snap.Article.Version != 1 {
			t.Fatalf("snapshot moved on without a projector: %+v (%v)", snap, ok)
		}
	})

	s.Step(t, "a list answers 503 after MinSeqWait", func(t *testing.T) {
		start := time.Now()
		r := s.Do(http.MethodGet, quick+"/api/articles", nil, "X-Min-Event-Seq", token)
		r.RequireProblem(t, http.StatusServiceUnavailable, "")
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Fatalf("503 without a usable Retry-After: %q", r.Header.Get("Retry-After"))
		}
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Fatalf("503 after %v: the list did not wait MinSeqWait (300ms) for the view", took)
		}
	})

	s.StartProjector()
	s.Step(t, "with a projector again both see the write", func(t *testing.T) {
		for _, q := range queries {
			natstest.WaitFor(t, 20*time.Second, func() error {
				r := s.Do(http.MethodGet, q+"/api/articles", nil, "X-Min-Event-Seq", token)
				if r.Status != http.StatusOK {
					return fmt.Errorf("%s list: %d %s", q, r.Status, r.Body)
				}
				i := slices.IndexFunc(r.List(t).Items, func(got domain.Article) bool { return got.ID == a.ID })
				if i < 0 {
					return fmt.Errorf("%s list lacks %s: %s", q, a.ID, r.Body)
				}
				// Once the list answers with the token it must hold the write.
				systest.RequireSameArticle(t, r.List(t).Items[i], want)
				return nil
			})
			r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil, "X-Min-Event-Seq", token)
			r.Require(t, http.StatusOK)
			systest.RequireSameArticle(t, r.Article(t), want)
		}
		s.WaitProjected(30 * time.Second)
		s.RequireSnapshotIsFold(a.ID)
	})

	// A token that is not a stream sequence is a client error.
	for _, bad := range []string{"abc", "-1", "1.5", "0x10", "18446744073709551616"} {
		for what, path := range map[string]string{"article": "/api/articles/" + a.ID, "list": "/api/articles"} {
			s.Run(t, what+" with X-Min-Event-Seq "+bad, func(t *testing.T) {
				s.Do(http.MethodGet, quick+path, nil, "X-Min-Event-Seq", bad).RequireProblem(t, http.StatusBadRequest, "")
			})
		}
	}
}
