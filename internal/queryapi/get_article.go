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
	if e == nil || e.deleted {
		return fmt.Errorf("article %s: %w", id, domain.ErrNotFound)
	}
	c.Set(fiber.HeaderETag, e.etag)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && (inm == e.etag || inm == "*") {
		return c.SendStatus(http.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(b)
}

func badRequest(detail string) error { return httpx.NewProblem(http.StatusBadRequest, detail) }
