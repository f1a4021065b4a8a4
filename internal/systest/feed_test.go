package systest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/events"
)

const feedWait = 10 * time.Second

// feedVerb is the SSE event name of a stream event as an editor sees it.
func feedVerb(t events.Type) string { return t.Verb() }

// requireStreamEvents fails unless evs are exactly the stream's events
// after seq `after`, in order, as an editor sees them.
func requireStreamEvents(t *testing.T, s *systest.System, evs []systest.FeedEvent, after uint64) {
	t.Helper()
	var want []events.Stored
	for _, e := range s.StreamEvents() {
		if e.Seq > after {
			want = append(want, e)
		}
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events after seq %d, the stream has %d", len(evs), after, len(want))
	}
	for i, ev := range evs {
		w := want[i]
		if ev.ID != w.Seq || ev.Data.Seq != w.Seq || ev.Event != feedVerb(events.TypeOf(w.Event.Change)) ||
			ev.Data.ID != w.Event.ArticleID || ev.Data.Version != w.Event.Version {
			t.Fatalf("event %d: got id %d %s %+v, want seq %d %s of %s v%d", i, ev.ID, ev.Event, ev.Data, w.Seq, events.TypeOf(w.Event.Change), w.Event.ArticleID, w.Event.Version)
		}
		withArticle := ev.Event == "created" || ev.Event == "updated"
		if withArticle != (ev.Data.Article != nil) {
			t.Fatalf("event %d (%s) has article %v", ev.ID, ev.Event, ev.Data.Article)
		}
		if withArticle && (ev.Data.Article.ID != w.Event.ArticleID || ev.Data.Article.Version != w.Event.Version) {
			t.Fatalf("event %d: the article is %s v%d, want %s v%d", ev.ID, ev.Data.Article.ID, ev.Data.Article.Version, w.Event.ArticleID, w.Event.Version)
		}
	}
}

// writes makes n events: creates, then updates and a delete of the first.
func writes(t *testing.T, s *systest.System, n int, tag string) {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		switch {
		case i < 2 || len(ids) == 0:
			a, _ := s.Create(map[string]any{"title": fmt.Sprintf("%s %d", tag, i), "content": "c", "author_id": "ada", "status": "published", "tags": []string{tag}})
			ids = append(ids, a.ID)
		case i == n-1:
			s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+ids[0], nil).Require(t, http.StatusNoContent)
			ids = ids[1:]
		default:
			s.Write(http.MethodPatch, ids[len(ids)-1], map[string]any{"content": fmt.Sprintf("edit %d", i)}, "Content-Type", "application/merge-patch+json")
		}
	}
}

// TestFeedResumesAcrossInstancesAndRestarts reads the feed from one query
// API, disconnects, lets writes happen, and resumes with Last-Event-ID on a
// second instance, then on a restarted one: each time exactly the missed
// events come, in order, then the live ones.
func TestFeedResumesAcrossInstancesAndRestarts(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a := s.Query()
	second := s.StartQueryAPI(systest.QueryConfig(s.URL, 1))
	b := "http://" + second.Addr

	writes(t, s, 5, "first")
	f := s.OpenFeed(a, "since=0")
	got := f.Take(5, feedWait)
	requireStreamEvents(t, s, got, 0)
	f.Close()
	last := got[len(got)-1].ID

	// Missed while away: resumed on the other instance.
	writes(t, s, 6, "second")
	f = s.OpenFeed(b, "", "Last-Event-ID", strconv.FormatUint(last, 10))
	got = f.Take(6, feedWait)
	requireStreamEvents(t, s, got, last)
	// Then live: nothing twice, nothing skipped.
	writes(t, s, 3, "live")
	got = append(got, f.Take(3, feedWait)...)
	requireStreamEvents(t, s, got, last)
	f.Quiet(200 * time.Millisecond)
	f.Close()
	last = got[len(got)-1].ID

	// The second instance restarts: its open streams end, and the client
	// resumes on the new one.
	open := s.OpenFeed(b, "")
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	if !open.Ended(feedWait) {
		t.Fatal("a stream of the stopped instance is still open")
	}
	writes(t, s, 4, "third")
	third := s.StartQueryAPI(systest.QueryConfig(s.URL, 1))
	f = s.OpenFeed("http://"+third.Addr, "since=0", "Last-Event-ID", strconv.FormatUint(last, 10)) // Last-Event-ID wins
	got = f.Take(4, feedWait)
	requireStreamEvents(t, s, got, last)
	f.Quiet(200 * time.Millisecond)

	// ?since=0 replays everything, on any instance.
	all := s.OpenFeed(a, "since=0").Take(int(s.StreamMsgs()), feedWait)
	requireStreamEvents(t, s, all, 0)
}

