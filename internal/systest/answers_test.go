package systest_test

// Answers that never lie: under a slow or stalled NATS, with poison on an
// article's subjects, with forged snapshots and with tokens that are never
// reached, every answer is right and complete, or an honest, retryable error.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// history is the answer of /events or /versions.
type history struct {
	Items []struct {
		Version int `json:"version"`
	} `json:"items"`
}

// checkHistory returns why an /events or /versions answer is not a
// complete history of an article that has reached at least version least
// (nil when it is), or why it is not an honest error.
func checkHistory(r systest.Response, path string, least int) error {
	switch r.Status {
	case http.StatusServiceUnavailable:
		if r.Header.Get("Retry-After") == "" {
			return fmt.Errorf("%s: 503 without Retry-After", path)
		}
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("%s: status %d: %.200s", path, r.Status, r.Body)
	}
	var h history
	if err := json.Unmarshal(r.Body, &h); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	n := len(h.Items)
	if strings.HasSuffix(path, "/events") {
		if n < least {
			return fmt.Errorf("%s: %d events, the article had %d before the read", path, n, least)
		}
		for i, it := range h.Items {
			if it.Version != i+1 {
				return fmt.Errorf("%s: event %d has version %d", path, i, it.Version)
			}
		}
		return nil
	}
	if n == 0 || h.Items[0].Version < least || n != min(10, h.Items[0].Version) {
		return fmt.Errorf("%s: %d versions, newest %v; the article had %d before the read", path, n, h.Items, least)
	}
	for i, it := range h.Items {
		if it.Version != h.Items[0].Version-i {
			return fmt.Errorf("%s: versions %v are not consecutive", path, h.Items)
		}
	}
	return nil
}

// TestAnswersUnderStalledNATS stalls the real nats-server (a child process
// sent SIGSTOP, then SIGCONT) while writers and readers work on articles
// with 100 events: every answer is correct and complete or a 503 with
// Retry-After; no 404 for an article that exists, no short history.
func TestAnswersUnderStalledNATS(t *testing.T) {
	procs := natstest.RunProcs(t, 1)
	s := systest.Start(t, procs.URL(), 1, 1)
	cmdCfg := systest.CommandConfig(s.URL, 1)
	cmdCfg.WriteTimeout = time.Second
	qCfg := systest.QueryConfig(s.URL, 1)
	qCfg.ReadTimeout = time.Second
	cmd, query := systest.Base(s.StartCommandAPI(cmdCfg)), systest.Base(s.StartQueryAPI(qCfg))

	const articles, versions = 4, 100
	ids := make([]string, articles)
	acked := make([]atomic.Int64, articles) // the highest version a write was told
	for i := range ids {
		a, _ := s.Create(systest.Body(0))
		ids[i] = a.ID
		for v := 2; v <= versions; v++ {
			s.Write(http.MethodPut, a.ID, systest.Body(v))
		}
		acked[i].Store(versions)
	}

	client := s.Client
	var stop atomic.Bool
	var answers, unavailable atomic.Int64
	errs := make(chan error, 100)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	var wg sync.WaitGroup
	for w := range 3 { // writers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				i := (w + n) % articles
				r, err := systest.Do(client, http.MethodPut, cmd+"/api/articles/"+ids[i], systest.Body(1000+n))
				if err != nil {
					report(err)
					return
				}
				answers.Add(1)
				switch r.Status {
				case http.StatusOK:
					var a domain.Article
					if err := json.Unmarshal(r.Body, &a); err != nil {
						report(err)
					}
					for cur := acked[i].Load(); int64(a.Version) > cur && !acked[i].CompareAndSwap(cur, int64(a.Version)); cur = acked[i].Load() {
					}
				case http.StatusServiceUnavailable:
					unavailable.Add(1)
					if r.Header.Get("Retry-After") == "" {
						report(fmt.Errorf("PUT: 503 without Retry-After"))
					}
				default:
					report(fmt.Errorf("PUT %s: status %d: %.200s", ids[i], r.Status, r.Body))
				}
			}
		}()
	}
	for rd := range 8 { // readers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				i := (rd + n) % articles
				min := int(acked[i].Load())
				path := "/api/articles/" + ids[i] + [...]string{"/events", "/versions", ""}[n%3]
				r, err := systest.Do(client, http.MethodGet, query+path, nil)
				if err != nil {
					report(err)
					return
				}
				answers.Add(1)
				if r.Status == http.StatusServiceUnavailable {
					unavailable.Add(1)
				}
				if n%3 == 2 {
					if r.Status != http.StatusOK && r.Status != http.StatusServiceUnavailable {
						report(fmt.Errorf("GET %s: status %d: %.200s", path, r.Status, r.Body))
					}
					continue
				}
				if err := checkHistory(r, path, min); err != nil {
					report(err)
				}
			}
		}()
	}
	wait := func(d time.Duration, what string) {
		before := answers.Load()
		natstest.WaitFor(t, d+30*time.Second, func() error {
			if answers.Load() < before+20 {
				return fmt.Errorf("%s: %d answers so far", what, answers.Load()-before)
			}
			return nil
		})
	}
	wait(0, "before the stall")
	procs.Stall(t, 0)
	stalled := time.Now()
	natstest.WaitFor(t, 30*time.Second, func() error {
		if time.Since(stalled) < 3*time.Second || unavailable.Load() == 0 {
			return fmt.Errorf("stalled for %v, %d answers 503", time.Since(stalled), unavailable.Load())
		}
		return nil
	})
	procs.Resume(t, 0)
	wait(0, "after the stall")
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d answers, %d of them 503", answers.Load(), unavailable.Load())
	for i, id := range ids {
		r := s.Do(http.MethodGet, query+"/api/articles/"+id+"/events", nil)
		if err := checkHistory(r, "/events", int(acked[i].Load())); err != nil || r.Status != http.StatusOK {
			t.Errorf("after the stall: %v (status %d)", err, r.Status)
		}
	}
}

