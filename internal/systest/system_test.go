package systest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// TestSystemArticleLifecycle drives one article through create, read,
// replace, a stale conditional write, a merge patch, conditional GET and
// delete, over HTTP only.
func TestSystemArticleLifecycle(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	var created, replaced, patched domain.Article
	var seq1, seq2, seq3 uint64

	s.Step(t, "create", func(t *testing.T) {
		// 201, Location, ETag "1", defaults and a derived slug.
		var r systest.Response
		created, r = s.Create(map[string]any{
			"title": "  Hello, World: NATS & Go!  ", "content": "First body", "author_id": "alice", "tags": []string{"go", "nats"},
		})
		seq1 = r.Seq()
		systest.RequireSameArticle(t, created, domain.Article{ID: created.ID, Version: 1, CreatedAt: created.CreatedAt, UpdatedAt: created.CreatedAt,
			Fields: domain.Fields{Title: "Hello, World: NATS & Go!", Slug: "hello-world-nats-and-go", Content: "First body",
				AuthorID: "alice", Status: domain.StatusDraft, Tags: []string{"go", "nats"}}})
		if created.CreatedAt.IsZero() || time.Since(created.CreatedAt) > time.Minute {
			t.Fatalf("created_at %v is not now", created.CreatedAt)
		}
	})

	s.Step(t, "read by id and in the list", func(t *testing.T) {
		systest.RequireSameArticle(t, s.WaitArticle(created.ID, 1), created)
		natstest.WaitFor(t, 10*time.Second, func() error {
			p := s.List(url.Values{"author_id": {"alice"}})
			if len(p.Items) != 1 || !systest.SameArticle(p.Items[0], created) || p.HasCursor {
				return fmt.Errorf("list: %+v", p)
			}
			return nil
		})
	})

	s.Step(t, "replace", func(t *testing.T) {
		// 200, ETag "2", a later X-Event-Seq, the slug derived anew.
		var r systest.Response
		replaced, r = s.Write(http.MethodPut, created.ID, map[string]any{
			"title": "Hello again", "content": "Second body", "author_id": "alice", "status": "published", "tags": []string{"go"},
		})
		if seq2 = r.Seq(); seq2 <= seq1 {
			t.Fatalf("X-Event-Seq went from %d to %d", seq1, seq2)
		}
		systest.RequireSameArticle(t, replaced, domain.Article{ID: created.ID, Version: 2, CreatedAt: created.CreatedAt, UpdatedAt: replaced.UpdatedAt,
			Fields: domain.Fields{Title: "Hello again", Slug: "hello-again", Content: "Second body", AuthorID: "alice",
				Status: domain.StatusPublished, Tags: []string{"go"}}})
		if replaced.UpdatedAt.Before(created.CreatedAt) {
			t.Fatalf("updated_at %v before created_at %v", replaced.UpdatedAt, created.CreatedAt)
		}
		// Read-your-writes: with the token the query API answers version 2 at once.
		r = s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID, nil, "X-Min-Event-Seq", strconv.FormatUint(seq2, 10))
		r.Require(t, http.StatusOK)
		if r.ETagVersion(t) != 2 {
			t.Fatalf("GET with X-Min-Event-Seq %d: ETag %s", seq2, r.Header.Get("ETag"))
		}
		systest.RequireSameArticle(t, r.Article(t), replaced)
	})

	s.Step(t, "stale If-Match", func(t *testing.T) {
		// A write conditional on the old version fails with 412 and writes nothing.
		before := s.StreamMsgs()
		r := s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+created.ID, map[string]any{
			"title": "Lost update", "content": "x", "author_id": "alice",
		}, "If-Match", systest.ETag(1))
		r.RequireProblem(t, http.StatusPreconditionFailed, "")
		if n := s.StreamMsgs(); n != before {
			t.Fatalf("a failed conditional write changed the stream from %d to %d messages", before, n)
		}
	})

	s.Step(t, "merge patch", func(t *testing.T) {
		// Conditional on the current version: null resets tags, absent fields stay.
		var r systest.Response
		patched, r = s.Write(http.MethodPatch, created.ID, `{"status":"under_review","tags":null,"content":"Third body"}`,
			"Content-Type", systest.MergePatch, "If-Match", systest.ETag(2))
		want := replaced
		want.Version, want.Status, want.Tags, want.Content, want.UpdatedAt = 3, domain.StatusUnderReview, []string{}, "Third body", patched.UpdatedAt
		systest.RequireSameArticle(t, patched, want)
		if seq3 = r.Seq(); seq3 <= seq2 {
			t.Fatalf("X-Event-Seq went from %d to %d", seq2, seq3)
		}
	})

	s.Step(t, "conditional GET", func(t *testing.T) {
		// 304 for the current ETag, 200 for an old one.
		systest.RequireSameArticle(t, s.WaitArticle(created.ID, 3), patched)
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID, nil, "If-None-Match", systest.ETag(3))
		r.Require(t, http.StatusNotModified)
		if len(r.Body) != 0 || r.Header.Get("ETag") != systest.ETag(3) {
			t.Fatalf("304 with body %q and ETag %q", r.Body, r.Header.Get("ETag"))
		}
		s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID, nil, "If-None-Match", systest.ETag(2)).Require(t, http.StatusOK)
	})

	s.Step(t, "version 1", func(t *testing.T) {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID+"/versions/1", nil)
		r.Require(t, http.StatusOK)
		systest.RequireSameArticle(t, r.Article(t), created)
	})

	s.Step(t, "delete", func(t *testing.T) {
		// 204; then 404 on reads and writes, and gone from lists.
		r := s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+created.ID, nil, "If-Match", systest.ETag(3))
		r.Require(t, http.StatusNoContent)
		if len(r.Body) != 0 || r.Seq() <= seq3 {
			t.Fatalf("DELETE: body %q, X-Event-Seq %d after %d", r.Body, r.Seq(), seq3)
		}
		s.WaitGone(created.ID).RequireProblem(t, http.StatusNotFound, "")
		s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+created.ID, nil).RequireProblem(t, http.StatusNotFound, "")
		s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+created.ID, map[string]any{
			"title": "Back", "content": "x", "author_id": "alice"}).RequireProblem(t, http.StatusNotFound, "")
		natstest.WaitFor(t, 10*time.Second, func() error {
			if p := s.List(url.Values{}); len(p.Items) != 0 {
				return fmt.Errorf("list after delete: %d items", len(p.Items))
			}
			return nil
		})
	})

	s.Step(t, "audit trail", func(t *testing.T) {
		// Every event is kept, also of the deleted article.
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID+"/events", nil)
		r.Require(t, http.StatusOK)
		var trail struct {
			Items []struct {
				Seq     uint64 `json:"seq"`
				Type    string `json:"type"`
				Version int    `json:"version"`
			} `json:"items"`
		}
		r.JSON(t, &trail)
		types := []string{"ArticleCreated", "ArticleUpdated", "ArticleUpdated", "ArticleDeleted"}
		if len(trail.Items) != len(types) {
			t.Fatalf("events: %s", r.Body)
		}
		for i, e := range trail.Items {
			if e.Type != types[i] || e.Version != i+1 || i > 0 && e.Seq <= trail.Items[i-1].Seq {
				t.Fatalf("event %d: %+v; all: %s", i, e, r.Body)
			}
		}
	})
}

