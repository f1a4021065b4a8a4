package systest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// startQueryFrom starts a query API whose view comes from source
// (config.ViewFromBucket or config.ViewFromStream) and returns its base URL.
func startQueryFrom(s *systest.System, source string, change ...func(*config.QueryAPI)) string {
	s.TB.Helper()
	cfg := systest.QueryConfig(s.URL, s.Replicas)
	cfg.ViewSource = source
	for _, f := range change {
		f(&cfg)
	}
	return systest.Base(s.StartQueryAPI(cfg))
}

// seqHeader is the X-Min-Event-Seq header pair of a write's answer.
func seqHeader(r systest.Response) []string {
	return []string{"X-Min-Event-Seq", strconv.FormatUint(r.Seq(), 10)}
}

// TestViewSourcesAgree writes an article's whole life (a draft, a review,
// publication, unpublication, deletion, erasure) and, after every write,
// reads every article and the list as four readers (anonymous, the two
// authors, an editor) with the write's X-Min-Event-Seq from three query
// APIs: one whose view follows the bucket and two that fold the stream.
// They answer alike, each read holds the write, and a draft never shows
// to whom may not see it. A live-feed client of a stream-folding instance
// reads each event's article there at that version or later: the view
// takes an event before the feed hands it out.
func TestViewSourcesAgree(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	bases := []string{
		startQueryFrom(s, config.ViewFromBucket),
		startQueryFrom(s, config.ViewFromStream),
		startQueryFrom(s, config.ViewFromStream),
	}
	readers := map[string][]string{
		"anonymous": systest.Anonymous,
		"ada":       systest.As(s.Token("ada", "author")),
		"bob":       systest.As(s.Token("bob", "author")),
		"eve":       systest.As(s.Token("eve", "editor")),
	}
	ada, admin := readers["ada"], systest.As(s.Token("root", "admin"))
	feed := s.OpenFeed(bases[1], "", readers["eve"]...)

	var ids []string
	wrote := 0
	check := func(t *testing.T, what string, w systest.Response, want map[string]int) {
		t.Helper()
		wrote++
		token := seqHeader(w)
		for who, as := range readers {
			for _, id := range ids {
				var first systest.Response
				for i, base := range bases {
					r := s.Do(http.MethodGet, base+"/api/articles/"+id, nil, append(slices.Clone(as), token...)...)
					if r.Status == http.StatusOK && r.ETagVersion(t) < want[id] {
						t.Fatalf("after %s: %s read %s at version %d from %s, before the write of version %d", what, who, id, r.ETagVersion(t), base, want[id])
					}
					if i == 0 {
						first = r
						continue
					}
					if r.Status != first.Status || r.Header.Get("ETag") != first.Header.Get("ETag") ||
						r.Status == http.StatusOK && !systest.SameArticle(r.Article(t), first.Article(t)) {
						t.Fatalf("after %s: %s reads %s\n  from %s: %d %s %s\n  from %s: %d %s %s", what, who, id,
							bases[0], first.Status, first.Header.Get("ETag"), first.Body, base, r.Status, r.Header.Get("ETag"), r.Body)
					}
				}
			}
			var first []domain.Article
			for i, base := range bases {
				r := s.Do(http.MethodGet, base+"/api/articles?limit=100&sort=title", nil, append(slices.Clone(as), token...)...)
				r.Require(t, http.StatusOK)
				items := r.List(t).Items
				if i == 0 {
					first = items
					continue
				}
				if fmt.Sprint(systest.IDs(items)) != fmt.Sprint(systest.IDs(first)) {
					t.Fatalf("after %s: %s lists %v from %s, %v from %s", what, who, systest.IDs(first), bases[0], systest.IDs(items), base)
				}
				for k := range items {
					systest.RequireSameArticle(t, items[k], first[k])
				}
			}
			if who == "anonymous" {
				for _, a := range first {
					if a.Status != domain.StatusPublished {
						t.Fatalf("after %s: an anonymous list holds %s, %s", what, a.ID, a.Status)
					}
				}
			}
		}
	}

	want := map[string]int{}
	a, w := s.Create(map[string]any{"title": "Agree A", "content": "draft", "author_id": "ada", "tags": []string{"agree"}}, ada...)
	ids, want[a.ID] = append(ids, a.ID), 1
	check(t, "a draft", w, want)
	b, w := s.Create(map[string]any{"title": "Agree B", "content": "draft", "author_id": "ada"}, ada...)
	ids, want[b.ID] = append(ids, b.ID), 1
	check(t, "a second draft", w, want)
	for _, step := range []struct {
		what, id string
		body     map[string]any
		as       []string
	}{
		{"a publication", a.ID, map[string]any{"status": "published"}, nil},
		{"an editor's change", a.ID, map[string]any{"title": "Agree A, edited", "tags": []string{"agree", "edited"}}, nil},
		{"a review", b.ID, map[string]any{"status": "under_review", "content": "for review"}, ada},
		{"an unpublication", a.ID, map[string]any{"status": "draft"}, nil},
		{"a republication", a.ID, map[string]any{"status": "published"}, nil},
	} {
		_, w := s.Write(http.MethodPatch, step.id, step.body, append([]string{"Content-Type", systest.MergePatch}, step.as...)...)
		want[step.id]++
		check(t, step.what, w, want)
	}
	w = s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+b.ID, nil, ada...)
	w.Require(t, http.StatusNoContent)
	check(t, "a deletion", w, want)
	c, w := s.Create(map[string]any{"title": "Agree C", "content": "for bob", "author_id": "bob", "status": "published"})
	ids, want[c.ID] = append(ids, c.ID), 1
	check(t, "an editor's article for another author", w, want)
	w = s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID+"?erase=true", nil, admin...)
	w.Require(t, http.StatusNoContent)
	check(t, "an erasure", w, want)
	for _, base := range bases[1:] {
		s.Do(http.MethodGet, base+"/api/articles/"+a.ID, nil, seqHeader(w)...).RequireProblem(t, http.StatusNotFound, "")
	}

	s.Step(t, "a feed's event is readable where it came from", func(t *testing.T) {
		events := feed.Take(wrote, feedWait)
		for _, ev := range events {
			r := s.Do(http.MethodGet, bases[1]+"/api/articles/"+ev.Data.ID, nil, readers["eve"]...)
			if ev.Event == "deleted" || ev.Event == "erased" {
				continue // later events may have brought it back, or not
			}
			if r.Status != http.StatusOK && ev.Data.ID != a.ID && ev.Data.ID != b.ID || r.Status == http.StatusOK && r.ETagVersion(t) < ev.Data.Version {
				t.Fatalf("feed event %d (%s v%d of %s), then a read there: %d %s", ev.ID, ev.Event, ev.Data.Version, ev.Data.ID, r.Status, r.Header.Get("ETag"))
			}
		}
	})
}