// TestAnswersLongHistoriesAreComplete reads /events and /versions of an
// article with 100 versions of 100 000 characters, 8 readers at once.
func TestAnswersLongHistoriesAreComplete(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	// A read time-out of its own: the point is completeness, on a machine
	// that may be busy, not speed.
	qCfg := systest.QueryConfig(s.URL, 1)
	qCfg.ReadTimeout = time.Minute
	query := "http://" + s.StartQueryAPI(qCfg).Addr
	long := strings.Repeat("long history ", 100_000/13)
	a, _ := s.Create(map[string]any{"title": "Long", "content": "1 " + long, "author_id": "a"})
	for v := 2; v <= 100; v++ {
		s.Write(http.MethodPut, a.ID, map[string]any{"title": "Long", "content": strconv.Itoa(v) + " " + long, "author_id": "a"})
	}
	client := systest.NewClient()
	client.Timeout = 2 * time.Minute
	t.Cleanup(client.CloseIdleConnections)
	// 8 readers at once, twice: half of them /events first, half /versions.
	for round := range 2 {
		paths := []string{"/events", "/versions"}
		rs := systest.Concurrently(t, 8, func(i int) (systest.Response, error) {
			return systest.Do(client, http.MethodGet, query+"/api/articles/"+a.ID+paths[(i+round)%2], nil)
		})
		for i, r := range rs {
			if r.Status != http.StatusOK {
				t.Errorf("%s: status %d", paths[(i+round)%2], r.Status)
			} else if err := checkHistory(r, paths[(i+round)%2], 100); err != nil {
				t.Error(err)
			}
		}
	}
}

// publish puts raw bytes on a subject of the stream.
func publish(tb testing.TB, s *systest.System, subject string, data []byte) uint64 {
	tb.Helper()
	ack, err := s.Conn.JS.Publish(natstest.Context(tb), subject, data)
	if err != nil {
		tb.Fatal(err)
	}
	return ack.Sequence
}

// TestAnswersSkipPoison publishes what is not a valid next event of an
// article on its subjects (malformed bytes, an envelope of the wrong
// version, another article's envelope): reads and writes of the article
// still succeed, the projector moves on, and verify is consistent and
// lists each skipped message.
func TestAnswersSkipPoison(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, _ := s.Create(systest.Body(1))
	other, _ := s.Create(systest.Body(2))
	s.Write(http.MethodPut, a.ID, systest.Body(3))

	subject := "articles." + a.ID + ".updated"
	far, err := events.Encode(domain.Event{ID: "forged-1", ArticleID: a.ID, Version: 99, At: time.Now(), Change: domain.ArticleUpdated{}})
	if err != nil {
		t.Fatal(err)
	}
	title := "not mine"
	foreign, err := events.Encode(domain.Event{ID: "forged-2", ArticleID: other.ID, Version: 2, At: time.Now(), Change: domain.ArticleUpdated{Changes: domain.Changes{Title: &title}}})
	if err != nil {
		t.Fatal(err)
	}
	poison := []uint64{publish(t, s, subject, []byte("not json")), publish(t, s, subject, far), publish(t, s, subject, foreign)}

	// Writes and reads of the article go on.
	b, _ := s.Write(http.MethodPut, a.ID, systest.Body(4))
	if b.Version != 3 || b.Title != systest.Body(4)["title"] {
		t.Fatalf("write after the poison: %+v", b)
	}
	s.WaitArticle(a.ID, 3)
	for _, path := range []string{"/events", "/versions"} {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+a.ID+path, nil)
		r.Require(t, http.StatusOK)
		if err := checkHistory(r, path, 3); err != nil {
			t.Fatal(err)
		}
	}
	s.WaitArticle(other.ID, 1) // the other article is untouched
	// The projector moved on and counted each skipped message once.
	s.WaitProjected(30 * time.Second)
	s.RequireSnapshotIsFold(a.ID)
	if n := s.Metric(systest.Base(s.Projectors[0]), "inkstream_skipped_messages_total"); n != 3 {
		t.Fatalf("projector counted %v skipped messages, want 3", n)
	}
	out, err := s.VerifyCLI()
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, seq := range poison {
		if !strings.Contains(out, fmt.Sprintf("skipped seq %d on %s", seq, subject)) {
			t.Errorf("verify does not list skipped seq %d:\n%s", seq, out)
		}
	}
}

