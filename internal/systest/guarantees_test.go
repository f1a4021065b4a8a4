package systest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// requireChain fails unless the article's events carry versions 1..want
// in order, each with a distinct event id and an increasing stream
// sequence, and returns them and their fold.
func requireChain(tb testing.TB, s *systest.System, id string, want int) ([]events.Stored, domain.State) {
	tb.Helper()
	h := s.History(id)
	evs := h.Events
	if len(evs) != want || len(h.Skipped) > 0 {
		tb.Fatalf("%d events (skipped %v), want %d", len(evs), h.Skipped, want)
	}
	ids := make(map[string]bool)
	for i, se := range evs {
		if se.Event.Version != i+1 || i > 0 && se.Seq <= evs[i-1].Seq || ids[se.Event.ID] {
			tb.Fatalf("event %d (seq %d, id %s) has version %d: want %d, a later sequence and a new id", i, se.Seq, se.Event.ID, se.Event.Version, i+1)
		}
		ids[se.Event.ID] = true
	}
	return evs, h.Fold.State
}

// TestGuaranteeIfMatchOneWinner: 50 writers that all hold version 1 race
// with If-Match "1": exactly one wins, the others get 412, and the stream
// holds exactly the winner's event.
func TestGuaranteeIfMatchOneWinner(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, _ := s.Create(systest.Body(0))
	before := s.StreamMsgs()

	const n = 50
	rs := systest.Concurrently(t, n, func(i int) (systest.Response, error) {
		return systest.Do(s.Client, http.MethodPut, s.Cmd()+"/api/articles/"+a.ID, systest.Body(i+1), "If-Match", `"1"`)
	})
	winner := -1
	for i, r := range rs {
		switch r.Status {
		case http.StatusOK:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won", winner, i)
			}
			winner = i
		case http.StatusPreconditionFailed:
			r.RequireProblem(t, http.StatusPreconditionFailed, "")
		default:
			t.Fatalf("writer %d: status %d: %s", i, r.Status, r.Body)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	won := rs[winner].Article(t)
	if won.Version != 2 || rs[winner].ETagVersion(t) != 2 || won.Title != systest.Body(winner + 1)["title"] {
		t.Fatalf("winner %d answered %+v", winner, won)
	}
	if got := s.StreamMsgs(); got != before+1 {
		t.Fatalf("stream holds %d messages, want %d: exactly one new event", got, before+1)
	}
	_, st := requireChain(t, s, a.ID, 2)
	systest.RequireSameArticle(t, st.Article, won)
	s.WaitProjected(30 * time.Second)
	s.RequireSnapshotIsFold(a.ID)
}

// TestGuaranteeUnconditionalWritesAllLand: 200 concurrent PUTs without
// If-Match on one article are all applied, each as its own version, in one
// gap-free chain; the read model ends at the fold of the last event. With two
// command API instances the writers race across processes, so JetStream's
// expected-last-subject-sequence check is what orders them.
func TestGuaranteeUnconditionalWritesAllLand(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d command APIs", instances), func(t *testing.T) {
			_, s := systest.StartSingle(t, 1)
			cmds := []string{s.Cmd()}
			if instances == 2 {
				cmds = append(cmds, systest.Base(s.StartCommandAPI(systest.CommandConfig(s.URL, 1))))
			}
			a, _ := s.Create(systest.Body(0))

			const n = 200
			rs := systest.Concurrently(t, n, func(i int) (systest.Response, error) {
				return systest.Do(s.Client, http.MethodPut, cmds[i%len(cmds)]+"/api/articles/"+a.ID, systest.Body(i+1))
			})
			byVersion := make(map[int]int) // version → writer
			seqs := make(map[uint64]bool)
			var lastSeq uint64
			for i, r := range rs {
				r.Require(t, http.StatusOK)
				v := r.ETagVersion(t)
				got := r.Article(t)
				if got.Version != v || got.Title != systest.Body(i + 1)["title"] {
					t.Fatalf("writer %d: ETag %d, answered %+v", i, v, got)
				}
				if w, dup := byVersion[v]; dup {
					t.Fatalf("writers %d and %d both got version %d", w, i, v)
				}
				byVersion[v] = i
				if seqs[r.Seq()] || r.Seq() == 0 {
					t.Fatalf("writer %d: X-Event-Seq %q repeated or missing", i, r.Header.Get("X-Event-Seq"))
				}
				seqs[r.Seq()] = true
				lastSeq = max(lastSeq, r.Seq())
			}
			for v := 2; v <= n+1; v++ {
				if _, ok := byVersion[v]; !ok {
					t.Fatalf("no writer got version %d", v)
				}
			}

			evs, st := requireChain(t, s, a.ID, n+1)
			for _, se := range evs[1:] {
				// Each event is the write that was told it made that version,
				// at the sequence it was told.
				i := byVersion[se.Event.Version]
				ch := se.Event.Change.(domain.ArticleUpdated).Changes
				if ch.Title == nil || *ch.Title != systest.Body(i + 1)["title"] || se.Seq != rs[i].Seq() {
					t.Fatalf("version %d (seq %d): %+v, but writer %d was answered seq %d", se.Event.Version, se.Seq, ch, i, rs[i].Seq())
				}
			}
			if st.Article.Version != n+1 || st.Article.Title != systest.Body(byVersion[n+1] + 1)["title"] {
				t.Fatalf("final state %+v", st.Article)
			}
			if evs[len(evs)-1].Seq != lastSeq {
				t.Fatalf("last event at seq %d, highest answered seq %d", evs[len(evs)-1].Seq, lastSeq)
			}

			if instances == 2 {
				// The instances really raced: some appends lost JetStream's
				// expected-sequence check and were decided again.
				conflicts := 0.0
				for _, cmd := range cmds {
					conflicts += s.Metric(cmd, "inkstream_command_conflicts_total")
				}
				t.Logf("%v appends lost a cross-instance race and were decided again", conflicts)
				if conflicts == 0 {
					t.Fatal("no append conflicted: the writers did not race across instances")
				}
			}

			s.WaitProjected(30 * time.Second)
			s.RequireSnapshotIsFold(a.ID)
			r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+a.ID, nil, "X-Min-Event-Seq", strconv.FormatUint(lastSeq, 10))
			r.Require(t, http.StatusOK)
			systest.RequireSameArticle(t, r.Article(t), st.Article)
		})
	}
}

