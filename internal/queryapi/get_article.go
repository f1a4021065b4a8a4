package queryapi

import (
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// getArticle handles GET /api/articles/{id}.
func (s *Service) getArticle(c *fiber.Ctx) error {
	if err := httpx.Params(c); err != nil {
		return err
	}
	id, err := httpx.ArticleID(c)
	if err != nil {
		return err
	}
	token, err := s.minSeq(c)
	if err != nil {
		return err
	}
	e, b, err := s.article(c.UserContext(), id, token)
	if err != nil {
		return err
	}
	// What the reader may not see is answered as an id never created.
	if e == nil || e.deleted || !e.visibleTo(c) {
		return fmt.Errorf("article %s: %w", id, domain.ErrNotFound)
	}
	if e.status != domain.StatusPublished {
		c.Set(fiber.HeaderCacheControl, "private") // for its author's or an editor's eyes only
	}
	c.Set(fiber.HeaderETag, e.etag)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && (inm == e.etag || httpx.NoneMatch(inm, e.etag)) {
		return c.SendStatus(http.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(b)
}

func badRequest(detail string) error { return httpx.NewProblem(http.StatusBadRequest, detail) }
