package systest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// gtClient is the HTTP client of the concurrent requests: enough idle
// connections that hundreds of goroutines do not churn through sockets.
var gtClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// gtStart starts a system with n projectors. Before the roles stop, it
// closes the client's idle keep-alive connections: the HTTP servers' graceful
// shutdown waits for connections that never carried a request (Go's
// transport dials spare ones under concurrency) until its 10 s timeout.
func gtStart(tb testing.TB, projectors int) *systest.System {
	tb.Helper()
	_, s := systest.StartSingle(tb, projectors)
	tb.Cleanup(func() {
		gtClient.CloseIdleConnections()
		s.Client.CloseIdleConnections()
	})
	return s
}

// gtBody is the body of the i-th write of a test: every field distinct per i.
func gtBody(i int) map[string]any {
	return map[string]any{
		"title":     fmt.Sprintf("Title %04d", i),
		"content":   fmt.Sprintf("content of write %d", i),
		"author_id": "author-1",
		"tags":      []string{"go", fmt.Sprintf("t%d", i)},
	}
}

// gtRequireStatus fails unless r has status want.
func gtRequireStatus(tb testing.TB, r systest.Response, want int) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
}

// gtRequireProblem fails unless r is a problem with status want.
func gtRequireProblem(tb testing.TB, r systest.Response, want int) {
	tb.Helper()
	gtRequireStatus(tb, r, want)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, httpx.ContentTypeProblem) {
		tb.Fatalf("content type %q, want %s: %s", ct, httpx.ContentTypeProblem, r.Body)
	}
	var p httpx.Problem
	r.JSON(tb, &p)
	if p.Status != want || p.Type == "" || p.Title == "" {
		tb.Fatalf("problem %+v, want status %d with type and title", p, want)
	}
}

// gtArticle decodes the article of a write or read answer.
func gtArticle(tb testing.TB, r systest.Response) domain.Article {
	tb.Helper()
	var a domain.Article
	r.JSON(tb, &a)
	return a
}

// gtETag returns the version an ETag names.
func gtETag(tb testing.TB, r systest.Response) int {
	tb.Helper()
	v, err := strconv.Atoi(strings.Trim(r.Header.Get("ETag"), `"`))
	if err != nil {
		tb.Fatalf("ETag %q: %v", r.Header.Get("ETag"), err)
	}
	return v
}

// gtJSON is the canonical JSON of v, to compare articles whatever their
// time zones or where they were decoded from.
func gtJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var a domain.Article
	if err := json.Unmarshal(b, &a); err == nil && a.ID != "" {
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		b, _ = json.Marshal(a)
	}
	return string(b)
}

// gtRequireSameArticle fails unless got and want are the same article.
func gtRequireSameArticle(tb testing.TB, got, want domain.Article) {
	tb.Helper()
	if g, w := gtJSON(tb, got), gtJSON(tb, want); g != w {
		tb.Fatalf("article\n got %s\nwant %s", g, w)
	}
}

// gtCreate creates an article through the command API.
func gtCreate(tb testing.TB, s *systest.System, body any) (domain.Article, systest.Response) {
	tb.Helper()
	r := s.Do(http.MethodPost, s.Cmd()+"/api/articles", body)
	gtRequireStatus(tb, r, http.StatusCreated)
	return gtArticle(tb, r), r
}

// gtEvents loads every event of an article from the stream; a message that
// is not one fails the test.
func gtEvents(tb testing.TB, s *systest.System, id string) []events.Stored {
	tb.Helper()
	h := s.History(id)
	if len(h.Skipped) > 0 {
		tb.Fatalf("history of %s skipped %v", id, h.Skipped)
	}
	return h.Events
}

// gtData is the data of an event as the audit trail shows it.
type gtData struct {
	Title    *string   `json:"title"`
	Slug     *string   `json:"slug"`
	Content  *string   `json:"content"`
	AuthorID *string   `json:"author_id"`
	Status   *string   `json:"status"`
	Tags     *[]string `json:"tags"`
}

