package queryapi

import (
	"bytes"
	"embed"
	"encoding/xml"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// The blog for people: server-rendered pages (html/template, so every
// title and body is escaped as text) that work without JavaScript, a
// small script that keeps the home page live from the feed, and an Atom
// feed. Pages show what an anonymous reader may see: published articles.

//go:embed web/*.html
var pageFiles embed.FS

//go:embed web/static/live.js web/static/site.css
var staticFiles embed.FS

var pages = map[string]*template.Template{
	"home":    template.Must(template.ParseFS(pageFiles, "web/layout.html", "web/home.html")),
	"article": template.Must(template.ParseFS(pageFiles, "web/layout.html", "web/article.html")),
	"error":   template.Must(template.ParseFS(pageFiles, "web/layout.html", "web/error.html")),
}

// pageSize is how many articles a page of the home page (and the Atom
// feed) lists.
const pageSize = 20

// pageSecurity are the headers of every page: scripts only from this
// server, none inline, so no title or body can run one.
var pageSecurity = [][2]string{
	{"Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "same-origin"},
}

// pageRoutes installs the pages.
func (s *Service) pageRoutes(app *fiber.App) {
	app.Get("/", s.homePage)
	app.Get("/articles/:id", s.articlePage)
	app.Get("/articles/:id/:slug", s.articlePage)
	app.Get("/feed.xml", s.atomFeed)
	app.Get("/static/:file", staticFile)
}

func render(c *fiber.Ctx, status int, name string, data any) error {
	var b bytes.Buffer
	if err := pages[name].ExecuteTemplate(&b, name+".html", data); err != nil {
		return err
	}
	for _, h := range pageSecurity {
		c.Set(h[0], h[1])
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).Send(b.Bytes())
}

func errorPage(c *fiber.Ctx, status int, message string) error {
	return render(c, status, "error", map[string]any{"Title": http.StatusText(status), "Message": message})
}

// listItem is an article on the home page.
type listItem struct {
	ID, Title, URL, Author string
	Version                int
	Created                time.Time
	Tags                   []string
}

func articlePath(id, slug string) string { return "/articles/" + id + "/" + slug }

// published lists published articles, newest first, after pivot.
func (s *Service) published(pivot *entry, limit int) ([]*entry, bool) {
	return s.view.page(byCreated, true, pivot, filter{status: domain.StatusPublished}, limit)
}

// homePage handles GET /: published articles, newest first, a page at a
// time (?cursor= from the "Older articles" link).
func (s *Service) homePage(c *fiber.Ctx) error {
	var pivot *entry
	if cur := c.Query("cursor"); cur != "" {
		var err error
		if pivot, err = decodeCursor(cur, "-created_at"); err != nil {
			return errorPage(c, http.StatusBadRequest, "That page link is not one this blog made; start from the first page.")
		}
	}
	since := s.view.seen() // the feed resumes after what the page shows
	items, more := s.published(pivot, pageSize)
	data := struct {
		Title, Canonical, Older string
		Items                   []listItem
		Since                   uint64
		Live                    bool
	}{Title: "inkstream", Since: since, Live: pivot == nil}
	for _, e := range items {
		data.Items = append(data.Items, listItem{ID: e.id, Title: e.title, URL: articlePath(e.id, e.slug), Author: e.authorID, Version: e.version, Created: e.createdAt, Tags: e.tags})
	}
	if more && len(items) > 0 {
		data.Older = "/?cursor=" + url.QueryEscape(encodeCursor("-created_at", items[len(items)-1]))
	}
	return render(c, http.StatusOK, "home", data)
}

// publishedArticle returns the article id if an anonymous reader may see
// it, or nil.
func (s *Service) publishedArticle(c *fiber.Ctx, id string) (*domain.Article, error) {
	e, body, err := s.article(c.UserContext(), id, 0)
	if err != nil || e == nil || e.deleted || e.status != domain.StatusPublished {
		return nil, err
	}
	var a domain.Article
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// articlePage handles GET /articles/{id}/{slug}, the canonical URL of an
// article; /articles/{id} and a stale slug redirect there (301).
func (s *Service) articlePage(c *fiber.Ctx) error {
	id, err := httpx.ArticleID(c)
	if err != nil {
		return errorPage(c, http.StatusNotFound, "There is no such article.")
	}
	a, err := s.publishedArticle(c, id)
	if err != nil {
		return err
	}
	if a == nil {
		return errorPage(c, http.StatusNotFound, "There is no such article, or it is not published.")
	}
	if c.Params("slug") != a.Slug {
		return c.Redirect(articlePath(a.ID, a.Slug), http.StatusMovedPermanently)
	}
	var paragraphs []string
	for _, p := range strings.Split(strings.ReplaceAll(a.Content, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			paragraphs = append(paragraphs, p)
		}
	}
	return render(c, http.StatusOK, "article", map[string]any{
		"Title": a.Title + " · inkstream", "Canonical": s.baseURL(c) + articlePath(a.ID, a.Slug),
		"Article": a, "Paragraphs": paragraphs,
	})
}

// baseURL is the query API as its clients reach it.
func (s *Service) baseURL(c *fiber.Ctx) string {
	if s.opts.PublicURL != "" {
		return s.opts.PublicURL
	}
	return c.Protocol() + "://" + c.Hostname()
}

func staticFile(c *fiber.Ctx) error {
	name := c.Params("file")
	var ct string
	switch name {
	case "live.js":
		ct = "text/javascript; charset=utf-8"
	case "site.css":
		ct = "text/css; charset=utf-8"
	default:
		return httpx.NewProblem(http.StatusNotFound, "no such file")
	}
	b, err := staticFiles.ReadFile("web/static/" + name)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ct)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(b)
}

// Atom (RFC 4287).
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Gen     string      `xml:"generator"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomEntry struct {
	ID         string         `xml:"id"`
	Title      atomText       `xml:"title"`
	Updated    string         `xml:"updated"`
	Published  string         `xml:"published"`
	Author     atomPerson     `xml:"author"`
	Links      []atomLink     `xml:"link"`
	Categories []atomCategory `xml:"category"`
	Content    atomText       `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

// atomFeed handles GET /feed.xml: the latest published articles, newest
// first, as an Atom feed.
func (s *Service) atomFeed(c *fiber.Ctx) error {
	base := s.baseURL(c)
	items, _ := s.published(nil, pageSize)
	f := atomFeed{ID: base + "/feed.xml", Title: "inkstream", Gen: "inkstream", Updated: "1970-01-01T00:00:00Z",
		Links: []atomLink{{Rel: "self", Type: "application/atom+xml", Href: base + "/feed.xml"}, {Rel: "alternate", Type: "text/html", Href: base + "/"}}}
	var newest time.Time
	for _, e := range items {
		a, err := s.publishedArticle(c, e.id)
		if err != nil {
			return err
		}
		if a == nil {
			continue // withdrawn since the list was taken
		}
		if a.UpdatedAt.After(newest) {
			newest = a.UpdatedAt
		}
		entry := atomEntry{ID: "urn:uuid:" + a.ID, Title: atomText{Type: "text", Text: a.Title},
			Updated: a.UpdatedAt.UTC().Format(time.RFC3339), Published: a.CreatedAt.UTC().Format(time.RFC3339),
			Author: atomPerson{Name: a.AuthorID}, Links: []atomLink{{Rel: "alternate", Type: "text/html", Href: base + articlePath(a.ID, a.Slug)}},
			Content: atomText{Type: "text", Text: a.Content}}
		for _, t := range a.Tags {
			entry.Categories = append(entry.Categories, atomCategory{Term: t})
		}
		f.Entries = append(f.Entries, entry)
	}
	if !newest.IsZero() {
		f.Updated = newest.UTC().Format(time.RFC3339)
	}
	b, err := xml.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/atom+xml; charset=utf-8")
	return c.Send(append([]byte(xml.Header), b...))
}
