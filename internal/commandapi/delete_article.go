package commandapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// deleteArticle handles DELETE /api/articles/{id}: a tombstone event.
func (s *Service) deleteArticle(c *fiber.Ctx) error {
	by := httpx.PrincipalOf(c)
	if err := domain.Attempt(by, domain.ActDelete); err != nil {
		return err
	}
	id, err := httpx.ArticleID(c)
	if err != nil {
		return err
	}
	return s.change(c, by, id, http.StatusNoContent, func(m domain.Meta, ifMatch *int) domain.Command {
		return domain.DeleteArticle{Meta: m, ID: id, IfMatch: ifMatch}
	})
}
