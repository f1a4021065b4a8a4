// Package commandapi is the write side of inkstream: a Fiber app that turns
// HTTP requests into commands, decides them against the article's current
// state and appends the resulting events to JetStream, answering once
// JetStream has acknowledged them.
package commandapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	json "github.com/go-json-experiment/json/v1"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// Headers of the write API.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderEventSeq       = "X-Event-Seq"
)

// EventStore is what the command API needs of the event log.
type EventStore interface {
	// Append errors: domain.ErrConflict, natsx.ErrUnavailable.
	Append(ctx context.Context, e events.Envelope, expect uint64, msgID, requestHash string) (natsx.Appended, error)
	// Get errors: domain.ErrNotFound, natsx.ErrUnavailable.
	Get(ctx context.Context, seq uint64) (natsx.StoredEvent, error)
	// Last errors: domain.ErrNotFound, natsx.ErrUnavailable.
	Last(ctx context.Context, articleID string) (natsx.StoredEvent, error)
	// State errors: natsx.ErrUnavailable.
	State(ctx context.Context, articleID string, upTo uint64) (domain.State, uint64, error)
}

var _ EventStore = (*natsx.EventStore)(nil)

// Service handles the write routes.
type Service struct {
	store        EventStore
	aggs         *aggregates
	writeTimeout time.Duration
	log          *slog.Logger
	conflicts    prometheus.Counter
}

// New returns the write service.
func New(store EventStore, cacheSize int, writeTimeout time.Duration, reg prometheus.Registerer, log *slog.Logger) *Service {
	// UUIDv7s for ids and event ids come from a pool of random bytes
	// instead of a read of the system's random source each.
	uuid.EnableRandPool()
	s := &Service{
		store:        store,
		aggs:         newAggregates(cacheSize),
		writeTimeout: writeTimeout,
		log:          log,
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inkstream_command_conflicts_total",
			Help: "Appends that lost a race to another writer and were decided again.",
		}),
	}
	reg.MustRegister(s.conflicts)
	return s
}

// Routes installs the write routes on app.
func (s *Service) Routes(app *fiber.App) {
	app.Post("/api/articles", s.createArticle)
	app.Put("/api/articles/:id", s.replaceArticle)
	app.Patch("/api/articles/:id", s.patchArticle)
	app.Delete("/api/articles/:id", s.deleteArticle)
}

// result is the outcome of one write.
type result struct {
	state domain.State
	seq   uint64
}

// write decides cmd on the article's current state and appends the event.
// A write that loses a race is decided again on fresh state until the write
// timeout, so an unconditional write is never lost and a conditional one
// fails with 412. A decision that appends nothing (no change, 412, 404) is
// not checked by JetStream, so a cached state is confirmed current first.
// With an Idempotency-Key, a retry answers the original result.
func (s *Service) write(ctx context.Context, id string, fresh bool, key, requestHash string, mk func(domain.Meta) domain.Command) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	agg := s.aggs.get(id)
	agg.mu.Lock()
	defer agg.mu.Unlock()
	if fresh && !agg.loaded {
		// A server-generated UUIDv7 has no events; the append still checks.
		agg.loaded, agg.state, agg.seq = true, domain.State{}, 0
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		cached := agg.loaded && !fresh
		if !agg.loaded {
			st, seq, err := s.store.State(ctx, id, 0)
			if err != nil {
				return result{}, err
			}
			agg.loaded, agg.state, agg.seq = true, st, seq
		}
		evID, err := uuid.NewV7()
		if err != nil {
			return result{}, err
		}
		meta := domain.Meta{EventID: evID.String(), At: time.Now().UTC().Truncate(time.Microsecond)}
		evs, next, err := domain.DecideState(agg.state, mk(meta))
		unchecked := (err == nil && len(evs) == 0) || errors.Is(err, domain.ErrPreconditionFailed) ||
			(errors.Is(err, domain.ErrNotFound) && !agg.state.Deleted)
		if unchecked && cached {
			// Another instance may have moved the article on since we cached it.
			ok, cerr := s.current(ctx, id, agg)
			if cerr != nil {
				return result{}, cerr
			}
			if !ok {
				agg.loaded = false
				continue
			}
		}
		if err != nil && key != "" && agg.state.Exists() {
			// A retry of a delete, or of a write with If-Match, cannot be
			// decided again: recognise it by the last event's message id.
			if last, lerr := s.store.Last(ctx, id); lerr == nil && last.MsgID == key {
				return s.original(ctx, last.Seq, requestHash)
			}
		}
		if err != nil {
			return result{}, err
		}
		if len(evs) == 0 {
			return result{state: agg.state, seq: agg.seq}, nil
		}
		e := evs[0]
		msgID := e.ID
		if key != "" {
			msgID = key
		}
		ack, err := s.store.Append(ctx, e, agg.seq, msgID, requestHash)
		if errors.Is(err, domain.ErrConflict) {
			// Another instance appended first: catch up and decide again.
			s.conflicts.Inc()
			agg.loaded = s.catchUp(ctx, id, agg)
			if attempt >= 3 && !pause(ctx, attempt) {
				break
			}
			continue
		}
		if err != nil {
			return result{}, err
		}
		if ack.Duplicate {
			agg.loaded = false
			return s.original(ctx, ack.Seq, requestHash)
		}
		agg.state, agg.seq = next, ack.Seq
		return result{state: next, seq: ack.Seq}, nil
	}
	agg.loaded = false
	if fresh {
		s.aggs.forget(id)
	}
	return result{}, fmt.Errorf("article %s: other writers kept winning until the write timeout; retry: %w", id, domain.ErrConflict)
}