// TestSystemListArticles checks filters, every sort order, cursor
// pagination and the rejection of bad list parameters.
func TestSystemListArticles(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	const n = 23
	authors := []string{"alice", "bob", "carol"}
	statuses := []domain.Status{domain.StatusDraft, domain.StatusUnderReview, domain.StatusPublished}
	tagSets := [][]string{{"go"}, {"go", "nats"}, {"nats"}, {}}
	latest := map[string]domain.Article{}
	var order []string
	for i := 0; i < n; i++ {
		a, _ := s.Create(map[string]any{
			"title":     fmt.Sprintf("Title %02d", (i*7)%n), // titles in another order than creation
			"content":   "body",
			"author_id": authors[i%3],
			"status":    statuses[(i/2)%3],
			"tags":      tagSets[i%4],
		})
		latest[a.ID] = a
		order = append(order, a.ID)
	}
	// Touch some articles newest first, so updated_at has a third order.
	for i := n - 1; i >= 0; i -= 5 {
		a, _ := s.Write(http.MethodPatch, order[i], map[string]any{"content": "edited"}, "Content-Type", systest.MergePatch)
		latest[a.ID] = a
	}
	s.WaitProjected(20 * time.Second)

	all := make([]domain.Article, 0, n)
	for _, a := range latest {
		all = append(all, a)
	}
	expect := func(sortBy string, keep func(domain.Article) bool) []string {
		var out []domain.Article
		for _, a := range all {
			if keep(a) {
				out = append(out, a)
			}
		}
		key := strings.TrimPrefix(sortBy, "-")
		slices.SortFunc(out, func(a, b domain.Article) int {
			c := 0
			switch key {
			case "created_at":
				c = a.CreatedAt.Compare(b.CreatedAt)
			case "updated_at":
				c = a.UpdatedAt.Compare(b.UpdatedAt)
			case "title":
				c = strings.Compare(a.Title, b.Title)
			}
			if c == 0 {
				c = strings.Compare(a.ID, b.ID)
			}
			return c
		})
		if strings.HasPrefix(sortBy, "-") {
			slices.Reverse(out)
		}
		return systest.IDs(out)
	}
	everything := func(domain.Article) bool { return true }
	// The orders really differ, so the comparisons below can tell them apart.
	if c := expect("created_at", everything); slices.Equal(c, expect("updated_at", everything)) || slices.Equal(c, expect("title", everything)) {
		t.Fatal("test data: sort orders coincide")
	}

	// Wait until the view holds every article at its latest version.
	natstest.WaitFor(t, 10*time.Second, func() error {
		p := s.List(url.Values{"limit": {"100"}})
		if len(p.Items) != n || p.HasCursor {
			return fmt.Errorf("list has %d items (cursor %v), want %d", len(p.Items), p.HasCursor, n)
		}
		for _, a := range p.Items {
			if !systest.SameArticle(a, latest[a.ID]) {
				return fmt.Errorf("list serves %+v, want %+v", a, latest[a.ID])
			}
		}
		return nil
	})

	s.Step(t, "default page", func(t *testing.T) {
		// Limit 20, newest first, a cursor to the rest.
		p := s.List(url.Values{})
		if want := expect("-created_at", everything); len(p.Items) != 20 || !p.HasCursor || !slices.Equal(systest.IDs(p.Items), want[:20]) {
			t.Fatalf("default page: %d items, cursor %v, ids %v, want the first 20 of %v", len(p.Items), p.HasCursor, systest.IDs(p.Items), want)
		}
	})

	filters := []struct {
		name string
		q    url.Values
		keep func(domain.Article) bool
	}{
		{"all", url.Values{}, everything},
		{"author", url.Values{"author_id": {"alice"}}, func(a domain.Article) bool { return a.AuthorID == "alice" }},
		{"tag", url.Values{"tag": {"nats"}}, func(a domain.Article) bool { return slices.Contains(a.Tags, "nats") }},
		{"status", url.Values{"status": {"published"}}, func(a domain.Article) bool { return a.Status == domain.StatusPublished }},
		{"author+tag+status", url.Values{"author_id": {"bob"}, "tag": {"go"}, "status": {"draft"}}, func(a domain.Article) bool {
			return a.AuthorID == "bob" && slices.Contains(a.Tags, "go") && a.Status == domain.StatusDraft
		}},
		{"no match", url.Values{"author_id": {"nobody"}}, func(domain.Article) bool { return false }},
	}
	if len(expect("created_at", filters[1].keep)) != 8 {
		t.Fatal("test data: alice does not have 8 articles (two full pages of 4)")
	}
	for _, sortBy := range []string{"created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"} {
		for _, f := range filters {
			s.Run(t, "sort "+sortBy+", filter "+f.name, func(t *testing.T) {
				want := expect(sortBy, f.keep)
				for _, limit := range []int{4, 100} {
					q := url.Values{"sort": {sortBy}}
					for k, v := range f.q {
						q[k] = v
					}
					if got := s.ListAll(q, limit); !slices.Equal(got, want) {
						t.Errorf("limit %d:\n got %v\nwant %v", limit, got, want)
					}
				}
			})
		}
	}

	// Bad parameters are 400 problems.
	titleCursor := s.List(url.Values{"sort": {"title"}, "limit": {"2"}}).NextCursor
	for _, q := range []string{
		"limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5",
		"sort=foo", "sort=created_at,title", "sort=CREATED_AT",
		"cursor=garbage", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{}`)),
		"cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`not json`)),
		"sort=created_at&cursor=" + url.QueryEscape(titleCursor),
		"status=archived",
	} {
		s.Run(t, "bad ?"+q, func(t *testing.T) {
			s.Do(http.MethodGet, s.Query()+"/api/articles?"+q, nil).RequireProblem(t, http.StatusBadRequest, "")
		})
	}
	s.Run(t, "bad X-Min-Event-Seq", func(t *testing.T) {
		s.Do(http.MethodGet, s.Query()+"/api/articles", nil, "X-Min-Event-Seq", "abc").RequireProblem(t, http.StatusBadRequest, "")
	})
}

// TestSystemRejectsBadInput sends every kind of bad request to the command
// and query APIs: each is a 4xx problem, none a 500, and none writes an event.
func TestSystemRejectsBadInput(t *testing.T) {
	_, s := systest.StartSingle(t, 1)

	s.Step(t, "a request at every limit is accepted", func(t *testing.T) {
		tags := make([]string, domain.MaxTags)
		for i := range tags {
			tags[i] = fmt.Sprintf("t%d-", i) + strings.Repeat("x", domain.MaxTag-4)
		}
		edge, _ := s.Create(map[string]any{
			"title": strings.Repeat("é", domain.MaxTitle), "slug": strings.Repeat("a", domain.MaxSlug),
			"content": strings.Repeat("c", domain.MaxContent), "author_id": strings.Repeat("u", domain.MaxAuthorID),
			"status": "published", "tags": tags,
		})
		if len([]rune(edge.Title)) != domain.MaxTitle || len(edge.Tags) != domain.MaxTags {
			t.Fatalf("edge article: %d title runes, %d tags", len([]rune(edge.Title)), len(edge.Tags))
		}
	})

	target, _ := s.Create(map[string]any{"title": "Target", "content": "c", "author_id": "alice", "tags": []string{"go"}})
	gone, _ := s.Create(map[string]any{"title": "Gone", "content": "c", "author_id": "alice"})
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+gone.ID, nil).Require(t, http.StatusNoContent)
	s.WaitProjected(10 * time.Second)
	s.WaitGone(gone.ID)
	msgs := s.StreamMsgs()

	for _, g := range badRequests(s, target.ID, gone.ID) {
		t.Run(g.name, func(t *testing.T) {
			for _, rq := range g.reqs {
				r := s.Do(rq.method, rq.url, rq.body, rq.headers...)
				t.Run(rq.name, func(t *testing.T) { r.RequireProblem(t, rq.status, rq.field) })
			}
		})
	}

	s.Run(t, "bodies over the limit", func(t *testing.T) {
		// With a Content-Length or chunked, they are 413. They go over a raw
		// connection: the server answers without reading the rest, and a
		// client still writing it could see a reset instead.
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for _, w := range []struct{ method, path, ct string }{
			{http.MethodPost, "/api/articles", "application/json"},
			{http.MethodPut, "/api/articles/" + target.ID, "application/json"},
			{http.MethodPatch, "/api/articles/" + target.ID, systest.MergePatch},
		} {
			head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n", w.method, w.path, s.CommandAPI.Addr, w.ct)
			r := systest.Raw(t, s.CommandAPI.Addr, 0, []byte(head+fmt.Sprintf("Content-Length: %d\r\n\r\n", 1<<20+1)), []byte(`{"content":"`))
			t.Run(w.method+" with Content-Length", func(t *testing.T) { r.RequireProblem(t, http.StatusRequestEntityTooLarge, "") })
			parts := [][]byte{[]byte(head + "Transfer-Encoding: chunked\r\n\r\n"), []byte("1\r\n{\r\n")}
			for sent := 1; sent+len(chunk) <= 1<<20; sent += len(chunk) {
				parts = append(parts, []byte(fmt.Sprintf("%x\r\n", len(chunk))), chunk, []byte("\r\n"))
			}
			parts = append(parts, []byte(fmt.Sprintf("%x\r\n", len(chunk)))) // the chunk that crosses the limit
			r = systest.Raw(t, s.CommandAPI.Addr, 0, parts...)
			t.Run(w.method+" chunked", func(t *testing.T) { r.RequireProblem(t, http.StatusRequestEntityTooLarge, "") })
		}
		// Just under the limit is not too large (it is a validation error).
		r := s.Do(http.MethodPost, s.Cmd()+"/api/articles", []byte(`{"title":"Big","author_id":"a","content":"`+strings.Repeat("x", 1<<20-100)+`"}`))
		r.RequireProblem(t, http.StatusBadRequest, "content")
	})

	if n := s.StreamMsgs(); n != msgs {
		t.Fatalf("bad requests wrote %d events", n-msgs)
	}
	systest.RequireSameArticle(t, s.WaitArticle(target.ID, 1), target)
}

