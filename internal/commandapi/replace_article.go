package commandapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// replaceArticle handles PUT /api/articles/{id}: every mutable field.
func (s *Service) replaceArticle(c *fiber.Ctx) error {
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
	if err := fields.Normalize(id).Validate(); err != nil {
		return err
	}
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	key, hash, err := idempotency(c)
	if err != nil {
		return err
	}
	r, err := s.write(c.UserContext(), id, false, key, hash, func(m domain.Meta) domain.Command {
		return domain.ReplaceArticle{Meta: m, ID: id, Fields: fields, IfMatch: ifMatch}
	})
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, r)
}
