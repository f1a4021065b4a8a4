package queryapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// List limits.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

var sorts = map[string]struct {
	key  sortKey
	desc bool
}{
	"created_at": {byCreated, false}, "-created_at": {byCreated, true},
	"updated_at": {byUpdated, false}, "-updated_at": {byUpdated, true},
	"title": {byTitle, false}, "-title": {byTitle, true},
}

// listParams are the query parameters of GET /api/articles.
var listParams = []string{"limit", "cursor", "author_id", "tag", "status", "slug", "sort"}

// cursor is where the next page starts: the sort value and id of the last
// item of the page before. Clients treat it as opaque.
type cursor struct {
	Sort  string    `json:"s"`
	Time  time.Time `json:"t,omitempty"`
	Title string    `json:"n,omitempty"`
	ID    string    `json:"i"`
}

func encodeCursor(sort string, e *entry) string {
	c := cursor{Sort: sort, ID: e.id}
	switch sorts[sort].key {
	case byCreated:
		c.Time = e.createdAt
	case byUpdated:
		c.Time = e.updatedAt
	case byTitle:
		c.Title = e.title
	}
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sort string) (*entry, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return nil, badRequest("cursor is not one this API returned")
	}
	if c.Sort != sort {
		return nil, badRequest("cursor belongs to sort " + strconv.Quote(c.Sort) + "; keep the sort of the first page")
	}
	return &entry{id: c.ID, createdAt: c.Time, updatedAt: c.Time, title: c.Title}, nil
}

// viewReaches waits up to MinSeqWait until the view holds every event up
// to token: until it has folded the log up to it, or, when it follows the
// bucket, until the projectors have and the view has followed them.
func (s *Service) viewReaches(ctx context.Context, token uint64) bool {
	if s.opts.FoldStream {
		return s.foldedWithin(ctx, token, s.opts.MinSeqWait)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.MinSeqWait)
	defer cancel()
	return s.progress.reaches(ctx, token, s.view)
}

// listArticles handles GET /api/articles.
func (s *Service) listArticles(c *fiber.Ctx) error {
	if err := httpx.Params(c, listParams...); err != nil {
		return err
	}
	limit := DefaultLimit
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return badRequest("limit must be a whole number from 1 to 100")
		}
		limit = n
	}
	sort := c.Query("sort", "-created_at")
	order, ok := sorts[sort]
	if !ok {
		return badRequest("sort must be one of created_at, -created_at, updated_at, -updated_at, title, -title")
	}
	f := filter{authorID: c.Query("author_id"), tag: c.Query("tag"), slug: c.Query("slug"), status: domain.Status(c.Query("status")), reader: httpx.PrincipalOf(c)}
	if f.slug != "" && !domain.IsSlug(f.slug) {
		return badRequest("slug must be lower-case letters and digits separated by single hyphens, at most 200 characters")
	}
	switch f.status {
	case "", domain.StatusDraft, domain.StatusUnderReview, domain.StatusPublished:
	default:
		return badRequest("status must be one of draft, under_review, published")
	}
	var pivot *entry
	if cur := c.Query("cursor"); cur != "" {
		var err error
		if pivot, err = decodeCursor(cur, sort); err != nil {
			return err
		}
	}
	token, err := s.minSeq(c)
	if err != nil {
		return err
	}
	if token > 0 && !s.viewReaches(c.UserContext(), token) {
		p := httpx.NewProblem(http.StatusServiceUnavailable, "the read model has not reached X-Min-Event-Seq yet; retry shortly")
		p.RetryAfter = 1
		return p
	}
	var items []*entry
	var more bool
	// A status the reader may not see for the author asked (or any, or
	// their own) lists nothing: no need to look.
	if owner := cmp.Or(f.authorID, f.reader.Subject); f.status == "" || domain.Visible(f.reader, f.status, owner) {
		items, more = s.view.page(order.key, order.desc, pivot, f, limit)
	}
	bodies, err := s.pageBodies(c.UserContext(), items)
	if err != nil {
		return err
	}
	// The page is put together in the response's own body buffer, which
	// fasthttp reuses from request to request: the articles' encoded JSON
	// is copied once and nothing is allocated for it.
	r := c.Response()
	r.ResetBody()
	r.AppendBodyString(`{"items":[`)
	first := true
	for _, b := range bodies {
		if b == nil {
			continue // deleted since the page was taken
		}
		if !first {
			r.AppendBodyString(",")
		}
		first = false
		r.AppendBody(b)
	}
	r.AppendBodyString("]")
	if more && len(items) > 0 {
		r.AppendBodyString(`,"next_cursor":"`)
		r.AppendBodyString(encodeCursor(sort, items[len(items)-1]))
		r.AppendBodyString(`"`)
	}
	r.AppendBodyString("}")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return nil
}

// pageBodies returns the JSON of each entry of a page: from the body cache,
// else from KV, all missing ones in one batch, else replayed from the log.
// An article deleted meanwhile has a nil body.
func (s *Service) pageBodies(ctx context.Context, items []*entry) ([][]byte, error) {
	out := make([][]byte, len(items))
	var missing []string
	for i, e := range items {
		if b, ok := s.bodies.Get(e.id); ok && b.version == e.version {
			out[i] = b.json
		} else {
			missing = append(missing, e.id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	kves, err := s.snaps.GetMany(ctx, missing)
	if err != nil {
		return nil, err
	}
	for i, e := range items {
		if out[i] != nil {
			continue
		}
		if kve, ok := kves[e.id]; ok && !kve.Deleted {
			if _, b, ok := s.fromKV(kve, e.seq); ok {
				out[i] = b
				continue
			}
		}
		_, b, err := s.replay(ctx, e.id, e.seq)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
