package systest_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// ---- helpers shared by the tests of this package ----

const syMergePatch = "application/merge-patch+json"

// syMediaType is the media type of a response, without parameters.
func syMediaType(r systest.Response) string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt
}

// syExpectStatus fails unless r has status want.
func syExpectStatus(tb testing.TB, r systest.Response, want int, what string) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want, r.Body)
	}
}

// syExpectProblem fails unless r is an RFC 9457 problem with status want (any
// 4xx when want is 0) and, when field is not empty, an errors member naming
// field (or an element of it, such as tags[0]).
func syExpectProblem(tb testing.TB, r systest.Response, want int, field, what string) httpx.Problem {
	tb.Helper()
	if want == 0 && (r.Status < 400 || r.Status > 499) || want != 0 && r.Status != want {
		tb.Fatalf("%s: status %d, want %s; body %.300s", what, r.Status, syStatusText(want), r.Body)
	}
	if mt := syMediaType(r); mt != httpx.ContentTypeProblem {
		tb.Fatalf("%s: Content-Type %q, want %s; body %.300s", what, r.Header.Get("Content-Type"), httpx.ContentTypeProblem, r.Body)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &members); err != nil {
		tb.Fatalf("%s: problem body is not a JSON object: %v: %.300s", what, err, r.Body)
	}
	for _, m := range []string{"type", "title", "status"} {
		if _, ok := members[m]; !ok {
			tb.Fatalf("%s: problem body lacks %q: %s", what, m, r.Body)
		}
	}
	var p httpx.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		tb.Fatalf("%s: decode problem: %v: %s", what, err, r.Body)
	}
	if p.Type == "" || p.Title == "" || p.Status != r.Status {
		tb.Fatalf("%s: problem type %q title %q status %d (HTTP status %d)", what, p.Type, p.Title, p.Status, r.Status)
	}
	if field != "" {
		found := false
		for k, msg := range p.Errors {
			if (k == field || strings.HasPrefix(k, field+"[")) && msg != "" {
				found = true
			}
		}
		if !found {
			tb.Fatalf("%s: problem errors %v do not name %q; body %s", what, p.Errors, field, r.Body)
		}
	}
	return p
}

func syStatusText(s int) string {
	if s == 0 {
		return "a 4xx"
	}
	return strconv.Itoa(s)
}

func syETag(v int) string { return `"` + strconv.Itoa(v) + `"` }