// TestStreamViewNeedsNoProjector stops the projector: a query API that
// folds the stream serves each write and lists it at once (with its
// token and without one), while the bucket still has the older snapshots;
// one started now (the projectors' ack floor is behind) and one started
// after another write (a restart) fold from that floor and serve it all.
// Once a projector runs again the bucket catches up and verify passes.
func TestStreamViewNeedsNoProjector(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	q := startQueryFrom(s, config.ViewFromStream)
	a, _ := s.Create(map[string]any{"title": "Hop one", "content": "v1", "author_id": "ada", "status": "published", "tags": []string{"hop"}})
	s.WaitProjected(30 * time.Second)
	if err := s.Projectors[0].Stop(); err != nil {
		t.Fatal(err)
	}
	a2, w := s.Write(http.MethodPatch, a.ID, map[string]any{"content": "v2"}, "Content-Type", systest.MergePatch)
	b, _ := s.Create(map[string]any{"title": "Hop two", "content": "v1", "author_id": "ada", "status": "published", "tags": []string{"hop"}})
	del, _ := s.Create(map[string]any{"title": "Hop gone", "content": "v1", "author_id": "ada", "status": "published", "tags": []string{"hop"}})
	w = s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+del.ID, nil)
	w.Require(t, http.StatusNoContent)
	token := seqHeader(w)

	requireServes := func(t *testing.T, base string, headers ...string) {
		t.Helper()
		r := s.Do(http.MethodGet, base+"/api/articles/"+a.ID, nil, headers...)
		r.Require(t, http.StatusOK)
		systest.RequireSameArticle(t, r.Article(t), a2)
		r = s.Do(http.MethodGet, base+"/api/articles?tag=hop&sort=title", nil, headers...)
		r.Require(t, http.StatusOK)
		if got := systest.IDs(r.List(t).Items); fmt.Sprint(got) != fmt.Sprint([]string{a.ID, b.ID}) {
			t.Fatalf("%s lists %v, want %v", base, got, []string{a.ID, b.ID})
		}
		s.Do(http.MethodGet, base+"/api/articles/"+del.ID, nil, headers...).RequireProblem(t, http.StatusNotFound, "")
	}
	s.Step(t, "reads and lists with the token", func(t *testing.T) {
		replays := s.Metric(q, "inkstream_query_replays_total")
		requireServes(t, q, token...)
		if snap, ok := s.Snapshot(a.ID); !ok || snap.Article.Version != 1 {
			t.Fatalf("the bucket moved on without a projector: %+v %v", snap, ok)
		}
		if _, ok := s.Snapshot(b.ID); ok {
			t.Fatal("the bucket has a snapshot no projector wrote")
		}
		if got := s.Metric(q, "inkstream_query_replays_total"); got != replays {
			t.Fatalf("%v replays: the view did not hold the writes", got-replays)
		}
	})
	s.Step(t, "a cold start folds from the ack floor", func(t *testing.T) {
		requireServes(t, startQueryFrom(s, config.ViewFromStream)) // ready: no token needed
	})
	b2, _ := s.Write(http.MethodPatch, b.ID, map[string]any{"title": "Hop two, again"}, "Content-Type", systest.MergePatch)
	s.Step(t, "a restart too", func(t *testing.T) {
		q2 := startQueryFrom(s, config.ViewFromStream)
		r := s.Do(http.MethodGet, q2+"/api/articles/"+b.ID, nil)
		r.Require(t, http.StatusOK)
		systest.RequireSameArticle(t, r.Article(t), b2)
	})
	s.Step(t, "the projector catches up", func(t *testing.T) {
		s.StartProjector()
		s.WaitProjected(30 * time.Second)
		for _, id := range []string{a.ID, b.ID, del.ID} {
			s.RequireSnapshotIsFold(id)
		}
		if out, err := s.VerifyCLI("-log-level", "error"); err != nil {
			t.Fatalf("verify: %v\n%s", err, out)
		}
		r := s.Do(http.MethodGet, q+"/api/articles/"+b.ID, nil)
		r.Require(t, http.StatusOK)
		systest.RequireSameArticle(t, r.Article(t), b2)
	})
}

