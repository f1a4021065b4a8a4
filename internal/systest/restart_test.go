package systest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// TestRestartKeepsAcknowledgedArticles writes articles, stops every role and
// the embedded server right away (the projector may not have caught up),
// starts everything again on the same store directory and port, and finds
// every acknowledged article at its version, in KV and over HTTP.
func TestRestartKeepsAcknowledgedArticles(t *testing.T) {
	srv := natstest.RunServer(t)
	s := systest.Start(t, srv.URL(), 1, 1)

	want := map[string]domain.Article{}
	var deleted []string
	var lastSeq uint64
	for i := 0; i < 6; i++ {
		a, _ := s.Create(map[string]any{"title": fmt.Sprintf("Durable %d", i), "content": "v1", "author_id": "alice", "tags": []string{"durable"}})
		want[a.ID] = a
		for v := 2; v <= 1+i%3; v++ {
			var r systest.Response
			a, r = s.Write(http.MethodPatch, a.ID, map[string]any{"content": fmt.Sprintf("v%d", v)}, "Content-Type", systest.MergePatch)
			want[a.ID], lastSeq = a, r.Seq()
		}
		if i == 5 {
			r := s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID, nil)
			r.Require(t, http.StatusNoContent)
			delete(want, a.ID)
			deleted = append(deleted, a.ID)
			lastSeq = r.Seq()
		}
	}
	msgs := s.StreamMsgs()

	// Stop the roles, the test's connection and the server.
	for _, r := range append([]*app.Running{s.CommandAPI, s.QueryAPI}, s.Projectors...) {
		if err := r.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	s.Conn.NC.Close()
	srv.Restart(t)

	s = systest.Start(t, srv.URL(), 1, 1)
	if n := s.StreamMsgs(); n != msgs {
		t.Fatalf("after restart the stream holds %d events, want %d", n, msgs)
	}
	// At worst a message the stopping projector had taken comes back after
	// AckWait (10s).
	s.WaitProjected(40 * time.Second)

	s.Step(t, "the read model", func(t *testing.T) {
		for id, a := range want {
			snap := s.RequireSnapshotIsFold(id)
			if !systest.SameArticle(snap.Article, a) || snap.Deleted {
				t.Fatalf("kv after restart: %+v deleted=%v, want %+v", snap.Article, snap.Deleted, a)
			}
			systest.RequireSameArticle(t, s.WaitArticle(id, a.Version), a)
		}
		for _, id := range deleted {
			if snap := s.RequireSnapshotIsFold(id); !snap.Deleted {
				t.Fatalf("deleted article %s is live after restart", id)
			}
			s.WaitGone(id).RequireProblem(t, http.StatusNotFound, "")
		}
		natstest.WaitFor(t, 10*time.Second, func() error {
			if p := s.List(url.Values{"tag": {"durable"}}); len(p.Items) != len(want) {
				return fmt.Errorf("list after restart: %d articles, want %d", len(p.Items), len(want))
			}
			return nil
		})
	})

	s.Step(t, "the command API continues each article", func(t *testing.T) {
		// A stale If-Match fails, the current one makes the next version.
		for id, a := range want {
			if a.Version > 1 {
				r := s.Do(http.MethodPatch, s.Cmd()+"/api/articles/"+id, map[string]any{"content": "stale"},
					"Content-Type", systest.MergePatch, "If-Match", systest.ETag(a.Version-1))
				r.RequireProblem(t, http.StatusPreconditionFailed, "")
			}
			next, r := s.Write(http.MethodPatch, id, map[string]any{"content": "after restart"}, "Content-Type", systest.MergePatch, "If-Match", systest.ETag(a.Version))
			if next.Version != a.Version+1 || r.Seq() <= lastSeq {
				t.Fatalf("write after restart: v%d seq %d, want v%d after seq %d", next.Version, r.Seq(), a.Version+1, lastSeq)
			}
			lastSeq = r.Seq()
		}
	})
}
