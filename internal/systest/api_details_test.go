package systest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/systest"
)

// TestAPIDetails: the slug filter; unknown query parameters are 400s;
// If-None-Match with weak comparison, lists and *; Location on the query
// API; a GET of an article on the command API points to the query API;
// every problem type resolves to its section of /docs.
func TestAPIDetails(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, r := s.Create(map[string]any{"title": "Café Über Straße", "content": "c", "author_id": "ada", "status": "published"})
	if a.Slug != "cafe-uber-strasse" {
		t.Fatalf("slug %q", a.Slug)
	}
	if loc := r.Header.Get("Location"); loc != s.Query()+"/api/articles/"+a.ID {
		t.Fatalf("Location %q, want the article on the query API", loc)
	}
	s.Create(map[string]any{"title": "Привет, мир", "content": "c", "author_id": "ada", "status": "published"})
	s.WaitProjected(10 * time.Second)
	s.WaitArticle(a.ID, 1)

	var list struct{ Items []struct{ ID, Slug string } }
	s.Do(http.MethodGet, s.Query()+"/api/articles?slug=cafe-uber-strasse", nil).JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != a.ID {
		t.Fatalf("?slug=cafe-uber-strasse lists %+v", list.Items)
	}
	s.Do(http.MethodGet, s.Query()+"/api/articles?slug=privet-mir", nil).JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].Slug != "privet-mir" {
		t.Fatalf("?slug=privet-mir lists %+v", list.Items)
	}

	for _, u := range []string{
		s.Query() + "/api/articles?author=ada", s.Query() + "/api/articles?limit=1&Limit=2",
		s.Query() + "/api/articles/" + a.ID + "?fields=title", s.Query() + "/api/articles/" + a.ID + "/versions?x=1",
		s.Query() + "/api/articles?slug=Not_A_Slug",
	} {
		p := s.Do(http.MethodGet, u, nil).RequireProblem(t, http.StatusBadRequest, "")
		if !strings.Contains(p.Detail, "query parameter") && !strings.Contains(u, "slug=") {
			t.Fatalf("%s: detail %q does not name the parameter", u, p.Detail)
		}
	}
	s.Do(http.MethodPatch, s.Cmd()+"/api/articles/"+a.ID+"?dry_run=1", map[string]any{"content": "x"}, "Content-Type", "application/merge-patch+json").RequireProblem(t, http.StatusBadRequest, "")

	for _, inm := range []string{`"1"`, `W/"1"`, `*`, `"7", "1"`, `W/"9",W/"1"`} {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+a.ID, nil, "If-None-Match", inm)
		if r.Status != http.StatusNotModified || r.Header.Get("ETag") != `"1"` {
			t.Fatalf("If-None-Match %s: %d ETag %q, want 304", inm, r.Status, r.Header.Get("ETag"))
		}
	}
	for _, inm := range []string{`"2"`, `W/"2", "3"`, `1`} {
		s.Do(http.MethodGet, s.Query()+"/api/articles/"+a.ID, nil, "If-None-Match", inm).Require(t, http.StatusOK)
	}

	for _, path := range []string{"/api/articles/" + a.ID, "/api/articles"} {
		r := s.Do(http.MethodGet, s.Cmd()+path, nil)
		p := r.RequireProblem(t, http.StatusMethodNotAllowed, "")
		want := s.Query() + path
		if !strings.Contains(p.Detail, want) || r.Header.Get("Link") != "<"+want+`>; rel="alternate"` || r.Header.Get("Allow") == "" {
			t.Fatalf("GET %s on the command API: %q, Link %q, Allow %q", path, p.Detail, r.Header.Get("Link"), r.Header.Get("Allow"))
		}
	}

	// Problem types resolve, on either API, to their section of /docs.
	c := noRedirects(s)
	p := s.Do(http.MethodGet, s.Query()+"/api/articles/"+a.ID+"/nope", nil).RequireProblem(t, http.StatusNotFound, "")
	for _, base := range []string{s.Query(), s.Cmd()} {
		u, err := url.Parse(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		typ, err := u.Parse(p.Type)
		if err != nil {
			t.Fatal(err)
		}
		r, err := systest.Do(c, http.MethodGet, typ.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusFound || r.Header.Get("Location") != "/docs#section/Problem-types/not-found" {
			t.Fatalf("problem type %s: %d Location %q", typ, r.Status, r.Header.Get("Location"))
		}
		s.Do(http.MethodGet, base+"/docs", nil).Require(t, http.StatusOK)
		s.Do(http.MethodGet, base+"/problems/no-such-kind", nil).RequireProblem(t, http.StatusNotFound, "")
	}
}

// TestCORS: without -cors-origins no CORS header is sent; with it, both
// APIs answer preflights for their origins and expose their headers.
func TestCORS(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	preflight := func(base, method string, origin ...string) systest.Response {
		o := "https://front.example"
		if len(origin) > 0 {
			o = origin[0]
		}
		return s.Do(http.MethodOptions, base+"/api/articles", nil, "Origin", o,
			"Access-Control-Request-Method", method, "Access-Control-Request-Headers", "authorization,content-type,if-match")
	}
	for _, base := range []string{s.Cmd(), s.Query()} {
		if r := preflight(base, http.MethodGet); r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s: CORS headers without -cors-origins", base)
		}
		if r := s.Do(http.MethodGet, base+"/healthz", nil, "Origin", "https://front.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s: CORS headers without -cors-origins", base)
		}
	}
	web := config.Web{CORSOrigins: []string{"https://front.example"}}
	qc := systest.QueryConfig(s.URL, 1)
	qc.Web = web
	q := "http://" + s.StartQueryAPI(qc).Addr
	cc := systest.CommandConfig(s.URL, 1)
	cc.Web = web
	cmd := "http://" + s.StartCommandAPI(cc).Addr
	for _, tc := range []struct{ base, method string }{{q, http.MethodGet}, {cmd, http.MethodPost}, {cmd, http.MethodPatch}} {
		r := preflight(tc.base, tc.method)
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://front.example" ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), tc.method) ||
			!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "if-match") {
			t.Fatalf("preflight of %s %s: %d %v", tc.method, tc.base, r.Status, r.Header)
		}
		if r := preflight(tc.base, tc.method, "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("another origin allowed")
		}
	}
	a, _ := s.Create(map[string]any{"title": "Cross", "content": "c", "author_id": "ada"}, "Origin", "https://front.example")
	r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil, "Origin", "https://front.example")
	if r.Header.Get("Access-Control-Allow-Origin") != "https://front.example" || !strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Expose-Headers")), "etag") {
		t.Fatalf("GET with Origin: %v", r.Header)
	}
	if r := s.Do(http.MethodGet, q+"/api/articles/"+a.ID, nil, "Origin", "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin got %q", r.Header.Get("Access-Control-Allow-Origin"))
	}
}
