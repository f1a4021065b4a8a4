package commandapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// bulkRequest is the body of POST /api/articles/_bulk.
type bulkRequest struct {
	Articles []json.RawMessage `json:"articles"`
}

// bulkCreate handles POST /api/articles/_bulk: up to BulkMax articles
// validated together and written as one atomic batch, all or none.
func (s *Service) bulkCreate(c *fiber.Ctx) error {
	by := httpx.PrincipalOf(c)
	if err := domain.Attempt(by, domain.ActCreate); err != nil {
		return err
	}
	if err := checkContentType(c, fiber.MIMEApplicationJSON); err != nil {
		return err
	}
	var req bulkRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	n := len(req.Articles)
	if n == 0 || n > s.opts.BulkMax {
		return fieldError("articles", fmt.Sprintf("must hold 1 to %d articles", s.opts.BulkMax))
	}
	key, hash, err := idempotency(c, by)
	if err != nil {
		return err
	}
	evs, msgIDs, err := s.decideBulk(req.Articles, key, by)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.opts.WriteTimeout)
	defer cancel()
	first, last, dup, err := s.store.AppendBatch(ctx, evs, msgIDs, hash)
	if err != nil {
		return err
	}
	arts := make([]domain.Article, n)
	if dup {
		if arts, last, err = s.originalBulk(ctx, first, msgIDs, hash); err != nil {
			return err
		}
	} else {
		for i, e := range evs {
			st, err := domain.Apply(domain.State{}, e)
			if err != nil {
				return err
			}
			arts[i] = st.Article
		}
	}
	c.Set(HeaderEventSeq, strconv.FormatUint(last, 10))
	c.Response().ResetBody()
	if err := jsonv2.MarshalWrite(c.Response().BodyWriter(), bulkAnswer{Items: arts}, encodeV1); err != nil {
		c.Response().ResetBody()
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.SendStatus(http.StatusCreated)
}

type bulkAnswer struct {
	Items []domain.Article `json:"items"`
}

// decideBulk decodes and decides every article of a bulk, and returns the
// events with their message ids, or a *domain.ValidationError naming every
// broken rule as articles[i].field.
func (s *Service) decideBulk(items []json.RawMessage, key string, by domain.Principal) ([]domain.Event, []string, error) {
	invalid := &domain.ValidationError{Fields: map[string]string{}}
	evs := make([]domain.Event, 0, len(items))
	msgIDs := make([]string, 0, len(items))
	at := time.Now().UTC().Truncate(time.Microsecond)
	for i, raw := range items {
		prefix := "articles[" + strconv.Itoa(i) + "]"
		fields, err := decodeArticle(raw)
		if err == nil {
			id, evID := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
			cmd := domain.CreateArticle{Meta: domain.Meta{EventID: evID, At: at, Actor: by.Subject}, ID: id, Fields: fields}
			if err := domain.AuthorizeCommand(by, domain.State{}, cmd); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", prefix, err)
			}
			var decided []domain.Event
			decided, err = domain.Decide(domain.State{}, cmd)
			if err == nil {
				evs = append(evs, decided[0])
				msgIDs = append(msgIDs, bulkMsgID(key, i, evID))
				continue
			}
		}
		var ve *domain.ValidationError
		var p *httpx.Problem
		switch {
		case errors.As(err, &ve):
			for k, msg := range ve.Fields {
				invalid.Fields[prefix+"."+k] = msg
			}
		case errors.As(err, &p):
			invalid.Fields[prefix] = p.Detail
		default:
			return nil, nil, err
		}
	}
	if len(invalid.Fields) > 0 {
		return nil, nil, invalid
	}
	return evs, msgIDs, nil
}

// bulkMsgID is the message id of the i-th event of a bulk: derived from the
// Idempotency-Key's message id when there is one, so that a retry carries
// the same ids; the event id otherwise.
func bulkMsgID(key string, i int, eventID string) string {
	if key == "" {
		return eventID
	}
	h := sha256.Sum256([]byte(key + "/" + strconv.Itoa(i)))
	return "idem-" + hex.EncodeToString(h[:])
}

// originalBulk returns the articles a retried bulk wrote the first time,
// from the batch that begins at stream sequence first, and the sequence of
// its last event.
func (s *Service) originalBulk(ctx context.Context, first uint64, msgIDs []string, requestHash string) ([]domain.Article, uint64, error) {
	last := first + uint64(len(msgIDs)) - 1
	msgs, err := s.store.Range(ctx, first, last)
	if err != nil {
		return nil, 0, err
	}
	if len(msgs) != len(msgIDs) {
		return nil, 0, fmt.Errorf("the original bulk at seq %d: %w", first, domain.ErrIdempotencyMismatch)
	}
	arts := make([]domain.Article, len(msgs))
	for i, m := range msgs {
		if m.MsgID != msgIDs[i] || m.RequestHash != requestHash {
			return nil, 0, fmt.Errorf("the original bulk at seq %d: %w", first, domain.ErrIdempotencyMismatch)
		}
		e, err := events.Decode(m.Data)
		if err != nil {
			return nil, 0, err
		}
		st, err := domain.Apply(domain.State{}, e)
		if err != nil {
			return nil, 0, err
		}
		arts[i] = st.Article
	}
	return arts, last, nil
}