// TestFeedShowsWhatReadsShow follows one article from draft to published
// and back, and another to deletion, with feeds of several readers: an
// anonymous reader never sees a draft's events; an article that becomes
// visible comes as created, one that stops being visible as deleted;
// filters narrow the feed the same way.
func TestFeedShowsWhatReadsShow(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	q := s.Query()
	ada := s.Token("ada", "author")
	anon := s.OpenFeed(q, "", systest.Anonymous...)
	anonTagged := s.OpenFeed(q, "tag=go", systest.Anonymous...)
	author := s.OpenFeed(q, "", systest.As(ada)...)
	editor := s.OpenFeed(q, "author_id=ada")
	replay := s.OpenFeed(q, "since=0", systest.Anonymous...) // the same, from the log

	d, _ := s.Create(map[string]any{"title": "Secret draft", "content": "c", "author_id": "ada", "tags": []string{"go"}}, systest.As(ada)...)
	s.Write(http.MethodPatch, d.ID, map[string]any{"content": "still a draft"}, "Content-Type", "application/merge-patch+json")
	s.Write(http.MethodPatch, d.ID, map[string]any{"status": "published"}, "Content-Type", "application/merge-patch+json")
	s.Write(http.MethodPatch, d.ID, map[string]any{"tags": []string{"nats"}}, "Content-Type", "application/merge-patch+json")
	s.Write(http.MethodPatch, d.ID, map[string]any{"status": "draft"}, "Content-Type", "application/merge-patch+json")
	p, _ := s.Create(map[string]any{"title": "Public", "content": "c", "author_id": "bob", "status": "published", "tags": []string{"go"}})
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+p.ID, nil).Require(t, http.StatusNoContent)

	type seen struct {
		event, id string
		version   int
		status    string
	}
	read := func(f *systest.FeedClient, n int) []seen {
		var out []seen
		for _, ev := range f.Take(n, feedWait) {
			x := seen{ev.Event, ev.Data.ID, ev.Data.Version, ""}
			if ev.Data.Article != nil {
				x.status = string(ev.Data.Article.Status)
			}
			out = append(out, x)
		}
		f.Quiet(300 * time.Millisecond)
		return out
	}
	for _, tc := range []struct {
		name string
		f    *systest.FeedClient
		want []seen
	}{
		{"anonymous", anon, []seen{{"created", d.ID, 3, "published"}, {"updated", d.ID, 4, "published"}, {"deleted", d.ID, 5, ""}, {"created", p.ID, 1, "published"}, {"deleted", p.ID, 2, ""}}},
		{"anonymous from the log", replay, []seen{{"created", d.ID, 3, "published"}, {"updated", d.ID, 4, "published"}, {"deleted", d.ID, 5, ""}, {"created", p.ID, 1, "published"}, {"deleted", p.ID, 2, ""}}},
		{"anonymous, tag go", anonTagged, []seen{{"created", d.ID, 3, "published"}, {"deleted", d.ID, 4, ""}, {"created", p.ID, 1, "published"}, {"deleted", p.ID, 2, ""}}},
		{"the author", author, []seen{{"created", d.ID, 1, "draft"}, {"updated", d.ID, 2, "draft"}, {"updated", d.ID, 3, "published"}, {"updated", d.ID, 4, "published"}, {"updated", d.ID, 5, "draft"}, {"created", p.ID, 1, "published"}, {"deleted", p.ID, 2, ""}}},
		{"an editor, author ada", editor, []seen{{"created", d.ID, 1, "draft"}, {"updated", d.ID, 2, "draft"}, {"updated", d.ID, 3, "published"}, {"updated", d.ID, 4, "published"}, {"updated", d.ID, 5, "draft"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := read(tc.f, len(tc.want))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got\n %v\nwant\n %v", got, tc.want)
			}
		})
	}
}