// gtRequireChain fails unless evs carry versions 1..want in order, each with
// a distinct event id and an increasing stream sequence, and returns their fold.
func gtRequireChain(tb testing.TB, evs []events.Stored, want int) domain.State {
	tb.Helper()
	if len(evs) != want {
		tb.Fatalf("%d events, want %d", len(evs), want)
	}
	ids := make(map[string]bool)
	for i, se := range evs {
		if se.Event.Version != i+1 {
			tb.Fatalf("event %d (seq %d) has version %d, want %d", i, se.Seq, se.Event.Version, i+1)
		}
		if i > 0 && se.Seq <= evs[i-1].Seq {
			tb.Fatalf("event %d: seq %d after %d", i, se.Seq, evs[i-1].Seq)
		}
		if ids[se.Event.ID] {
			tb.Fatalf("event id %s twice", se.Event.ID)
		}
		ids[se.Event.ID] = true
	}
	st, err := domain.Fold(gtChanges(evs))
	if err != nil {
		tb.Fatalf("fold: %v", err)
	}
	return st
}

// gtRequireSnapshot waits until the projector has caught up and fails
// unless the KV snapshot of the article is the fold of its events.
func gtRequireSnapshot(tb testing.TB, s *systest.System, id string) {
	tb.Helper()
	s.WaitProjected(30 * time.Second)
	h := s.History(id)
	st, seq := h.Fold.State, h.Fold.Seq
	kve, err := s.Res.KV.Get(natstest.Context(tb), id)
	if err != nil {
		tb.Fatalf("kv get %s: %v", id, err)
	}
	snap, _, err := readmodel.Decode(kve.Value())
	if err != nil {
		tb.Fatal(err)
	}
	if snap.Seq != seq || snap.Deleted != st.Deleted {
		tb.Fatalf("snapshot at seq %d deleted=%v, want seq %d deleted=%v", snap.Seq, snap.Deleted, seq, st.Deleted)
	}
	gtRequireSameArticle(tb, snap.Article, st.Article)
}

