package commandapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// MIMEMergePatch is the media type of a JSON merge patch (RFC 7396).
const MIMEMergePatch = "application/merge-patch+json"

// patchArticle handles PATCH /api/articles/{id} with a JSON merge patch.
func (s *Service) patchArticle(c *fiber.Ctx) error {
	by := httpx.PrincipalOf(c)
	if err := domain.Attempt(by, domain.ActChange); err != nil {
		return err
	}
	if err := checkContentType(c, MIMEMergePatch, fiber.MIMEApplicationJSON); err != nil {
		return err
	}
	id, err := httpx.ArticleID(c)
	if err != nil {
		return err
	}
	p, err := decodePatch(c.Body())
	if err != nil {
		return err
	}
	return s.change(c, by, id, http.StatusOK, func(m domain.Meta, ifMatch *int) domain.Command {
		return domain.PatchArticle{Meta: m, ID: id, Patch: p, IfMatch: ifMatch}
	})
}