// TestAnswersVerifyChecksEverySnapshot forges snapshots: one that claims a
// version the article never had, one that claims a sequence past the end of
// the stream, one of an article with no events. Verify names each.
func TestAnswersVerifyChecksEverySnapshot(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, _ := s.Create(systest.Body(1))
	b, _ := s.Create(systest.Body(2))
	s.WaitProjected(30 * time.Second)
	if out, err := s.VerifyCLI(); err != nil {
		t.Fatalf("verify before forging: %v\n%s", err, out)
	}
	forge := func(id string, version int, seq uint64) {
		art := a
		art.ID, art.Version = id, version
		s.PutSnapshot(readmodel.Snapshot{Article: art, Seq: seq})
	}
	last := s.StreamMsgs()
	ghost := "0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a"
	forge(a.ID, 99, 1)       // a version it never had
	forge(b.ID, 2, last+500) // a sequence past the end
	forge(ghost, 1, last+600)
	out, err := s.VerifyCLI()
	if err == nil {
		t.Fatalf("verify passed forged snapshots:\n%s", out)
	}
	for _, id := range []string{a.ID, b.ID, ghost} {
		if !strings.Contains(out, "verify: "+id+": ") {
			t.Errorf("verify does not name %s:\n%s", id, out)
		}
	}
}

// apiRequests counts the JetStream API requests made while f runs.
func apiRequests(tb testing.TB, url string, f func()) int64 {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	var n atomic.Int64
	sub, err := nc.Subscribe("$JS.API.>", func(*nats.Msg) { n.Add(1) })
	if err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	f()
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	_ = sub.Unsubscribe()
	return n.Load()
}

// TestAnswersTokenWaitIsShared sends list requests with a token the read
// model never reaches (the projectors are stopped): each waits its 2 s and
// answers 503, and the JetStream API requests the query API makes meanwhile
// do not grow with the number of waiting requests. A token past the end of
// the stream is answered 400 at once.
func TestAnswersTokenWaitIsShared(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	s.Create(systest.Body(1))
	s.WaitProjected(30 * time.Second)
	if err := s.Projectors[0].Stop(); err != nil {
		t.Fatal(err)
	}
	_, r := s.Create(systest.Body(2))
	token := strconv.FormatUint(r.Seq(), 10)

	list := func(n int) func() {
		return func() {
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := systest.Do(s.Client, http.MethodGet, s.Query()+"/api/articles", nil, "X-Min-Event-Seq", token)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
						t.Errorf("list with an unreached token: %d %s", res.Status, res.Body)
					}
				}()
			}
			wg.Wait()
		}
	}
	one := apiRequests(t, s.URL, list(1))
	many := apiRequests(t, s.URL, list(32))
	t.Logf("JetStream API requests: %d for 1 waiting list, %d for 32", one, many)
	if many > 2*one+20 {
		t.Fatalf("32 waiting lists made %d JetStream API requests, 1 made %d: the cost grows with the requests", many, one)
	}

	start := time.Now()
	past := strconv.FormatUint(r.Seq()+1000, 10)
	for _, path := range []string{"/api/articles", "/api/articles/" + strings.Repeat("0", 8) + "-0000-7000-8000-000000000000"} {
		res := s.Do(http.MethodGet, s.Query()+path, nil, "X-Min-Event-Seq", past)
		res.RequireProblem(t, http.StatusBadRequest, "")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a token past the end took %v to refuse", d)
	}
}