// badRequest is a request the APIs must refuse with a problem.
type badRequest struct {
	name    string
	method  string
	url     string
	body    any
	headers []string
	status  int    // 0: any 4xx
	field   string // the errors member a validation problem must name
}

// badRequests are the bad requests of TestSystemRejectsBadInput by
// concern, on the live article target and the deleted article gone.
func badRequests(s *systest.System, target, gone string) []struct {
	name string
	reqs []badRequest
} {
	cmd := s.Cmd() + "/api/articles"
	one := cmd + "/" + target
	query := s.Query() + "/api/articles/"
	base := func() map[string]any {
		return map[string]any{"title": "Valid", "content": "c", "author_id": "alice", "status": "draft", "tags": []string{"go"}}
	}
	elevenTags := make([]string, domain.MaxTags+1)
	for i := range elevenTags {
		elevenTags[i] = fmt.Sprintf("tag-%d", i)
	}
	patch := []string{"Content-Type", systest.MergePatch}

	// Validation: each rule broken in a POST, a PUT and a PATCH.
	var validation []badRequest
	for _, rule := range []struct {
		name    string
		field   string
		value   any
		missing bool
	}{
		{"title missing", "title", nil, true},
		{"title empty", "title", "", false},
		{"title blank", "title", " \t\n ", false},
		{"title 201 characters", "title", strings.Repeat("é", domain.MaxTitle+1), false},
		{"title a number", "title", 5, false},
		{"slug with spaces and capitals", "slug", "Not A Slug", false},
		{"slug with a double hyphen", "slug", "a--b", false},
		{"slug ending in a hyphen", "slug", "a-", false},
		{"slug 201 characters", "slug", strings.Repeat("a", domain.MaxSlug+1), false},
		{"content missing", "content", nil, true},
		{"content empty", "content", "", false},
		{"content 100001 characters", "content", strings.Repeat("c", domain.MaxContent+1), false},
		{"content an object", "content", map[string]any{}, false},
		{"author_id missing", "author_id", nil, true},
		{"author_id blank", "author_id", "   ", false},
		{"author_id 65 characters", "author_id", strings.Repeat("u", domain.MaxAuthorID+1), false},
		{"status unknown", "status", "archived", false},
		{"status in capitals", "status", "Draft", false},
		{"status a number", "status", 1, false},
		{"11 tags", "tags", elevenTags, false},
		{"tag with capitals", "tags", []string{"Go"}, false},
		{"tag with a space", "tags", []string{"go nats"}, false},
		{"tag empty", "tags", []string{""}, false},
		{"tag 33 characters", "tags", []string{strings.Repeat("t", domain.MaxTag+1)}, false},
		{"duplicate tags", "tags", []string{"go", "nats", "go"}, false},
		{"tags a string", "tags", "go", false},
		{"tags of numbers", "tags", []int{1}, false},
	} {
		full := base()
		if rule.missing {
			delete(full, rule.field)
		} else {
			full[rule.field] = rule.value
		}
		validation = append(validation,
			badRequest{"POST " + rule.name, http.MethodPost, cmd, full, nil, http.StatusBadRequest, rule.field},
			badRequest{"PUT " + rule.name, http.MethodPut, one, full, nil, http.StatusBadRequest, rule.field},
			badRequest{"PATCH " + rule.name, http.MethodPatch, one, map[string]any{rule.field: rule.value}, patch, http.StatusBadRequest, rule.field},
		)
	}
	validation = append(validation,
		badRequest{"PATCH of the title with a number", http.MethodPatch, one, `{"title": 5}`, patch, http.StatusBadRequest, "title"},
		badRequest{"PATCH of the tags with a list of numbers", http.MethodPatch, one, `{"tags": [1, 2]}`, patch, http.StatusBadRequest, "tags"},
		badRequest{"PATCH of the status with true", http.MethodPatch, one, `{"status": true}`, patch, http.StatusBadRequest, "status"},
	)

	// Bodies, media types and headers; ids that name no live article.
	valid, _ := json.Marshal(base())
	deep := strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000)
	withField := func(k string, v any) map[string]any { m := base(); m[k] = v; return m }
	unknownID := uuid.Must(uuid.NewV7()).String()
	var bodies, ids []badRequest
	for _, w := range []struct {
		method, url, ct string
	}{{http.MethodPost, cmd, "application/json"}, {http.MethodPut, one, "application/json"}, {http.MethodPatch, one, systest.MergePatch}} {
		ct := []string{"Content-Type", w.ct}
		add := func(name string, body any, status int, field string, headers ...string) {
			bodies = append(bodies, badRequest{w.method + " " + name, w.method, w.url, body, append(slices.Clone(ct), headers...), status, field})
		}
		add("malformed JSON", `{"title": "x", "content": `, http.StatusBadRequest, "")
		add("trailing comma", `{"title": "x",}`, http.StatusBadRequest, "")
		add("unquoted key", `{title: "x"}`, http.StatusBadRequest, "")
		add("trailing garbage", string(valid)+" garbage", http.StatusBadRequest, "")
		add("two JSON values", string(valid)+string(valid), http.StatusBadRequest, "")
		add("trailing bracket", string(valid)+"]", http.StatusBadRequest, "")
		add("unknown field", withField("titel", "typo"), http.StatusBadRequest, "titel")
		add("id", withField("id", target), http.StatusBadRequest, "id")
		add("version", withField("version", 7), http.StatusBadRequest, "version")
		add("created_at", withField("created_at", "2026-01-01T00:00:00Z"), http.StatusBadRequest, "created_at")
		add("updated_at", withField("updated_at", nil), http.StatusBadRequest, "updated_at")
		add("JSON array", "["+string(valid)+"]", http.StatusBadRequest, "")
		add("JSON string", `"hello"`, http.StatusBadRequest, "")
		add("JSON number", `42`, http.StatusBadRequest, "")
		add("JSON null", `null`, http.StatusBadRequest, "")
		add("empty body", "", http.StatusBadRequest, "")
		add("blank body", " \r\n\t", http.StatusBadRequest, "")
		add("nested 20000 deep", deep, http.StatusBadRequest, "")
		add("text/plain", valid, http.StatusUnsupportedMediaType, "", "Content-Type", "text/plain")
		add("form", "title=x", http.StatusUnsupportedMediaType, "", "Content-Type", "application/x-www-form-urlencoded")
		add("JSON patch media type", valid, http.StatusUnsupportedMediaType, "", "Content-Type", "application/json-patch+json")
		add("bad Content-Type", valid, http.StatusUnsupportedMediaType, "", "Content-Type", ";;;")
		add("Idempotency-Key over 255", valid, http.StatusBadRequest, "", "Idempotency-Key", strings.Repeat("k", 256))
		if w.method == http.MethodPost {
			bodies = append(bodies, badRequest{"POST without a body or Content-Type", w.method, w.url, nil, nil, http.StatusUnsupportedMediaType, ""})
			continue
		}
		if w.method == http.MethodPut {
			add("with the merge patch media type", valid, http.StatusUnsupportedMediaType, "", "Content-Type", systest.MergePatch)
		}
		for _, im := range []string{"abc", `"0"`, `"-1"`, `"1.5"`, `"1`, `W/"x"`, `"99999999999999999999"`} {
			add("If-Match "+im, valid, http.StatusBadRequest, "", "If-Match", im)
		}
		add("stale If-Match", valid, http.StatusPreconditionFailed, "", "If-Match", systest.ETag(7))
		for _, id := range []string{unknownID, gone, "not-a-uuid", strings.ToUpper(target), "{" + target + "}", "urn:uuid:" + target, "articles.*", "%2E%2E"} {
			ids = append(ids, badRequest{w.method + " id " + id, w.method, cmd + "/" + id, valid, ct, http.StatusNotFound, ""})
		}
	}
	bodies = append(bodies,
		badRequest{"PATCH with invalid JSON inside a member", http.MethodPatch, one, `{"title": tru}`, patch, http.StatusBadRequest, ""},
		badRequest{"DELETE If-Match abc", http.MethodDelete, one, nil, []string{"If-Match", "abc"}, http.StatusBadRequest, ""},
		badRequest{"DELETE stale If-Match", http.MethodDelete, one, nil, []string{"If-Match", systest.ETag(7)}, http.StatusPreconditionFailed, ""},
		badRequest{"DELETE of the collection", http.MethodDelete, cmd, nil, nil, 0, ""},
		badRequest{"GET of an unknown route", http.MethodGet, s.Cmd() + "/api/nothing", nil, nil, http.StatusNotFound, ""},
	)
	ids = append(ids,
		badRequest{"DELETE unknown id", http.MethodDelete, cmd + "/" + unknownID, nil, nil, http.StatusNotFound, ""},
		badRequest{"DELETE deleted id", http.MethodDelete, cmd + "/" + gone, nil, nil, http.StatusNotFound, ""},
		badRequest{"DELETE non-UUID id", http.MethodDelete, cmd + "/not-a-uuid", nil, nil, http.StatusNotFound, ""},
		badRequest{"GET unknown id", http.MethodGet, query + unknownID, nil, nil, http.StatusNotFound, ""},
		badRequest{"GET deleted id", http.MethodGet, query + gone, nil, nil, http.StatusNotFound, ""},
		badRequest{"GET non-UUID id", http.MethodGet, query + "not-a-uuid", nil, nil, http.StatusNotFound, ""},
		badRequest{"GET versions of an unknown id", http.MethodGet, query + unknownID + "/versions", nil, nil, http.StatusNotFound, ""},
		badRequest{"GET events of an unknown id", http.MethodGet, query + unknownID + "/events", nil, nil, http.StatusNotFound, ""},
		badRequest{"GET events of a non-UUID id", http.MethodGet, query + "x.y/events", nil, nil, http.StatusNotFound, ""},
	)

	// The rest of the query API.
	reads := []badRequest{
		{"GET bad X-Min-Event-Seq", http.MethodGet, query + target, nil, []string{"X-Min-Event-Seq", "-1"}, http.StatusBadRequest, ""},
		{"GET version abc", http.MethodGet, query + target + "/versions/abc", nil, nil, http.StatusBadRequest, ""},
		{"GET version 0", http.MethodGet, query + target + "/versions/0", nil, nil, http.StatusBadRequest, ""},
		{"GET version 2 of a version-1 article", http.MethodGet, query + target + "/versions/2", nil, nil, http.StatusNotFound, ""},
		{"POST to the query API", http.MethodPost, s.Query() + "/api/articles", valid, nil, 0, ""},
	}
	return []struct {
		name string
		reqs []badRequest
	}{{"validation", validation}, {"bodies and headers", bodies}, {"ids", ids}, {"query API", reads}}
}