// TestFeedRefusals: bad parameters are 400, clients beyond
// -max-feed-clients a 503 with Retry-After; inkstream_feed_clients counts
// them; a comment line comes every -feed-heartbeat.
func TestFeedRefusals(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	cfg := systest.QueryConfig(s.URL, 1)
	cfg.Feed.MaxClients, cfg.Feed.Heartbeat = 2, 50*time.Millisecond
	q := "http://" + s.StartQueryAPI(cfg).Addr
	for _, bad := range []struct{ q, h string }{{"since=-1", ""}, {"since=x", ""}, {"author=ada", ""}, {"", "x"}} {
		var hs []string
		if bad.h != "" {
			hs = []string{"Last-Event-ID", bad.h}
		}
		f, r := s.TryFeed(q, bad.q, hs...)
		if f != nil {
			t.Fatalf("?%s Last-Event-ID %q: a stream", bad.q, bad.h)
		}
		r.RequireProblem(t, http.StatusBadRequest, "")
	}
	one := s.OpenFeed(q, "")
	if c := one.Comment(feedWait); c == "" {
		t.Fatal("no comment line")
	}
	for i := 0; i < 3; i++ { // heartbeats keep coming
		if c := one.Comment(feedWait); c != ": keep-alive" {
			t.Fatalf("comment %q, want : keep-alive", c)
		}
	}
	two := s.OpenFeed(q, "", systest.Anonymous...)
	_, r := s.TryFeed(q, "")
	r.RequireProblem(t, http.StatusServiceUnavailable, "")
	if got := s.Metric(q, "inkstream_feed_clients"); got != 2 {
		t.Fatalf("inkstream_feed_clients = %v, want 2", got)
	}
	two.Close()
	natstest.WaitFor(t, feedWait, func() error {
		if got := s.Metric(q, "inkstream_feed_clients"); got != 1 {
			return fmt.Errorf("inkstream_feed_clients = %v, want 1", got)
		}
		return nil
	})
	s.OpenFeed(q, "")
}

// TestFeedDropsASlowReader: a client that reads nothing is dropped once
// its queue is full, while another client gets every event at once.
func TestFeedDropsASlowReader(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	cfg := systest.QueryConfig(s.URL, 1)
	cfg.Feed.Queue = 4
	qa := s.StartQueryAPI(cfg)
	q := "http://" + qa.Addr

	// The slow reader: a raw connection that asks for the feed and reads nothing.
	conn, err := net.DialTimeout("tcp", qa.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/changes HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", qa.Addr, s.EditorToken())
	fast := s.OpenFeed(q, "")
	natstest.WaitFor(t, feedWait, func() error {
		if got := s.Metric(q, "inkstream_feed_clients"); got != 2 {
			return fmt.Errorf("inkstream_feed_clients = %v, want 2", got)
		}
		return nil
	})
	big := strings.Repeat("x", 100_000)
	const n = 100
	for i := 0; i < n; i++ {
		s.Create(map[string]any{"title": fmt.Sprintf("Big %d", i), "content": big, "author_id": "ada", "status": "published"})
	}
	requireStreamEvents(t, s, fast.Take(n, feedWait), 0)
	natstest.WaitFor(t, 30*time.Second, func() error {
		if got := s.Metric(q, "inkstream_feed_clients"); got != 1 {
			return fmt.Errorf("inkstream_feed_clients = %v, want 1 (the slow reader dropped)", got)
		}
		return nil
	})
	// The slow reader's stream ends (after what the buffers held).
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) { // a dropped stream may end without its last chunk
		t.Fatalf("the slow reader's stream did not end: %v after %d bytes", err, len(b))
	}
	if got := strings.Count(string(b), "\nevent: created\n"); got >= n {
		t.Fatalf("the slow reader got all %d events: it was not dropped", got)
	}
}
