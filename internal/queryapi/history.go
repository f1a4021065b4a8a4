package queryapi

import (
	"fmt"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// versions reads the article's whole history and returns its last N
// states that the reader may see, newest first. A deleted article has
// none, and one the reader may not see does not exist for them: 404.
func (s *Service) versions(c *fiber.Ctx) (string, []domain.Article, error) {
	if err := httpx.Params(c); err != nil {
		return "", nil, err
	}
	id, err := httpx.ArticleID(c)
	if err != nil {
		return "", nil, err
	}
	h, err := s.history(c.UserContext(), id, 0)
	if err != nil {
		return id, nil, err
	}
	reader := httpx.PrincipalOf(c)
	if err := domain.Authorize(reader, domain.ActRead, h.Fold.State, domain.Fields{}); err != nil {
		return id, nil, fmt.Errorf("article %s: %w", id, err)
	}
	var st domain.State
	kept := make([]domain.Article, 0, len(h.Events))
	for _, se := range h.Events {
		if st, err = domain.Apply(st, se.Event); err != nil {
			return id, nil, fmt.Errorf("fold %s at seq %d: %w", id, se.Seq, err)
		}
		if domain.Authorize(reader, domain.ActReadVersion, h.Fold.State, st.Article.Fields) == nil {
			kept = append(kept, st.Article)
		}
	}
	if len(kept) > s.opts.Versions {
		kept = kept[len(kept)-s.opts.Versions:]
	}
	out := make([]domain.Article, len(kept))
	for i, a := range kept {
		out[len(kept)-1-i] = a
	}
	return id, out, nil
}

// listVersions handles GET /api/articles/{id}/versions: the last N
// versions, newest first.
func (s *Service) listVersions(c *fiber.Ctx) error {
	_, vs, err := s.versions(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": vs})
}

// getVersion handles GET /api/articles/{id}/versions/{v}.
func (s *Service) getVersion(c *fiber.Ctx) error {
	v, err := strconv.Atoi(c.Params("v"))
	if err != nil || v < 1 {
		return badRequest("version must be a whole number from 1")
	}
	id, vs, err := s.versions(c)
	if err != nil {
		return err
	}
	for _, a := range vs {
		if a.Version == v {
			c.Set(fiber.HeaderETag, `"`+strconv.Itoa(v)+`"`)
			return c.JSON(a)
		}
	}
	return fmt.Errorf("version %d of article %s is not among the last %d: %w", v, id, s.opts.Versions, domain.ErrNotFound)
}

// auditEvent is one entry of the audit trail.
type auditEvent struct {
	Seq        uint64         `json:"seq"`
	ID         string         `json:"id"`
	Type       events.Type    `json:"type"`
	Version    int            `json:"version"`
	OccurredAt time.Time      `json:"occurred_at"`
	Actor      string         `json:"actor,omitempty"`
	Data       jsontext.Value `json:"data"`
}

// listEvents handles GET /api/articles/{id}/events: every event of the
// article from the log, deleted articles included, for its author and
// editors; each names its actor.
func (s *Service) listEvents(c *fiber.Ctx) error {
	if err := httpx.Params(c); err != nil {
		return err
	}
	id, err := httpx.ArticleID(c)
	if err != nil {
		return err
	}
	h, err := s.history(c.UserContext(), id, 0)
	if err != nil {
		return err
	}
	if len(h.Events) == 0 || h.Fold.State.Erased {
		return fmt.Errorf("article %s: %w", id, domain.ErrNotFound) // an erased article shows nothing
	}
	if err := domain.Authorize(httpx.PrincipalOf(c), domain.ActReadHistory, h.Fold.State, domain.Fields{}); err != nil {
		return fmt.Errorf("article %s: %w", id, err)
	}
	out := make([]auditEvent, len(h.Events))
	for i, se := range h.Events {
		e := se.Event
		data, err := events.Data(e.Change)
		if err != nil {
			return err
		}
		out[i] = auditEvent{Seq: se.Seq, ID: e.ID, Type: events.TypeOf(e.Change), Version: e.Version, OccurredAt: e.At, Actor: e.Actor, Data: data}
	}
	return c.JSON(fiber.Map{"items": out})
}
