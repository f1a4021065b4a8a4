package commandapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// deleteArticle handles DELETE /api/articles/{id}: a tombstone event.
func (s *Service) deleteArticle(c *fiber.Ctx) error {
	id, err := httpx.ArticleID(c)
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
		return domain.DeleteArticle{Meta: m, ID: id, IfMatch: ifMatch}
	})
	if err != nil {
		return err
	}
	return respond(c, http.StatusNoContent, r)
}