// TestStreamViewDuringRebuild rebuilds the read model while query APIs
// that fold the stream serve: the view of a running one never loses an
// article nor goes back a version while the bucket is purged and refilled,
// and one started while the bucket is being refilled (its load finds only
// part of it) ends up holding every article, from the refill.
func TestStreamViewDuringRebuild(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	const n = 600
	ids := appendMany(t, s, n)
	edited := ids[:20]
	for _, id := range edited {
		s.Write(http.MethodPatch, id, map[string]any{"content": "edited"}, "Content-Type", systest.MergePatch)
	}
	s.WaitProjected(45 * time.Second)
	q := startQueryFrom(s, config.ViewFromStream)
	if got := s.Metric(q, "inkstream_query_articles"); got != n {
		t.Fatalf("a ready view holds %v articles, want %d", got, n)
	}

	var failure atomic.Pointer[string]
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		failure.CompareAndSwap(nil, &msg)
	}
	var samples atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			if got := s.Metric(q, "inkstream_query_articles"); got != n {
				fail("the view held %v articles during the rebuild", got)
			}
			id := edited[k%len(edited)]
			if r, err := systest.Do(s.Client, http.MethodGet, q+"/api/articles/"+id, nil); err != nil || r.Status != http.StatusOK || r.Header.Get("ETag") != systest.ETag(2) {
				fail("GET %s during the rebuild: %v %d %s", id, err, r.Status, r.Header.Get("ETag"))
			}
			r, err := systest.Do(s.Client, http.MethodGet, q+"/api/articles?limit=100&sort=title", nil)
			if err != nil || r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"next_cursor"`) {
				fail("list during the rebuild: %v %d", err, r.Status)
			}
			samples.Add(1)
		}
	}()

	var out, errOut cmdtest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- app.Rebuild(natstest.Context(t), []string{"-nats-url", s.URL, "-log-level", "error", "-projector-cache-bytes", "65536"}, cmdtest.Env(), &out, &errOut)
	}()
	natstest.WaitFor(t, 60*time.Second, func() error {
		if strings.Contains(out.String(), "bucket purged") {
			return nil
		}
		return errors.New("the bucket is not purged yet")
	})
	cold := startQueryFrom(s, config.ViewFromStream)
	if err := <-done; err != nil {
		t.Fatalf("rebuild: %v\n%s%s", err, out.String(), errOut.String())
	}
	close(stop)
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatal(*f)
	}
	if samples.Load() == 0 {
		t.Fatal("no read ran during the rebuild")
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		if got := s.Metric(cold, "inkstream_query_articles"); got != n {
			return fmt.Errorf("the view started during the rebuild holds %v articles, want %d", got, n)
		}
		return nil
	})
	if got := s.ListAll(url.Values{"sort": {"title"}}, 100); len(got) != n {
		t.Fatalf("listed %d of %d articles", len(got), n)
	}
}

// TestStreamViewErasure erases an article while query APIs that fold the
// stream serve it: it is gone from reads and lists at once, also on one
// started afterwards, and a snapshot of it written before the erasure that
// reaches the bucket late does not bring it back.
func TestStreamViewErasure(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	q := startQueryFrom(s, config.ViewFromStream)
	a, _ := s.Create(map[string]any{"title": "To be erased", "content": "personal data", "author_id": "ada", "status": "published", "tags": []string{"gdpr"}})
	keep, _ := s.Create(map[string]any{"title": "To be kept", "content": "c", "author_id": "ada", "status": "published", "tags": []string{"gdpr"}})
	s.WaitProjected(30 * time.Second)
	before, ok := s.Snapshot(a.ID)
	if !ok {
		t.Fatal("no snapshot before the erasure")
	}
	w := s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID+"?erase=true", nil, systest.As(s.Token("root", "admin"))...)
	w.Require(t, http.StatusNoContent)

	requireGone := func(t *testing.T, base string, headers ...string) {
		t.Helper()
		s.Do(http.MethodGet, base+"/api/articles/"+a.ID, nil, headers...).RequireProblem(t, http.StatusNotFound, "")
		r := s.Do(http.MethodGet, base+"/api/articles?tag=gdpr", nil, headers...)
		r.Require(t, http.StatusOK)
		if got := systest.IDs(r.List(t).Items); fmt.Sprint(got) != fmt.Sprint([]string{keep.ID}) {
			t.Fatalf("%s lists %v after the erasure, want only %s", base, got, keep.ID)
		}
		if got := s.Metric(base, "inkstream_query_articles"); got != 1 {
			t.Fatalf("%s's view holds %v articles, want 1", base, got)
		}
	}
	s.Step(t, "gone at once", func(t *testing.T) { requireGone(t, q, seqHeader(w)...) })
	s.WaitProjected(30 * time.Second)
	s.Step(t, "gone on an instance started afterwards", func(t *testing.T) { requireGone(t, startQueryFrom(s, config.ViewFromStream)) })

	s.Step(t, "a late snapshot does not bring it back", func(t *testing.T) {
		// The key's purge, once more after the view has taken the erasure
		// (the order when the view is quick), then the late snapshot.
		if err := s.Res.KV.Purge(natstest.Context(t), a.ID); err != nil {
			t.Fatal(err)
		}
		s.PutSnapshot(before)
		// A snapshot of an article the stream does not hold, written after
		// the late one: once the view shows it, it has taken the late one too.
		marker := readmodel.Snapshot{Article: domain.Article{ID: "0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a", Version: 1, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
			Fields: domain.Fields{Title: "Marker", Slug: "marker", Content: "m", AuthorID: "ada", Status: domain.StatusPublished}}, Seq: w.Seq()}
		s.PutSnapshot(marker)
		natstest.WaitFor(t, 10*time.Second, func() error {
			if got := s.Metric(q, "inkstream_query_articles"); got != 2 {
				return fmt.Errorf("view holds %v articles, want the kept one and the marker", got)
			}
			return nil
		})
		s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil).RequireProblem(t, http.StatusNotFound, "")
		r := s.Do(http.MethodGet, q+"/api/articles?tag=gdpr", nil)
		r.Require(t, http.StatusOK)
		if got := systest.IDs(r.List(t).Items); fmt.Sprint(got) != fmt.Sprint([]string{keep.ID}) {
			t.Fatalf("lists %v after a late snapshot of the erased article, want only %s", got, keep.ID)
		}
	})
}

// TestStreamViewThroughServerRestart restarts the NATS server under a query
// API that folds the stream and keeps no bodies (so every event is folded
// onto its index entry, and every read takes the body from KV or replays
// it): writes made after the restart are read with their tokens, and the
// view ends up as the fold of the stream for every article, lists
// included.
func TestStreamViewThroughServerRestart(t *testing.T) {
	srv, s := systest.StartSingle(t, 1)
	q := startQueryFrom(s, config.ViewFromStream, func(c *config.QueryAPI) { c.CacheBytes = 0 })
	var ids []string
	for i := range 4 {
		a, _ := s.Create(map[string]any{"title": fmt.Sprintf("Restart %d", i), "content": "v1", "author_id": "ada", "status": "published", "tags": []string{"restart"}})
		ids = append(ids, a.ID)
	}
	srv.Restart(t)
	var last systest.Response
	for round := range 12 {
		id := ids[round%len(ids)]
		natstest.WaitFor(t, 30*time.Second, func() error {
			r, err := systest.Do(s.Client, http.MethodPatch, s.Cmd()+"/api/articles/"+id, map[string]any{"title": fmt.Sprintf("Restart %d, round %d", round%len(ids), round)},
				"Content-Type", systest.MergePatch)
			if err == nil && r.Status != http.StatusOK {
				err = fmt.Errorf("%d %s", r.Status, r.Body)
			}
			last = r
			return err
		})
		r := s.Do(http.MethodGet, q+"/api/articles/"+id, nil, seqHeader(last)...)
		r.Require(t, http.StatusOK)
		if got := r.Article(t); got.Title != fmt.Sprintf("Restart %d, round %d", round%len(ids), round) {
			t.Fatalf("round %d: read %q with the write's token", round, got.Title)
		}
	}
	r := s.Do(http.MethodGet, q+"/api/articles?tag=restart&sort=title", nil, seqHeader(last)...)
	r.Require(t, http.StatusOK)
	items := r.List(t).Items
	if len(items) != len(ids) {
		t.Fatalf("lists %d articles, want %d", len(items), len(ids))
	}
	for _, got := range items {
		systest.RequireSameArticle(t, got, s.History(got.ID).Fold.State.Article)
	}
}