// syDecodeArticle decodes an article answer and checks that its timestamps
// are RFC 3339 UTC.
func syDecodeArticle(tb testing.TB, r systest.Response) domain.Article {
	tb.Helper()
	if mt := syMediaType(r); mt != "application/json" {
		tb.Fatalf("article Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	var raw map[string]any
	r.JSON(tb, &raw)
	for _, k := range []string{"created_at", "updated_at"} {
		s, _ := raw[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
			tb.Fatalf("%s %q is not RFC 3339 UTC: %s", k, s, r.Body)
		}
	}
	var a domain.Article
	r.JSON(tb, &a)
	return a
}

// sySameArticle compares two articles field by field (times as instants).
func sySameArticle(a, b domain.Article) bool {
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	if a.Tags == nil {
		a.Tags = []string{}
	}
	if b.Tags == nil {
		b.Tags = []string{}
	}
	return reflect.DeepEqual(a, b)
}

// syCreate posts an article and checks the 201 answer.
func syCreate(tb testing.TB, s *systest.System, body any, headers ...string) (domain.Article, uint64) {
	tb.Helper()
	r := s.Do(http.MethodPost, s.Cmd()+"/api/articles", body, headers...)
	syExpectStatus(tb, r, http.StatusCreated, "create")
	a := syDecodeArticle(tb, r)
	if got := r.Header.Get("ETag"); got != syETag(1) || a.Version != 1 {
		tb.Fatalf("create: ETag %s version %d, want \"1\" and 1", got, a.Version)
	}
	if loc := r.Header.Get("Location"); loc != "/api/articles/"+a.ID && !strings.HasSuffix(loc, "/api/articles/"+a.ID) {
		tb.Fatalf("create: Location %q does not name article %s", loc, a.ID)
	}
	if u, err := uuid.Parse(a.ID); err != nil || u.Version() != 7 {
		tb.Fatalf("create: id %q is not a UUIDv7", a.ID)
	}
	if r.Seq() == 0 {
		tb.Fatalf("create: no X-Event-Seq")
	}
	return a, r.Seq()
}

// syWrite sends a PUT or PATCH and checks the 200 answer.
func syWrite(tb testing.TB, s *systest.System, method, id string, body any, headers ...string) (domain.Article, uint64) {
	tb.Helper()
	r := s.Do(method, s.Cmd()+"/api/articles/"+id, body, headers...)
	syExpectStatus(tb, r, http.StatusOK, method+" "+id)
	a := syDecodeArticle(tb, r)
	if got := r.Header.Get("ETag"); got != syETag(a.Version) {
		tb.Fatalf("%s: ETag %s for version %d", method, got, a.Version)
	}
	if r.Seq() == 0 {
		tb.Fatalf("%s: no X-Event-Seq", method)
	}
	return a, r.Seq()
}

// syWaitArticle polls the query API until it serves article id at version
// and returns it.
func syWaitArticle(tb testing.TB, s *systest.System, id string, version int) domain.Article {
	tb.Helper()
	var a domain.Article
	natstest.WaitFor(tb, 10*time.Second, func() error {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+id, nil)
		if r.Status != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", id, r.Status, r.Body)
		}
		if got := r.Header.Get("ETag"); got != syETag(version) {
			return fmt.Errorf("GET %s: ETag %s, want %s", id, got, syETag(version))
		}
		a = syDecodeArticle(tb, r)
		return nil
	})
	if a.Version != version {
		tb.Fatalf("GET %s: body version %d under ETag %s", id, a.Version, syETag(version))
	}
	return a
}

// syWaitGone polls the query API until article id answers 404.
func syWaitGone(tb testing.TB, s *systest.System, id string) systest.Response {
	tb.Helper()
	var r systest.Response
	natstest.WaitFor(tb, 10*time.Second, func() error {
		r = s.Do(http.MethodGet, s.Query()+"/api/articles/"+id, nil)
		if r.Status != http.StatusNotFound {
			return fmt.Errorf("GET %s: %d, want 404", id, r.Status)
		}
		return nil
	})
	return r
}

// syListPage is one answer of GET /api/articles.
type syListPage struct {
	Items      []domain.Article
	NextCursor string
	HasCursor  bool
}

func syGetList(tb testing.TB, s *systest.System, q url.Values) syListPage {
	tb.Helper()
	r := s.Do(http.MethodGet, s.Query()+"/api/articles?"+q.Encode(), nil)
	syExpectStatus(tb, r, http.StatusOK, "list "+q.Encode())
	if mt := syMediaType(r); mt != "application/json" {
		tb.Fatalf("list: Content-Type %q", r.Header.Get("Content-Type"))
	}
	var raw map[string]json.RawMessage
	r.JSON(tb, &raw)
	var p syListPage
	items, ok := raw["items"]
	if !ok {
		tb.Fatalf("list: no items member: %s", r.Body)
	}
	if err := json.Unmarshal(items, &p.Items); err != nil || p.Items == nil {
		tb.Fatalf("list: items is not a list (%v): %s", err, r.Body)
	}
	if nc, ok := raw["next_cursor"]; ok {
		p.HasCursor = true
		if err := json.Unmarshal(nc, &p.NextCursor); err != nil || p.NextCursor == "" {
			tb.Fatalf("list: next_cursor %s is not a non-empty string", nc)
		}
	}
	return p
}