// requireSameAnswer fails unless two write answers are the same answer.
func requireSameAnswer(tb testing.TB, got, want systest.Response) {
	tb.Helper()
	if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) {
		tb.Fatalf("answer %d %s, want %d %s", got.Status, got.Body, want.Status, want.Body)
	}
	for _, h := range []string{"ETag", "Location", "X-Event-Seq"} {
		if got.Header.Get(h) != want.Header.Get(h) {
			tb.Fatalf("%s %q, want %q", h, got.Header.Get(h), want.Header.Get(h))
		}
	}
}

// TestGuaranteeIdempotencyKey: a POST, PUT or DELETE retried with one
// Idempotency-Key writes one event and answers every retry as the first;
// the same key with another body is 422.
func TestGuaranteeIdempotencyKey(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	second := systest.Base(s.StartCommandAPI(systest.CommandConfig(s.URL, 1)))
	cmds := []string{s.Cmd(), second}
	before := s.StreamMsgs()
	// send sends a request with key to each of cmds: all of them at once,
	// then one after the other, and returns the answers.
	send := func(t *testing.T, method, path string, body any, key string, at, after []string) []systest.Response {
		t.Helper()
		do := func(cmd string) (systest.Response, error) {
			return systest.Do(s.Client, method, cmd+path, body, "Idempotency-Key", key)
		}
		rs := systest.Concurrently(t, len(at), func(i int) (systest.Response, error) { return do(at[i]) })
		for _, cmd := range after {
			r, err := do(cmd)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		return rs
	}
	var a domain.Article

	s.Step(t, "POST", func(t *testing.T) {
		// Five times: three at once, then two after.
		rs := send(t, http.MethodPost, "/api/articles", systest.Body(1), "create-1", []string{s.Cmd(), second, s.Cmd()}, cmds)
		rs[0].Require(t, http.StatusCreated)
		for _, r := range rs[1:] {
			requireSameAnswer(t, r, rs[0])
		}
		a = rs[0].Article(t)
		if a.Version != 1 || rs[0].Header.Get("Location") != s.Query()+"/api/articles/"+a.ID || rs[0].Seq() == 0 {
			t.Fatalf("create answered %+v, Location %q, X-Event-Seq %q", a, rs[0].Header.Get("Location"), rs[0].Header.Get("X-Event-Seq"))
		}
		if got := s.StreamMsgs(); got != before+1 {
			t.Fatalf("stream holds %d messages after five POSTs, want %d", got, before+1)
		}
		requireChain(t, s, a.ID, 1)
		// The same key with another body: 422, nothing written.
		s.Do(http.MethodPost, s.Cmd()+"/api/articles", systest.Body(2), "Idempotency-Key", "create-1").RequireProblem(t, http.StatusUnprocessableEntity, "")
		if got := s.StreamMsgs(); got != before+1 {
			t.Fatalf("a reused key with another body wrote: %d messages", got)
		}
	})

	path := "/api/articles/" + a.ID
	s.Step(t, "PUT", func(t *testing.T) {
		// The retries answer as the first, also after another write.
		puts := send(t, http.MethodPut, path, systest.Body(3), "put-1", cmds, nil)
		puts[0].Require(t, http.StatusOK)
		requireSameAnswer(t, puts[1], puts[0])
		if puts[0].ETagVersion(t) != 2 {
			t.Fatalf("PUT answered ETag %s", puts[0].Header.Get("ETag"))
		}
		s.Write(http.MethodPut, a.ID, systest.Body(4))
		for _, r := range send(t, http.MethodPut, path, systest.Body(3), "put-1", nil, cmds) {
			requireSameAnswer(t, r, puts[0])
		}
		s.Do(http.MethodPut, s.Cmd()+path, systest.Body(5), "Idempotency-Key", "put-1").RequireProblem(t, http.StatusUnprocessableEntity, "")
		requireChain(t, s, a.ID, 3)
	})

	s.Step(t, "DELETE", func(t *testing.T) {
		// A retry answers 204 again, not 404, and writes no second tombstone.
		dels := send(t, http.MethodDelete, path, nil, "delete-1", cmds, []string{s.Cmd(), second, s.Cmd()})
		dels[0].Require(t, http.StatusNoContent)
		for _, r := range dels[1:] {
			requireSameAnswer(t, r, dels[0])
		}
		if dels[0].Seq() == 0 {
			t.Fatal("DELETE answered no X-Event-Seq")
		}
		// Without the key (or with another) the article is gone.
		s.Do(http.MethodDelete, s.Cmd()+path, nil).RequireProblem(t, http.StatusNotFound, "")
		s.Do(http.MethodDelete, s.Cmd()+path, nil, "Idempotency-Key", "delete-2").RequireProblem(t, http.StatusNotFound, "")

		evs, st := requireChain(t, s, a.ID, 4)
		tombstones := 0
		for _, se := range evs {
			if _, ok := se.Event.Change.(domain.ArticleDeleted); ok {
				tombstones++
				if se.Seq != dels[0].Seq() {
					t.Fatalf("tombstone at seq %d, DELETE answered %d", se.Seq, dels[0].Seq())
				}
			}
		}
		if tombstones != 1 || !st.Deleted {
			t.Fatalf("%d tombstones, deleted=%v", tombstones, st.Deleted)
		}
		if got := s.StreamMsgs(); got != before+4 {
			t.Fatalf("stream holds %d messages, want %d", got, before+4)
		}
		last, err := s.Store().Last(natstest.Context(t), a.ID)
		if err != nil || !strings.HasSuffix(last.Subject, ".deleted") {
			t.Fatalf("last event %+v, %v", last, err)
		}
		s.WaitProjected(30 * time.Second)
		s.RequireSnapshotIsFold(a.ID)
	})
}

// auditEvent is an event as the audit trail shows it.
type auditEvent struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`
	Type       events.Type     `json:"type"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// auditData is the data of an event as the audit trail shows it.
type auditData struct {
	Title    *string   `json:"title"`
	Slug     *string   `json:"slug"`
	Content  *string   `json:"content"`
	AuthorID *string   `json:"author_id"`
	Status   *string   `json:"status"`
	Tags     *[]string `json:"tags"`
}

// TestGuaranteeVersionsAndAuditTrail: /versions keeps the last 10 states,
// /versions/{v} serves each of them, /events is the whole history.
func TestGuaranteeVersionsAndAuditTrail(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, cr := s.Create(systest.Body(1))
	states := []domain.Article{a} // index v-1
	seqs := []uint64{cr.Seq()}    // index v-1
	for i := 2; i <= 16; i++ {
		w, r := s.Write(http.MethodPut, a.ID, systest.Body(i))
		states = append(states, w)
		seqs = append(seqs, r.Seq())
	}
	base := s.Query() + "/api/articles/" + a.ID
	trail := func(t *testing.T, want int) []auditEvent {
		t.Helper()
		r := s.Do(http.MethodGet, base+"/events", nil)
		r.Require(t, http.StatusOK)
		var trail struct {
			Items []auditEvent `json:"items"`
		}
		r.JSON(t, &trail)
		if len(trail.Items) != want {
			t.Fatalf("/events lists %d events, want %d", len(trail.Items), want)
		}
		return trail.Items
	}

	s.Run(t, "versions", func(t *testing.T) {
		r := s.Do(http.MethodGet, base+"/versions", nil)
		r.Require(t, http.StatusOK)
		list := r.List(t)
		if len(list.Items) != 10 || list.HasCursor {
			t.Fatalf("/versions lists %d versions (cursor %v), want 10", len(list.Items), list.HasCursor)
		}
		for i, got := range list.Items {
			systest.RequireSameArticle(t, got, states[16-1-i]) // 16, 15, ..., 7
		}
		for v := 7; v <= 16; v++ {
			r := s.Do(http.MethodGet, fmt.Sprintf("%s/versions/%d", base, v), nil)
			r.Require(t, http.StatusOK)
			systest.RequireSameArticle(t, r.Article(t), states[v-1])
		}
		for _, v := range []string{"6", "3", "1", "17", "99"} {
			s.Do(http.MethodGet, base+"/versions/"+v, nil).RequireProblem(t, http.StatusNotFound, "")
		}
		s.Do(http.MethodGet, base+"/versions/abc", nil).RequireProblem(t, http.StatusBadRequest, "")
	})

	s.Run(t, "events", func(t *testing.T) {
		for i, e := range trail(t, 16) {
			v := i + 1
			want := states[i]
			if e.Seq != seqs[i] || e.Version != v || e.ID == "" || !e.OccurredAt.Equal(want.UpdatedAt) {
				t.Fatalf("event %d: %+v, want seq %d version %d at %v", i, e, seqs[i], v, want.UpdatedAt)
			}
			var ch auditData
			if err := json.Unmarshal(e.Data, &ch); err != nil {
				t.Fatal(err)
			}
			if v == 1 {
				if e.Type != events.ArticleCreated || *ch.Title != want.Title || *ch.Content != want.Content || *ch.AuthorID != want.AuthorID || !slices.Equal(*ch.Tags, want.Tags) {
					t.Fatalf("created event %s %s, want %+v", e.Type, e.Data, want)
				}
				continue
			}
			// Only the changed fields: title, slug, content and tags change per
			// write; author and status never do.
			if e.Type != events.ArticleUpdated || ch.Title == nil || *ch.Title != want.Title || ch.Content == nil || *ch.Content != want.Content ||
				ch.Tags == nil || !slices.Equal(*ch.Tags, want.Tags) || ch.AuthorID != nil || ch.Status != nil {
				t.Fatalf("updated event v%d: %s %s, want the changes to %+v", v, e.Type, e.Data, want)
			}
		}
	})

	s.Run(t, "after a delete", func(t *testing.T) {
		d := s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID, nil)
		d.Require(t, http.StatusNoContent)
		last := trail(t, 17)[16]
		if last.Type != events.ArticleDeleted || last.Version != 17 || last.Seq != d.Seq() || string(last.Data) != "{}" {
			t.Fatalf("tombstone %+v, want ArticleDeleted v17 at seq %d with data {}", last, d.Seq())
		}
		s.Do(http.MethodGet, base+"/versions", nil).RequireProblem(t, http.StatusNotFound, "")
		s.Do(http.MethodGet, base+"/versions/16", nil).RequireProblem(t, http.StatusNotFound, "")
		s.Do(http.MethodGet, base, nil, "X-Min-Event-Seq", strconv.FormatUint(d.Seq(), 10)).RequireProblem(t, http.StatusNotFound, "")
		// Never-created ids have neither history nor versions.
		s.Do(http.MethodGet, s.Query()+"/api/articles/0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a/events", nil).RequireProblem(t, http.StatusNotFound, "")
	})
}

