package commandapi

import (
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/inkstream/inkstream/pkg/domain"
)

// deleteArticle handles DELETE /api/articles/{id}: a tombstone event.
func (s *Service) deleteArticle(c *fiber.Ctx) error {
	id, err := articleID(c)
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

// articleID returns the {id} of the path. Ids are UUIDs; anything else
// cannot name an article, and would not be a valid subject token.
func articleID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return "", fmt.Errorf("article %q: %w", id, domain.ErrNotFound)
	}
	return id, nil
}
