package commandapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// createArticle handles POST /api/articles.
func (s *Service) createArticle(c *fiber.Ctx) error {
	by := httpx.PrincipalOf(c)
	if err := domain.Attempt(by, domain.ActCreate); err != nil {
		return err
	}
	if err := checkContentType(c, fiber.MIMEApplicationJSON); err != nil {
		return err
	}
	fields, err := decodeArticle(c.Body())
	if err != nil {
		return err
	}
	key, hash, err := idempotency(c, by)
	if err != nil {
		return err
	}
	uid, err := uuid.NewV7()
	if err != nil {
		return err
	}
	id := uid.String()
	// Normalized once here: the policy and the decision normalize again,
	// which then has no slug to make.
	fields = fields.Normalize(id)
	r, err := s.write(c.UserContext(), request{id: id, fresh: true, key: key, hash: hash, by: by, command: func(m domain.Meta) domain.Command {
		return domain.CreateArticle{Meta: m, ID: id, Fields: fields}
	}})
	if err != nil {
		return err
	}
	if r.state.Article.ID != id {
		// An idempotent retry: the original article was answered.
		s.aggs.forget(id)
	}
	c.Location(s.opts.PublicQueryURL + "/api/articles/" + r.state.Article.ID)
	return respond(c, http.StatusCreated, r)
}