// TestGuaranteeStaleInstanceCache: a command API whose cached state of an
// article is behind (another instance wrote since) must not decide on it: a
// PUT that equals its stale state is still a change, and an If-Match with the
// current ETag is not a 412.
func TestGuaranteeStaleInstanceCache(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, b := s.Cmd(), systest.Base(s.StartCommandAPI(systest.CommandConfig(s.URL, 1)))
	art, _ := s.Create(systest.Body(1))
	put := func(cmd string, body any, headers ...string) systest.Response {
		t.Helper()
		return s.Do(http.MethodPut, cmd+"/api/articles/"+art.ID, body, headers...)
	}
	r := put(b, systest.Body(2)) // b caches v2 = body 2
	r.Require(t, http.StatusOK)
	r = put(a, systest.Body(3)) // a moves the article to v3 = body 3
	r.Require(t, http.StatusOK)
	if r.ETagVersion(t) != 3 {
		t.Fatalf("ETag %s, want 3", r.Header.Get("ETag"))
	}

	// Last write wins: body 2 again is a change from v3.
	r = put(b, systest.Body(2))
	r.Require(t, http.StatusOK)
	if got := r.Article(t); r.ETagVersion(t) != 4 || got.Version != 4 || got.Title != systest.Body(2)["title"] {
		t.Fatalf("PUT on a stale instance answered ETag %s %+v, want version 4 with body 2", r.Header.Get("ETag"), got)
	}
	// a still caches v3; the client holds ETag 4, which is current.
	r = put(a, systest.Body(5), "If-Match", `"4"`)
	r.Require(t, http.StatusOK)
	if r.ETagVersion(t) != 5 {
		t.Fatalf("ETag %s, want 5", r.Header.Get("ETag"))
	}
	// And b, now at v4, must not turn a current If-Match into 412 either.
	r = s.Do(http.MethodDelete, b+"/api/articles/"+art.ID, nil, "If-Match", `"5"`)
	r.Require(t, http.StatusNoContent)

	_, st := requireChain(t, s, art.ID, 6)
	if !st.Deleted || st.Article.Title != systest.Body(5)["title"] {
		t.Fatalf("final state %+v", st)
	}
	s.WaitProjected(30 * time.Second)
	s.RequireSnapshotIsFold(art.ID)
}