// syListAll follows next_cursor from the first page to the last and returns
// the ids in the order served.
func syListAll(tb testing.TB, s *systest.System, q url.Values, limit int) []string {
	tb.Helper()
	var syIDs []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 200 {
			tb.Fatalf("list %s: more than 200 pages", q.Encode())
		}
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("limit", strconv.Itoa(limit))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		p := syGetList(tb, s, v)
		if len(p.Items) > limit {
			tb.Fatalf("list %s: %d items on a page of %d", v.Encode(), len(p.Items), limit)
		}
		for _, a := range p.Items {
			syIDs = append(syIDs, a.ID)
		}
		if !p.HasCursor {
			return syIDs
		}
		if len(p.Items) != limit {
			tb.Fatalf("list %s: next_cursor after a short page of %d", v.Encode(), len(p.Items))
		}
		cursor = p.NextCursor
	}
}

// sySendRaw writes a request head and the given parts of a body on a fresh
// connection and reads the answer, without waiting to send a whole body.
func sySendRaw(tb testing.TB, target, method string, h http.Header, parts ...[]byte) systest.Response {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	_ = h.Write(w)
	w.WriteString("\r\n")
	for _, p := range parts {
		w.Write(p)
	}
	if err := w.Flush(); err != nil {
		tb.Fatalf("%s %s: write: %v", method, target, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("%s %s: read answer: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return systest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func syIDs(as []domain.Article) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// ---- whole-system tests over HTTP ----

// TestSystemArticleLifecycle drives one article through create, read,
// replace, a stale conditional write, a merge patch, conditional GET and
// delete, over HTTP only.
func TestSystemArticleLifecycle(t *testing.T) {
	_, s := systest.StartSingle(t, 1)

	// Create: 201, Location, ETag "1", defaults and a derived slug.
	created, seq1 := syCreate(t, s, map[string]any{
		"title": "  Hello, World: NATS & Go!  ", "content": "First body", "author_id": "alice", "tags": []string{"go", "nats"},
	})
	want := domain.Article{ID: created.ID, Version: 1, CreatedAt: created.CreatedAt, UpdatedAt: created.CreatedAt,
		Fields: domain.Fields{Title: "Hello, World: NATS & Go!", Slug: "hello-world-nats-and-go", Content: "First body",
			AuthorID: "alice", Status: domain.StatusDraft, Tags: []string{"go", "nats"}}}
	if !sySameArticle(created, want) {
		t.Fatalf("created %+v, want %+v", created, want)
	}
	if created.CreatedAt.IsZero() || time.Since(created.CreatedAt) > time.Minute {
		t.Fatalf("created_at %v is not now", created.CreatedAt)
	}

	// Read by id once the projector made it visible, and in the list.
	if got := syWaitArticle(t, s, created.ID, 1); !sySameArticle(got, created) {
		t.Fatalf("GET after create: %+v, want %+v", got, created)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		p := syGetList(t, s, url.Values{"author_id": {"alice"}})
		if len(p.Items) != 1 || !sySameArticle(p.Items[0], created) || p.HasCursor {
			return fmt.Errorf("list: %+v", p)
		}
		return nil
	})

	// Replace: 200, ETag "2", a later X-Event-Seq, the slug derived anew.
	replaced, seq2 := syWrite(t, s, http.MethodPut, created.ID, map[string]any{
		"title": "Hello again", "content": "Second body", "author_id": "alice", "status": "published", "tags": []string{"go"},
	})
	if seq2 <= seq1 {
		t.Fatalf("X-Event-Seq went from %d to %d", seq1, seq2)
	}
	want = domain.Article{ID: created.ID, Version: 2, CreatedAt: created.CreatedAt, UpdatedAt: replaced.UpdatedAt,
		Fields: domain.Fields{Title: "Hello again", Slug: "hello-again", Content: "Second body", AuthorID: "alice",
			Status: domain.StatusPublished, Tags: []string{"go"}}}
	if !sySameArticle(replaced, want) || replaced.UpdatedAt.Before(created.CreatedAt) {
		t.Fatalf("replaced %+v, want %+v", replaced, want)
	}
	// Read-your-writes: with the token the query API answers version 2 at once.
	r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID, nil, "X-Min-Event-Seq", strconv.FormatUint(seq2, 10))
	syExpectStatus(t, r, http.StatusOK, "GET with X-Min-Event-Seq")
	if got := syDecodeArticle(t, r); !sySameArticle(got, replaced) || r.Header.Get("ETag") != syETag(2) {
		t.Fatalf("GET with X-Min-Event-Seq %d: ETag %s %+v, want %+v", seq2, r.Header.Get("ETag"), got, replaced)
	}

	// A write conditional on the old version fails with 412 and writes nothing.
	before := s.StreamMsgs()
	r = s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+created.ID, map[string]any{
		"title": "Lost update", "content": "x", "author_id": "alice",
	}, "If-Match", syETag(1))
	syExpectProblem(t, r, http.StatusPreconditionFailed, "", "PUT with stale If-Match")
	if n := s.StreamMsgs(); n != before {
		t.Fatalf("a failed conditional write changed the stream from %d to %d messages", before, n)
	}

	// Merge patch (RFC 7396), conditional on the current version: null
	// resets tags, absent fields stay.
	patched, seq3 := syWrite(t, s, http.MethodPatch, created.ID, `{"status":"under_review","tags":null,"content":"Third body"}`,
		"Content-Type", syMergePatch, "If-Match", syETag(2))
	want = replaced
	want.Version, want.Status, want.Tags, want.Content, want.UpdatedAt = 3, domain.StatusUnderReview, []string{}, "Third body", patched.UpdatedAt
	if !sySameArticle(patched, want) || seq3 <= seq2 {
		t.Fatalf("patched (seq %d) %+v, want (after %d) %+v", seq3, patched, seq2, want)
	}

	// Conditional GET: 304 for the current ETag, 200 for an old one.
	if got := syWaitArticle(t, s, created.ID, 3); !sySameArticle(got, patched) {
		t.Fatalf("GET after patch: %+v, want %+v", got, patched)
	}
	r = s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID, nil, "If-None-Match", syETag(3))
	syExpectStatus(t, r, http.StatusNotModified, "GET with If-None-Match of the current version")
	if len(r.Body) != 0 || r.Header.Get("ETag") != syETag(3) {
		t.Fatalf("304 with body %q and ETag %q", r.Body, r.Header.Get("ETag"))
	}
	r = s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID, nil, "If-None-Match", syETag(2))
	syExpectStatus(t, r, http.StatusOK, "GET with If-None-Match of an old version")

	// Versions and audit trail.
	r = s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID+"/versions/1", nil)
	syExpectStatus(t, r, http.StatusOK, "GET version 1")
	if got := syDecodeArticle(t, r); !sySameArticle(got, created) {
		t.Fatalf("version 1: %+v, want %+v", got, created)
	}

	// Delete: 204 with a token; then 404 on reads and writes, and gone from lists.
	r = s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+created.ID, nil, "If-Match", syETag(3))
	syExpectStatus(t, r, http.StatusNoContent, "DELETE")
	if len(r.Body) != 0 || r.Seq() <= seq3 {
		t.Fatalf("DELETE: body %q, X-Event-Seq %d after %d", r.Body, r.Seq(), seq3)
	}
	syExpectProblem(t, syWaitGone(t, s, created.ID), http.StatusNotFound, "", "GET after DELETE")
	syExpectProblem(t, s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+created.ID, nil), http.StatusNotFound, "", "DELETE twice")
	syExpectProblem(t, s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+created.ID, map[string]any{
		"title": "Back", "content": "x", "author_id": "alice"}), http.StatusNotFound, "", "PUT after DELETE")
	natstest.WaitFor(t, 10*time.Second, func() error {
		if p := syGetList(t, s, url.Values{}); len(p.Items) != 0 {
			return fmt.Errorf("list after delete: %d items", len(p.Items))
		}
		return nil
	})

	// The audit trail keeps every event, also of the deleted article.
	r = s.Do(http.MethodGet, s.Query()+"/api/articles/"+created.ID+"/events", nil)
	syExpectStatus(t, r, http.StatusOK, "GET events")
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
		a, _ := syCreate(t, s, map[string]any{
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
		a, _ := syWrite(t, s, http.MethodPatch, order[i], map[string]any{"content": "edited"}, "Content-Type", syMergePatch)
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
		return syIDs(out)
	}

	// Wait until the view holds every article at its latest version.
	natstest.WaitFor(t, 10*time.Second, func() error {
		p := syGetList(t, s, url.Values{"limit": {"100"}})
		if len(p.Items) != n || p.HasCursor {
			return fmt.Errorf("list has %d items (cursor %v), want %d", len(p.Items), p.HasCursor, n)
		}
		for _, a := range p.Items {
			if !sySameArticle(a, latest[a.ID]) {
				return fmt.Errorf("list serves %+v, want %+v", a, latest[a.ID])
			}
		}
		return nil
	})

	// Default: limit 20, newest first, a cursor to the rest.
	p := syGetList(t, s, url.Values{})
	if want := expect("-created_at", func(domain.Article) bool { return true }); len(p.Items) != 20 || !p.HasCursor || !slices.Equal(syIDs(p.Items), want[:20]) {
		t.Fatalf("default page: %d items, cursor %v, ids %v, want the first 20 of %v", len(p.Items), p.HasCursor, syIDs(p.Items), want)
	}

	filters := []struct {
		name string
		q    url.Values
		keep func(domain.Article) bool
	}{
		{"all", url.Values{}, func(domain.Article) bool { return true }},
		{"author", url.Values{"author_id": {"alice"}}, func(a domain.Article) bool { return a.AuthorID == "alice" }},
		{"tag", url.Values{"tag": {"nats"}}, func(a domain.Article) bool { return slices.Contains(a.Tags, "nats") }},
		{"status", url.Values{"status": {"published"}}, func(a domain.Article) bool { return a.Status == domain.StatusPublished }},
		{"author+tag+status", url.Values{"author_id": {"bob"}, "tag": {"go"}, "status": {"draft"}}, func(a domain.Article) bool {
			return a.AuthorID == "bob" && slices.Contains(a.Tags, "go") && a.Status == domain.StatusDraft
		}},
		{"no match", url.Values{"author_id": {"nobody"}}, func(domain.Article) bool { return false }},
	}
	for _, sortBy := range []string{"created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"} {
		for _, f := range filters {
			want := expect(sortBy, f.keep)
			if f.name == "author" && len(want) != 8 {
				t.Fatalf("test data: alice has %d articles, want 8 (two full pages of 4)", len(want))
			}
			for _, limit := range []int{4, 100} {
				q := url.Values{"sort": {sortBy}}
				for k, v := range f.q {
					q[k] = v
				}
				if got := syListAll(t, s, q, limit); !slices.Equal(got, want) {
					t.Errorf("sort %s, filter %s, limit %d:\n got %v\nwant %v", sortBy, f.name, limit, got, want)
				}
			}
		}
	}
	// The orders really differ, so the comparison above can tell them apart.
	if c, u, ti := expect("created_at", func(domain.Article) bool { return true }), expect("updated_at", func(domain.Article) bool { return true }), expect("title", func(domain.Article) bool { return true }); slices.Equal(c, u) || slices.Equal(c, ti) {
		t.Fatal("test data: sort orders coincide")
	}

	// Bad parameters are 400 problems.
	titleCursor := syGetList(t, s, url.Values{"sort": {"title"}, "limit": {"2"}}).NextCursor
	for _, q := range []string{
		"limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5",
		"sort=foo", "sort=created_at,title", "sort=CREATED_AT",
		"cursor=garbage", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{}`)),
		"cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`not json`)),
		"sort=created_at&cursor=" + url.QueryEscape(titleCursor),
		"status=archived",
	} {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles?"+q, nil)
		syExpectProblem(t, r, http.StatusBadRequest, "", "list ?"+q)
	}
	r := s.Do(http.MethodGet, s.Query()+"/api/articles", nil, "X-Min-Event-Seq", "abc")
	syExpectProblem(t, r, http.StatusBadRequest, "", "list with a bad X-Min-Event-Seq")
}

// TestSystemRejectsBadInput sends every kind of bad request to the command
// and query APIs: each is a 4xx problem, none a 500, and none writes an event.
func TestSystemRejectsBadInput(t *testing.T) {
	_, s := systest.StartSingle(t, 1)

	// The limits are inclusive: a request at every limit is accepted.
	tags := make([]string, domain.MaxTags)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d-", i) + strings.Repeat("x", domain.MaxTag-4)
	}
	edge, _ := syCreate(t, s, map[string]any{
		"title": strings.Repeat("é", domain.MaxTitle), "slug": strings.Repeat("a", domain.MaxSlug),
		"content": strings.Repeat("c", domain.MaxContent), "author_id": strings.Repeat("u", domain.MaxAuthorID),
		"status": "published", "tags": tags,
	})
	if len([]rune(edge.Title)) != domain.MaxTitle || len(edge.Tags) != domain.MaxTags {
		t.Fatalf("edge article: %d title runes, %d tags", len([]rune(edge.Title)), len(edge.Tags))
	}

	target, _ := syCreate(t, s, map[string]any{"title": "Target", "content": "c", "author_id": "alice", "tags": []string{"go"}})
	gone, _ := syCreate(t, s, map[string]any{"title": "Gone", "content": "c", "author_id": "alice"})
	syExpectStatus(t, s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+gone.ID, nil), http.StatusNoContent, "DELETE gone")
	s.WaitProjected(10 * time.Second)
	syWaitGone(t, s, gone.ID)
	msgs := s.StreamMsgs()

	base := func() map[string]any {
		return map[string]any{"title": "Valid", "content": "c", "author_id": "alice", "status": "draft", "tags": []string{"go"}}
	}
	elevenTags := make([]string, domain.MaxTags+1)
	for i := range elevenTags {
		elevenTags[i] = fmt.Sprintf("tag-%d", i)
	}
	rules := []struct {
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
	}

	type request struct {
		name    string
		method  string
		url     string
		body    any
		headers []string
		status  int    // 0: any 4xx
		field   string // the errors member a validation problem must name
	}
	var reqs []request
	cmd := s.Cmd() + "/api/articles"
	one := cmd + "/" + target.ID
	for _, rule := range rules {
		full := base()
		if rule.missing {
			delete(full, rule.field)
		} else {
			full[rule.field] = rule.value
		}
		reqs = append(reqs,
			request{"POST " + rule.name, http.MethodPost, cmd, full, nil, http.StatusBadRequest, rule.field},
			request{"PUT " + rule.name, http.MethodPut, one, full, nil, http.StatusBadRequest, rule.field},
			request{"PATCH " + rule.name, http.MethodPatch, one, map[string]any{rule.field: rule.value}, []string{"Content-Type", syMergePatch}, http.StatusBadRequest, rule.field},
		)
	}

	valid, _ := json.Marshal(base())
	deep := strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000)
	withField := func(k string, v any) map[string]any { m := base(); m[k] = v; return m }
	unknownID := uuid.Must(uuid.NewV7()).String()
	for _, w := range []struct {
		method, url, ct string
	}{{http.MethodPost, cmd, "application/json"}, {http.MethodPut, one, "application/json"}, {http.MethodPatch, one, syMergePatch}} {
		ct := []string{"Content-Type", w.ct}
		add := func(name string, body any, status int, field string, headers ...string) {
			reqs = append(reqs, request{w.method + " " + name, w.method, w.url, body, append(slices.Clone(ct), headers...), status, field})
		}
		add("malformed JSON", `{"title": "x", "content": `, http.StatusBadRequest, "")
		add("trailing comma", `{"title": "x",}`, http.StatusBadRequest, "")
		add("unquoted key", `{title: "x"}`, http.StatusBadRequest, "")
		add("trailing garbage", string(valid)+" garbage", http.StatusBadRequest, "")
		add("two JSON values", string(valid)+string(valid), http.StatusBadRequest, "")
		add("trailing bracket", string(valid)+"]", http.StatusBadRequest, "")
		add("unknown field", withField("titel", "typo"), http.StatusBadRequest, "titel")
		add("id", withField("id", target.ID), http.StatusBadRequest, "id")
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
			reqs = append(reqs, request{"POST without a body or Content-Type", w.method, w.url, nil, nil, http.StatusUnsupportedMediaType, ""})
			continue
		}
		if w.method == http.MethodPut {
			add("with the merge patch media type", valid, http.StatusUnsupportedMediaType, "", "Content-Type", syMergePatch)
		}
		for _, im := range []string{"abc", `"0"`, `"-1"`, `"1.5"`, `"1`, `W/"x"`, `"99999999999999999999"`} {
			add("If-Match "+im, valid, http.StatusBadRequest, "", "If-Match", im)
		}
		add("stale If-Match", valid, http.StatusPreconditionFailed, "", "If-Match", syETag(7))
		idURL := strings.TrimSuffix(w.url, target.ID)
		for _, id := range []string{unknownID, gone.ID, "not-a-uuid", strings.ToUpper(target.ID), "{" + target.ID + "}", "urn:uuid:" + target.ID, "articles.*", "%2E%2E"} {
			reqs = append(reqs, request{w.method + " id " + id, w.method, idURL + id, valid, ct, http.StatusNotFound, ""})
		}
	}
	reqs = append(reqs,
		request{"PATCH of the title with a number", http.MethodPatch, one, `{"title": 5}`, []string{"Content-Type", syMergePatch}, http.StatusBadRequest, "title"},
		request{"PATCH of the tags with a list of numbers", http.MethodPatch, one, `{"tags": [1, 2]}`, []string{"Content-Type", syMergePatch}, http.StatusBadRequest, "tags"},
		request{"PATCH of the status with true", http.MethodPatch, one, `{"status": true}`, []string{"Content-Type", syMergePatch}, http.StatusBadRequest, "status"},
		request{"PATCH with invalid JSON inside a member", http.MethodPatch, one, `{"title": tru}`, []string{"Content-Type", syMergePatch}, http.StatusBadRequest, ""},
		request{"DELETE If-Match abc", http.MethodDelete, one, nil, []string{"If-Match", "abc"}, http.StatusBadRequest, ""},
		request{"DELETE stale If-Match", http.MethodDelete, one, nil, []string{"If-Match", syETag(7)}, http.StatusPreconditionFailed, ""},
		request{"DELETE unknown id", http.MethodDelete, cmd + "/" + unknownID, nil, nil, http.StatusNotFound, ""},
		request{"DELETE deleted id", http.MethodDelete, cmd + "/" + gone.ID, nil, nil, http.StatusNotFound, ""},
		request{"DELETE non-UUID id", http.MethodDelete, cmd + "/not-a-uuid", nil, nil, http.StatusNotFound, ""},
		request{"DELETE of the collection", http.MethodDelete, cmd, nil, nil, 0, ""},
		request{"GET of an unknown route", http.MethodGet, s.Cmd() + "/api/nothing", nil, nil, http.StatusNotFound, ""},
		// The query API.
		request{"GET unknown id", http.MethodGet, s.Query() + "/api/articles/" + unknownID, nil, nil, http.StatusNotFound, ""},
		request{"GET deleted id", http.MethodGet, s.Query() + "/api/articles/" + gone.ID, nil, nil, http.StatusNotFound, ""},
		request{"GET non-UUID id", http.MethodGet, s.Query() + "/api/articles/not-a-uuid", nil, nil, http.StatusNotFound, ""},
		request{"GET bad X-Min-Event-Seq", http.MethodGet, s.Query() + "/api/articles/" + target.ID, nil, []string{"X-Min-Event-Seq", "-1"}, http.StatusBadRequest, ""},
		request{"GET version abc", http.MethodGet, s.Query() + "/api/articles/" + target.ID + "/versions/abc", nil, nil, http.StatusBadRequest, ""},
		request{"GET version 0", http.MethodGet, s.Query() + "/api/articles/" + target.ID + "/versions/0", nil, nil, http.StatusBadRequest, ""},
		request{"GET version 2 of a version-1 article", http.MethodGet, s.Query() + "/api/articles/" + target.ID + "/versions/2", nil, nil, http.StatusNotFound, ""},
		request{"GET versions of an unknown id", http.MethodGet, s.Query() + "/api/articles/" + unknownID + "/versions", nil, nil, http.StatusNotFound, ""},
		request{"GET events of an unknown id", http.MethodGet, s.Query() + "/api/articles/" + unknownID + "/events", nil, nil, http.StatusNotFound, ""},
		request{"GET events of a non-UUID id", http.MethodGet, s.Query() + "/api/articles/x.y/events", nil, nil, http.StatusNotFound, ""},
		request{"POST to the query API", http.MethodPost, s.Query() + "/api/articles", valid, nil, 0, ""},
	)

	for _, rq := range reqs {
		r := s.Do(rq.method, rq.url, rq.body, rq.headers...)
		if r.Status >= 500 {
			t.Errorf("%s: %d %s", rq.name, r.Status, r.Body)
			continue
		}
		t.Run(rq.name, func(t *testing.T) { syExpectProblem(t, r, rq.status, rq.field, rq.name) })
	}

	// Bodies over the limit, with a Content-Length or chunked, are 413.
	// They go over a raw connection: the server answers without reading
	// the rest, and a client still writing it could see a reset instead.
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for _, target := range []struct{ method, url, ct string }{
		{http.MethodPost, cmd, "application/json"}, {http.MethodPut, one, "application/json"}, {http.MethodPatch, one, syMergePatch},
	} {
		h := http.Header{"Content-Type": {target.ct}, "Content-Length": {strconv.Itoa(1<<20 + 1)}}
		syExpectProblem(t, sySendRaw(t, target.url, target.method, h, []byte(`{"content":"`)), http.StatusRequestEntityTooLarge, "", target.method+" with Content-Length over 1 MiB")
		h = http.Header{"Content-Type": {target.ct}, "Transfer-Encoding": {"chunked"}}
		parts := [][]byte{[]byte("1\r\n{\r\n")}
		for sent := 1; sent+len(chunk) <= 1<<20; sent += len(chunk) {
			parts = append(parts, []byte(fmt.Sprintf("%x\r\n", len(chunk))), chunk, []byte("\r\n"))
		}
		parts = append(parts, []byte(fmt.Sprintf("%x\r\n", len(chunk)))) // the chunk that crosses the limit
		syExpectProblem(t, sySendRaw(t, target.url, target.method, h, parts...), http.StatusRequestEntityTooLarge, "", target.method+" chunked over 1 MiB")
	}
	// Just under the limit is not too large (it is a validation error).
	r := s.Do(http.MethodPost, cmd, []byte(`{"title":"Big","author_id":"a","content":"`+strings.Repeat("x", 1<<20-100)+`"}`))
	syExpectProblem(t, r, http.StatusBadRequest, "content", "POST just under 1 MiB")

	if n := s.StreamMsgs(); n != msgs {
		t.Fatalf("bad requests wrote %d events", n-msgs)
	}
	if got := syWaitArticle(t, s, target.ID, 1); !sySameArticle(got, target) {
		t.Fatalf("target changed: %+v, want %+v", got, target)
	}
}
