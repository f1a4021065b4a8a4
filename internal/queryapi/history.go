package queryapi

import (
	"fmt"
	"strconv"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// versions folds the article's events and returns its last N states,
// newest first, and whether it is deleted.
func (s *Service) versions(c *fiber.Ctx) (string, []domain.Article, error) {
	id, err := httpx.ArticleID(c)
	if err != nil {
		return "", nil, err
	}
	evs, err := s.store.Load(c.UserContext(), id, 0)
	if err != nil {
		return id, nil, err
	}
	var st domain.State
	var kept []domain.Article
	for _, se := range evs {
		if st, err = domain.Apply(st, se.Event); err != nil {
			return id, nil, fmt.Errorf("fold %s at seq %d: %w", id, se.Seq, err)
		}
		if !st.Deleted {
			kept = append(kept, st.Article)
		}
	}
	if !st.Live() {
		return id, nil, fmt.Errorf("article %s: %w", id, domain.ErrNotFound)
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
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`
	Type       events.Type     `json:"type"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// listEvents handles GET /api/articles/{id}/events: every event of the
// article from the stream, deleted articles included.
func (s *Service) listEvents(c *fiber.Ctx) error {
	id, err := httpx.ArticleID(c)
	if err != nil {
		return err
	}
	evs, err := s.store.Load(c.UserContext(), id, 0)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("article %s: %w", id, domain.ErrNotFound)
	}
	out := make([]auditEvent, len(evs))
	for i, se := range evs {
		e := se.Event
		out[i] = auditEvent{Seq: se.Seq, ID: e.ID, Type: e.Type, Version: e.Version, OccurredAt: e.OccurredAt, Data: json.RawMessage(e.Data)}
	}
	return c.JSON(fiber.Map{"items": out})
}