// current reports whether the aggregate still ends at the article's last event.
func (s *Service) current(ctx context.Context, id string, agg *aggregate) (bool, error) {
	last, err := s.store.Last(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return agg.seq == 0, nil
	}
	if err != nil {
		return false, err
	}
	return last.Seq == agg.seq, nil
}

// catchUp brings the aggregate forward after a lost race. In the common case
// one other write got in, and applying the article's last event is enough;
// otherwise it reports false and the next attempt loads the whole article.
// Reading one message instead of the whole history keeps the loser's next
// attempt quick, so a busy instance does not starve another one.
func (s *Service) catchUp(ctx context.Context, id string, agg *aggregate) bool {
	last, err := s.store.Last(ctx, id)
	if err != nil || last.Event.Version != agg.state.Article.Version+1 {
		return false
	}
	st, err := domain.Apply(agg.state, last.Event)
	if err != nil {
		return false
	}
	agg.state, agg.seq = st, last.Seq
	return true
}

// pause waits a short random while before another attempt, growing with
// attempt, so writers on different instances stop colliding in lockstep.
func pause(ctx context.Context, attempt int) bool {
	d := time.Duration(1+rand.IntN(min(attempt, 20))) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// change runs a write to an existing article (PUT, PATCH, DELETE): it
// reads If-Match and Idempotency-Key, writes the command mk builds and
// answers status with the result.
func (s *Service) change(c *fiber.Ctx, id string, status int, mk func(m domain.Meta, ifMatch *int) domain.Command) error {
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	key, hash, err := idempotency(c)
	if err != nil {
		return err
	}
	r, err := s.write(c.UserContext(), id, false, key, hash, func(m domain.Meta) domain.Command { return mk(m, ifMatch) })
	if err != nil {
		return err
	}
	return respond(c, status, r)
}

// original returns the result of the earlier write that a retry duplicated.
func (s *Service) original(ctx context.Context, seq uint64, requestHash string) (result, error) {
	se, err := s.store.Get(ctx, seq)
	if err != nil {
		return result{}, err
	}
	if se.RequestHash != requestHash {
		return result{}, natsx.ErrMismatch
	}
	for attempt := 1; ; attempt++ {
		st, last, err := s.store.State(ctx, se.Event.ArticleID, seq)
		if err != nil {
			return result{}, err
		}
		if last == seq {
			return result{state: st, seq: last}, nil
		}
		// The batch read was answered by a follower that does not hold seq
		// yet: the leader has it (Get above), so wait for the follower.
		if !pause(ctx, attempt) {
			return result{}, fmt.Errorf("state of %s at seq %d: %w", se.Event.ArticleID, seq, natsx.ErrUnavailable)
		}
	}
}

// idempotency returns the message id and request digest of a request with
// an Idempotency-Key, or empty strings without one.
func idempotency(c *fiber.Ctx) (msgID, hash string, err error) {
	key := c.Get(HeaderIdempotencyKey)
	if key == "" {
		return "", "", nil
	}
	if len(key) > 255 {
		return "", "", badRequest("Idempotency-Key must be at most 255 characters")
	}
	h := sha256.New()
	h.Write([]byte(c.Method()))
	h.Write([]byte{0})
	h.Write([]byte(c.Path()))
	h.Write([]byte{0})
	h.Write([]byte(key))
	msgID = "idem-" + hex.EncodeToString(h.Sum(nil))
	h.Write([]byte{0})
	h.Write(c.Body())
	return msgID, hex.EncodeToString(h.Sum(nil)), nil
}

// respond writes the article with its ETag and the consistency token.
func respond(c *fiber.Ctx, status int, r result) error {
	c.Set(HeaderEventSeq, strconv.FormatUint(r.seq, 10))
	if status == http.StatusNoContent {
		return c.SendStatus(status)
	}
	// Encoded straight into the response body, without a copy of its own.
	c.Response().ResetBody()
	if err := jsonv2.MarshalWrite(c.Response().BodyWriter(), r.state.Article, encodeV1); err != nil {
		c.Response().ResetBody()
		return err
	}
	c.Set(fiber.HeaderETag, ETag(r.state.Article.Version))
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.SendStatus(status)
}

// encodeV1 encodes as encoding/json does.
var encodeV1 = json.DefaultOptionsV1()

// ETag is the entity tag of an article version.
func ETag(version int) string { return `"` + strconv.Itoa(version) + `"` }
