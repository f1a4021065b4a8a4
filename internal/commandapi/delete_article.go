package commandapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// deleteArticle handles DELETE /api/articles/{id}: a tombstone event, or
// with ?erase=true an erasure.
func (s *Service) deleteArticle(c *fiber.Ctx) error {
	by := httpx.PrincipalOf(c)
	erase := false
	switch q := c.Query("erase"); q {
	case "", "false":
	case "true":
		erase = true
	default:
		return badRequest("erase must be true or false, not " + strconv.Quote(q))
	}
	if err := domain.Attempt(by, map[bool]domain.Action{false: domain.ActDelete, true: domain.ActErase}[erase]); err != nil {
		return err
	}
	id, err := httpx.ArticleID(c)
	if err != nil {
		return err
	}
	if erase {
		return s.eraseArticle(c, by, id)
	}
	return s.change(c, by, id, http.StatusNoContent, func(m domain.Meta, ifMatch *int) domain.Command {
		return domain.DeleteArticle{Meta: m, ID: id, IfMatch: ifMatch}
	})
}

// eraseArticle erases an article: it appends ArticleErased first, so that
// the erasure is decided and durable, then purges every earlier event of
// the article from the log (the projectors purge its snapshot when they
// fold the erasure). Erasing an erased article purges again: a crash
// between the two steps is mended by the retry.
func (s *Service) eraseArticle(c *fiber.Ctx, by domain.Principal, id string) error {
	r, err := s.write(c.UserContext(), request{id: id, by: by, command: func(m domain.Meta) domain.Command {
		return domain.EraseArticle{Meta: m, ID: id}
	}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.opts.WriteTimeout)
	defer cancel()
	if err := s.store.Purge(ctx, id, r.seq); err != nil {
		return err
	}
	c.Set(HeaderEventSeq, strconv.FormatUint(r.seq, 10))
	return c.SendStatus(http.StatusNoContent)
}