// gtConcurrently runs n requests at once (released together) and returns
// their answers in order of i.
func gtConcurrently(tb testing.TB, n int, req func(i int) (systest.Response, error)) []systest.Response {
	tb.Helper()
	out := make([]systest.Response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = req(i)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// TestGuaranteeIfMatchOneWinner: 50 writers that all hold version 1 race
// with If-Match "1": exactly one wins, the others get 412, and the stream
// holds exactly the winner's event.
func TestGuaranteeIfMatchOneWinner(t *testing.T) {
	s := gtStart(t, 1)
	a, _ := gtCreate(t, s, gtBody(0))
	before := s.StreamMsgs()

	const n = 50
	rs := gtConcurrently(t, n, func(i int) (systest.Response, error) {
		return systest.Do(gtClient, http.MethodPut, s.Cmd()+"/api/articles/"+a.ID, gtBody(i+1), "If-Match", `"1"`)
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
			gtRequireProblem(t, r, http.StatusPreconditionFailed)
		default:
			t.Fatalf("writer %d: status %d: %s", i, r.Status, r.Body)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	won := gtArticle(t, rs[winner])
	if won.Version != 2 || gtETag(t, rs[winner]) != 2 || won.Title != gtBody(winner + 1)["title"] {
		t.Fatalf("winner %d answered %+v", winner, won)
	}
	if got := s.StreamMsgs(); got != before+1 {
		t.Fatalf("stream holds %d messages, want %d: exactly one new event", got, before+1)
	}
	st := gtRequireChain(t, gtEvents(t, s, a.ID), 2)
	gtRequireSameArticle(t, st.Article, won)
	gtRequireSnapshot(t, s, a.ID)
}

// TestGuaranteeUnconditionalWritesAllLand: 200 concurrent PUTs without
// If-Match on one article are all applied, each as its own version, in one
// gap-free chain; the read model ends at the fold of the last event. With two
// command API instances the writers race across processes, so JetStream's
// expected-last-subject-sequence check is what orders them.
func TestGuaranteeUnconditionalWritesAllLand(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d command APIs", instances), func(t *testing.T) {
			s := gtStart(t, 1)
			cmds := []string{s.Cmd()}
			if instances == 2 {
				second := s.StartCommandAPI(systest.CommandConfig(s.URL, 1))
				cmds = append(cmds, "http://"+second.Addr)
			}
			a, _ := gtCreate(t, s, gtBody(0))

			const n = 200
			rs := gtConcurrently(t, n, func(i int) (systest.Response, error) {
				return systest.Do(gtClient, http.MethodPut, cmds[i%len(cmds)]+"/api/articles/"+a.ID, gtBody(i+1))
			})
			byVersion := make(map[int]int) // version → writer
			seqs := make(map[uint64]bool)
			var lastSeq uint64
			for i, r := range rs {
				gtRequireStatus(t, r, http.StatusOK)
				v := gtETag(t, r)
				got := gtArticle(t, r)
				if got.Version != v || got.Title != gtBody(i + 1)["title"] {
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

			evs := gtEvents(t, s, a.ID)
			st := gtRequireChain(t, evs, n+1)
			for _, se := range evs[1:] {
				// Each event is the write that was told it made that version,
				// at the sequence it was told.
				i := byVersion[se.Event.Version]
				ch := se.Event.Change.(domain.ArticleUpdated).Changes
				if ch.Title == nil || *ch.Title != gtBody(i + 1)["title"] || se.Seq != rs[i].Seq() {
					t.Fatalf("version %d (seq %d): %+v, but writer %d was answered seq %d", se.Event.Version, se.Seq, ch, i, rs[i].Seq())
				}
			}
			if st.Article.Version != n+1 || st.Article.Title != gtBody(byVersion[n+1] + 1)["title"] {
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
					conflicts += gtMetric(t, s, cmd, "inkstream_command_conflicts_total")
				}
				t.Logf("%v appends lost a cross-instance race and were decided again", conflicts)
				if conflicts == 0 {
					t.Fatal("no append conflicted: the writers did not race across instances")
				}
			}

			gtRequireSnapshot(t, s, a.ID)
			r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+a.ID, nil, "X-Min-Event-Seq", strconv.FormatUint(lastSeq, 10))
			gtRequireStatus(t, r, http.StatusOK)
			gtRequireSameArticle(t, gtArticle(t, r), st.Article)
		})
	}
}

// gtMetric reads one unlabelled metric from a role's /metrics.
func gtMetric(tb testing.TB, s *systest.System, base, name string) float64 {
	tb.Helper()
	r := s.Do(http.MethodGet, base+"/metrics", nil)
	gtRequireStatus(tb, r, http.StatusOK)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				tb.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	tb.Fatalf("no metric %s at %s/metrics", name, base)
	return 0
}

// gtSameResponse fails unless two write answers are the same answer.
func gtSameResponse(tb testing.TB, got, want systest.Response) {
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
	s := gtStart(t, 1)
	second := "http://" + s.StartCommandAPI(systest.CommandConfig(s.URL, 1)).Addr
	ctx := natstest.Context(t)
	before := s.StreamMsgs()

	// POST five times: three at once, then two after.
	post := func(cmd string) (systest.Response, error) {
		return systest.Do(gtClient, http.MethodPost, cmd+"/api/articles", gtBody(1), "Idempotency-Key", "create-1")
	}
	rs := gtConcurrently(t, 3, func(i int) (systest.Response, error) { return post([]string{s.Cmd(), second}[i%2]) })
	for _, cmd := range []string{s.Cmd(), second} {
		r, err := post(cmd)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	gtRequireStatus(t, rs[0], http.StatusCreated)
	for _, r := range rs[1:] {
		gtSameResponse(t, r, rs[0])
	}
	a := gtArticle(t, rs[0])
	if a.Version != 1 || rs[0].Header.Get("Location") != s.Query()+"/api/articles/"+a.ID || rs[0].Seq() == 0 {
		t.Fatalf("create answered %+v, Location %q, X-Event-Seq %q", a, rs[0].Header.Get("Location"), rs[0].Header.Get("X-Event-Seq"))
	}
	if got := s.StreamMsgs(); got != before+1 {
		t.Fatalf("stream holds %d messages after five POSTs, want %d", got, before+1)
	}
	gtRequireChain(t, gtEvents(t, s, a.ID), 1)

	// The same key with another body: 422, nothing written.
	r := s.Do(http.MethodPost, s.Cmd()+"/api/articles", gtBody(2), "Idempotency-Key", "create-1")
	gtRequireProblem(t, r, http.StatusUnprocessableEntity)
	if got := s.StreamMsgs(); got != before+1 {
		t.Fatalf("a reused key with another body wrote: %d messages", got)
	}

	// PUT: the retries answer as the first, also after another write.
	url := s.Cmd() + "/api/articles/" + a.ID
	put := func(cmd string) (systest.Response, error) {
		return systest.Do(gtClient, http.MethodPut, cmd+"/api/articles/"+a.ID, gtBody(3), "Idempotency-Key", "put-1")
	}
	puts := gtConcurrently(t, 2, func(i int) (systest.Response, error) { return put([]string{s.Cmd(), second}[i]) })
	gtRequireStatus(t, puts[0], http.StatusOK)
	gtSameResponse(t, puts[1], puts[0])
	if gtETag(t, puts[0]) != 2 {
		t.Fatalf("PUT answered ETag %s", puts[0].Header.Get("ETag"))
	}
	other := s.Do(http.MethodPut, url, gtBody(4))
	gtRequireStatus(t, other, http.StatusOK)
	for _, cmd := range []string{s.Cmd(), second} {
		r, err := put(cmd)
		if err != nil {
			t.Fatal(err)
		}
		gtSameResponse(t, r, puts[0])
	}
	r = s.Do(http.MethodPut, url, gtBody(5), "Idempotency-Key", "put-1")
	gtRequireProblem(t, r, http.StatusUnprocessableEntity)
	gtRequireChain(t, gtEvents(t, s, a.ID), 3)

	// DELETE: a retry answers 204 again, not 404, and writes no second tombstone.
	del := func(cmd string) (systest.Response, error) {
		return systest.Do(gtClient, http.MethodDelete, cmd+"/api/articles/"+a.ID, nil, "Idempotency-Key", "delete-1")
	}
	dels := gtConcurrently(t, 2, func(i int) (systest.Response, error) { return del([]string{s.Cmd(), second}[i]) })
	for _, cmd := range []string{s.Cmd(), second, s.Cmd()} {
		r, err := del(cmd)
		if err != nil {
			t.Fatal(err)
		}
		dels = append(dels, r)
	}
	gtRequireStatus(t, dels[0], http.StatusNoContent)
	for _, r := range dels[1:] {
		gtSameResponse(t, r, dels[0])
	}
	if dels[0].Seq() == 0 {
		t.Fatal("DELETE answered no X-Event-Seq")
	}
	// Without the key (or with another) the article is gone.
	gtRequireProblem(t, s.Do(http.MethodDelete, url, nil), http.StatusNotFound)
	gtRequireProblem(t, s.Do(http.MethodDelete, url, nil, "Idempotency-Key", "delete-2"), http.StatusNotFound)

	evs := gtEvents(t, s, a.ID)
	st := gtRequireChain(t, evs, 4)
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
	last, err := s.Store().Last(ctx, a.ID)
	if err != nil || !strings.HasSuffix(last.Subject, ".deleted") {
		t.Fatalf("last event %+v, %v", last, err)
	}
	gtRequireSnapshot(t, s, a.ID)
}

// TestGuaranteeVersionsAndAuditTrail: /versions keeps the last 10 states,
// /versions/{v} serves each of them, /events is the whole history.
func TestGuaranteeVersionsAndAuditTrail(t *testing.T) {
	s := gtStart(t, 1)
	a, cr := gtCreate(t, s, gtBody(1))
	states := []domain.Article{a} // index v-1
	seqs := []uint64{cr.Seq()}    // index v-1
	for i := 2; i <= 16; i++ {
		r := s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+a.ID, gtBody(i))
		gtRequireStatus(t, r, http.StatusOK)
		states = append(states, gtArticle(t, r))
		seqs = append(seqs, r.Seq())
	}
	base := s.Query() + "/api/articles/" + a.ID

	var list struct {
		Items []domain.Article `json:"items"`
	}
	r := s.Do(http.MethodGet, base+"/versions", nil)
	gtRequireStatus(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 10 {
		t.Fatalf("/versions lists %d versions, want 10", len(list.Items))
	}
	for i, got := range list.Items {
		gtRequireSameArticle(t, got, states[16-1-i]) // 16, 15, ..., 7
	}
	for v := 7; v <= 16; v++ {
		r := s.Do(http.MethodGet, fmt.Sprintf("%s/versions/%d", base, v), nil)
		gtRequireStatus(t, r, http.StatusOK)
		gtRequireSameArticle(t, gtArticle(t, r), states[v-1])
	}
	for _, v := range []string{"6", "3", "1", "17", "99"} {
		gtRequireProblem(t, s.Do(http.MethodGet, base+"/versions/"+v, nil), http.StatusNotFound)
	}
	gtRequireProblem(t, s.Do(http.MethodGet, base+"/versions/abc", nil), http.StatusBadRequest)

	type auditEvent struct {
		Seq        uint64          `json:"seq"`
		ID         string          `json:"id"`
		Type       events.Type     `json:"type"`
		Version    int             `json:"version"`
		OccurredAt time.Time       `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	}
	var trail struct {
		Items []auditEvent `json:"items"`
	}
	readTrail := func(want int) {
		t.Helper()
		r := s.Do(http.MethodGet, base+"/events", nil)
		gtRequireStatus(t, r, http.StatusOK)
		trail.Items = nil
		r.JSON(t, &trail)
		if len(trail.Items) != want {
			t.Fatalf("/events lists %d events, want %d", len(trail.Items), want)
		}
	}
	readTrail(16)
	for i, e := range trail.Items {
		v := i + 1
		want := states[i]
		if e.Seq != seqs[i] || e.Version != v || e.ID == "" || !e.OccurredAt.Equal(want.UpdatedAt) {
			t.Fatalf("event %d: %+v, want seq %d version %d at %v", i, e, seqs[i], v, want.UpdatedAt)
		}
		var ch gtData
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

	d := s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID, nil)
	gtRequireStatus(t, d, http.StatusNoContent)
	readTrail(17)
	last := trail.Items[16]
	if last.Type != events.ArticleDeleted || last.Version != 17 || last.Seq != d.Seq() || string(last.Data) != "{}" {
		t.Fatalf("tombstone %+v, want ArticleDeleted v17 at seq %d with data {}", last, d.Seq())
	}
	gtRequireProblem(t, s.Do(http.MethodGet, base+"/versions", nil), http.StatusNotFound)
	gtRequireProblem(t, s.Do(http.MethodGet, base+"/versions/16", nil), http.StatusNotFound)
	gtRequireProblem(t, s.Do(http.MethodGet, base, nil, "X-Min-Event-Seq", strconv.FormatUint(d.Seq(), 10)), http.StatusNotFound)
	// Never-created ids have neither history nor versions.
	gtRequireProblem(t, s.Do(http.MethodGet, s.Query()+"/api/articles/0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a/events", nil), http.StatusNotFound)
}

// TestGuaranteeStaleInstanceCache: a command API whose cached state of an
// article is behind (another instance wrote since) must not decide on it: a
// PUT that equals its stale state is still a change, and an If-Match with the
// current ETag is not a 412.
func TestGuaranteeStaleInstanceCache(t *testing.T) {
	s := gtStart(t, 1)
	a, b := s.Cmd(), "http://"+s.StartCommandAPI(systest.CommandConfig(s.URL, 1)).Addr
	art, _ := gtCreate(t, s, gtBody(1))
	put := func(cmd string, body any, headers ...string) systest.Response {
		t.Helper()
		return s.Do(http.MethodPut, cmd+"/api/articles/"+art.ID, body, headers...)
	}
	r := put(b, gtBody(2)) // b caches v2 = body 2
	gtRequireStatus(t, r, http.StatusOK)
	r = put(a, gtBody(3)) // a moves the article to v3 = body 3
	gtRequireStatus(t, r, http.StatusOK)
	if gtETag(t, r) != 3 {
		t.Fatalf("ETag %s, want 3", r.Header.Get("ETag"))
	}

	// Last write wins: body 2 again is a change from v3.
	r = put(b, gtBody(2))
	gtRequireStatus(t, r, http.StatusOK)
	if got := gtArticle(t, r); gtETag(t, r) != 4 || got.Version != 4 || got.Title != gtBody(2)["title"] {
		t.Fatalf("PUT on a stale instance answered ETag %s %+v, want version 4 with body 2", r.Header.Get("ETag"), got)
	}
	// a still caches v3; the client holds ETag 4, which is current.
	r = put(a, gtBody(5), "If-Match", `"4"`)
	gtRequireStatus(t, r, http.StatusOK)
	if gtETag(t, r) != 5 {
		t.Fatalf("ETag %s, want 5", r.Header.Get("ETag"))
	}
	// And b, now at v4, must not turn a current If-Match into 412 either.
	r = s.Do(http.MethodDelete, b+"/api/articles/"+art.ID, nil, "If-Match", `"5"`)
	gtRequireStatus(t, r, http.StatusNoContent)

	st := gtRequireChain(t, gtEvents(t, s, art.ID), 6)
	if !st.Deleted || st.Article.Title != gtBody(5)["title"] {
		t.Fatalf("final state %+v", st)
	}
	gtRequireSnapshot(t, s, art.ID)
}

// gtChanges are the events of a history.
func gtChanges(evs []events.Stored) []domain.Event {
	out := make([]domain.Event, len(evs))
	for i, se := range evs {
		out[i] = se.Event
	}
	return out
}
