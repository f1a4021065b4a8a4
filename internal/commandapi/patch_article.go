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
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	key, hash, err := idempotency(c)
	if err != nil {
		return err
	}
	r, err := s.write(c.UserContext(), id, false, key, hash, func(m domain.Meta) domain.Command {
		return domain.PatchArticle{Meta: m, ID: id, Patch: p, IfMatch: ifMatch}
	})
	if err != nil {
		return err
	}
	return respond(c, http.StatusOK, r)
}
