package systest_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// noRedirects is a client of the system that shows redirects instead of
// following them (its exchanges are checked against the document too).
func noRedirects(s *systest.System) *http.Client {
	return &http.Client{Transport: s.Client.Transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// publishedNewestFirst creates n published articles and a draft between
// each, and returns the published ones newest first.
func publishedNewestFirst(t *testing.T, s *systest.System, n int) []domain.Article {
	t.Helper()
	var out []domain.Article
	for i := 0; i < n; i++ {
		a, _ := s.Create(map[string]any{"title": fmt.Sprintf("Published %02d", i), "content": fmt.Sprintf("Body %d.\n\nSecond paragraph.", i), "author_id": "ada", "status": "published", "tags": []string{"go"}})
		out = append(out, a)
		s.Create(map[string]any{"title": fmt.Sprintf("Draft %02d", i), "content": "secret", "author_id": "ada"})
	}
	slices.Reverse(out)
	s.WaitProjected(20 * time.Second)
	natstest.WaitFor(t, 10*time.Second, func() error {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles?status=published&limit=100", nil)
		if !strings.Contains(string(r.Body), out[0].ID) {
			return fmt.Errorf("the view lacks %s", out[0].ID)
		}
		return nil
	})
	return out
}

// TestPagesAndAtomFeed reads the pages as a client without JavaScript
// would: the home page lists published articles newest first, a page at a
// time, no drafts; an article's page is at its canonical URL, to which
// the short URL and a stale slug redirect; the Atom feed lists the latest
// 20 published articles.
func TestPagesAndAtomFeed(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	pub := publishedNewestFirst(t, s, 23)
	q := s.Query()
	c := noRedirects(s)

	// The home page, and the second page from its "Older" link.
	r := s.Do(http.MethodGet, q+"/", nil, systest.Anonymous...)
	r.Require(t, http.StatusOK)
	home := string(r.Body)
	if strings.Contains(home, "Draft") {
		t.Fatal("the home page lists a draft")
	}
	last := -1
	for i, a := range pub[:20] {
		at := strings.Index(home, `href="/articles/`+a.ID+`/`+a.Slug+`"`)
		if at < 0 || at < last {
			t.Fatalf("the home page does not list %q (%d) after the one before:\n%s", a.Title, i, home)
		}
		last = at
	}
	if strings.Contains(home, pub[20].ID) {
		t.Fatal("the first page has more than 20 articles")
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	older := home[strings.Index(home, `href="/?cursor=`)+len(`href="`):]
	older = strings.ReplaceAll(older[:strings.Index(older, `"`)], "&amp;", "&")
	page2 := string(s.Do(http.MethodGet, q+older, nil).Body)
	for _, a := range pub[20:] {
		if !strings.Contains(page2, a.ID) {
			t.Fatalf("the second page lacks %q", a.Title)
		}
	}
	if strings.Contains(page2, `rel="next"`) || strings.Contains(page2, pub[0].ID) {
		t.Fatal("the second page is not the last, or repeats the first")
	}

	// An article: the canonical URL, redirects to it, 404s.
	a := pub[3]
	canonical := "/articles/" + a.ID + "/" + a.Slug
	for _, path := range []string{"/articles/" + a.ID, "/articles/" + a.ID + "/stale-slug"} {
		r, err := systest.Do(c, http.MethodGet, q+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusMovedPermanently || r.Header.Get("Location") != canonical {
			t.Fatalf("GET %s: %d Location %q, want 301 to %s", path, r.Status, r.Header.Get("Location"), canonical)
		}
	}
	r = s.Do(http.MethodGet, q+canonical, nil)
	r.Require(t, http.StatusOK)
	if page := string(r.Body); !strings.Contains(page, "<h1>"+a.Title+"</h1>") || !strings.Contains(page, "<p>Second paragraph.</p>") {
		t.Fatalf("the article page lacks its title or paragraphs: %s", page)
	}
	drafts := s.Do(http.MethodGet, q+"/api/articles?status=draft&limit=1", nil)
	var list struct{ Items []domain.Article }
	drafts.JSON(t, &list)
	for _, path := range []string{"/articles/" + list.Items[0].ID + "/" + list.Items[0].Slug, "/articles/" + list.Items[0].ID, "/articles/not-an-id/x"} {
		r := s.Do(http.MethodGet, q+path, nil)
		if r.Status != http.StatusNotFound || r.MediaType() != "text/html" || strings.Contains(string(r.Body), "secret") {
			t.Fatalf("GET %s: %d %s %.200s, want a 404 page", path, r.Status, r.MediaType(), r.Body)
		}
	}

	// The Atom feed.
	r = s.Do(http.MethodGet, q+"/feed.xml", nil)
	r.Require(t, http.StatusOK)
	if r.MediaType() != "application/atom+xml" {
		t.Fatalf("feed.xml is %s", r.MediaType())
	}
	requireAtom(t, r.Body, q, pub[:20])
}

// atom is what RFC 4287 requires of a feed and its entries (atom:feed:
// id, title, updated, an author or authors on every entry; atom:entry: id,
// title, updated, content or an alternate link).
type atom struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"http://www.w3.org/2005/Atom id"`
	Title   string   `xml:"http://www.w3.org/2005/Atom title"`
	Updated string   `xml:"http://www.w3.org/2005/Atom updated"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"http://www.w3.org/2005/Atom link"`
	Entries []struct {
		ID        string `xml:"http://www.w3.org/2005/Atom id"`
		Title     string `xml:"http://www.w3.org/2005/Atom title"`
		Updated   string `xml:"http://www.w3.org/2005/Atom updated"`
		Published string `xml:"http://www.w3.org/2005/Atom published"`
		Author    string `xml:"http://www.w3.org/2005/Atom author>name"`
		Content   struct {
			Type string `xml:"type,attr"`
			Text string `xml:",chardata"`
		} `xml:"http://www.w3.org/2005/Atom content"`
		Link struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"http://www.w3.org/2005/Atom link"`
	} `xml:"http://www.w3.org/2005/Atom entry"`
}

func requireAtom(t *testing.T, body []byte, base string, want []domain.Article) {
	t.Helper()
	var f atom
	if err := xml.Unmarshal(body, &f); err != nil {
		t.Fatalf("feed.xml is not an Atom feed: %v\n%.500s", err, body)
	}
	iri := func(s string) bool { u, err := url.Parse(s); return err == nil && u.Scheme != "" }
	date := func(s string) bool { _, err := time.Parse(time.RFC3339, s); return err == nil }
	if !iri(f.ID) || f.Title == "" || !date(f.Updated) {
		t.Fatalf("feed id %q title %q updated %q", f.ID, f.Title, f.Updated)
	}
	self := false
	for _, l := range f.Links {
		self = self || l.Rel == "self" && l.Href == base+"/feed.xml"
	}
	if !self {
		t.Fatalf("no self link to %s/feed.xml: %+v", base, f.Links)
	}
	if len(f.Entries) != len(want) {
		t.Fatalf("the feed has %d entries, want %d", len(f.Entries), len(want))
	}
	for i, e := range f.Entries {
		a := want[i]
		if e.ID != "urn:uuid:"+a.ID || e.Title != a.Title || !date(e.Updated) || !date(e.Published) || e.Author != a.AuthorID ||
			e.Content.Type != "text" || e.Content.Text != a.Content || e.Link.Rel != "alternate" || e.Link.Href != base+"/articles/"+a.ID+"/"+a.Slug {
			t.Fatalf("entry %d: %+v, want article %+v", i, e, a)
		}
	}
}
