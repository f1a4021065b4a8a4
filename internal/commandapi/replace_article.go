package commandapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// replaceArticle handles PUT /api/articles/{id}: every mutable field.
func (s *Service) replaceArticle(c *fiber.Ctx) error {
	by := httpx.PrincipalOf(c)
	if err := domain.Attempt(by, domain.ActChange); err != nil {
		return err
	}
	if err := checkContentType(c, fiber.MIMEApplicationJSON); err != nil {
		return err
	}
	id, err := httpx.ArticleID(c)
	if err != nil {
		return err
	}
	fields, err := decodeArticle(c.Body())
	if err != nil {
		return err
	}
	// Normalized once here: the policy and the decision normalize again,
	// which then has no slug to make (making one is a fifth of the
	// handler's CPU when the title gives it).
	fields = fields.Normalize(id)
	if err := fields.Validate(); err != nil {
		return err
	}
	return s.change(c, by, id, http.StatusOK, func(m domain.Meta, ifMatch *int) domain.Command {
		return domain.ReplaceArticle{Meta: m, ID: id, Fields: fields, IfMatch: ifMatch}
	})
}
