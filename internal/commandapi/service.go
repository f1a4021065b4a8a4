// Package commandapi is the write side of inkstream: a Fiber app that turns
// HTTP requests into commands, decides them against the article's current
// state and appends the resulting events to the event log, answering once
// the log has acknowledged them.
package commandapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// BulkPath is the route of a bulk create, whose body may be larger than
// the others' (the app lets it: httpx.BodyLimitFor).
const BulkPath = "/api/articles/_bulk"

// Headers of the write API.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderEventSeq       = "X-Event-Seq"
)

// EventStore is what the command API needs of the event log.
type EventStore interface {
	// History returns an article's whole history up to stream sequence upTo
	// (0: all). Errors: domain.ErrUnavailable.
	History(ctx context.Context, articleID string, upTo uint64) (events.History, error)
	// Append appends e, expecting the article's last message at stream
	// sequence expect (0: none), de-duplicated by msgID. It returns the
	// event's sequence and whether msgID was a duplicate (the sequence is then
	// the original's). Errors: domain.ErrConflict, domain.ErrUnavailable.
	Append(ctx context.Context, e domain.Event, expect uint64, msgID, requestHash string) (seq uint64, duplicate bool, err error)
	// Last returns the last message on an article's subjects as the log's
	// leader has it. Errors: domain.ErrNotFound, domain.ErrUnavailable.
	Last(ctx context.Context, articleID string) (events.Message, error)
	// Get returns the message at stream sequence seq as the leader has it.
	// Errors: domain.ErrNotFound, domain.ErrUnavailable.
	Get(ctx context.Context, seq uint64) (events.Message, error)
	// AppendBatch appends creates as one atomic batch, all or none, and
	// returns the sequences of the first and last; when the batch's first
	// message id is already stored it stores nothing and returns that
	// message's sequence with duplicate set. Errors: domain.ErrConflict,
	// domain.ErrUnavailable.
	AppendBatch(ctx context.Context, evs []domain.Event, msgIDs []string, requestHash string) (first, last uint64, duplicate bool, err error)
	// Range returns the messages from sequence from to to, complete.
	// Errors: domain.ErrUnavailable.
	Range(ctx context.Context, from, to uint64) ([]events.Message, error)
	// Purge removes an article's messages before stream sequence before.
	// Errors: domain.ErrUnavailable.
	Purge(ctx context.Context, articleID string, before uint64) error
}

// Options configure the write service.
type Options struct {
	CacheBytes   uint64        // budget of the article states kept in memory
	WriteTimeout time.Duration // how long one write may take, retries included
	BulkMax      int           // most articles in one bulk create
	// PublicQueryURL is the query API as clients reach it: a created
	// article's Location, and where a GET here is sent.
	PublicQueryURL string
}

// Service handles the write routes.
type Service struct {
	store     EventStore
	aggs      *aggregates
	opts      Options
	log       *slog.Logger
	skips     *obs.Skips
	conflicts prometheus.Counter
}

// New returns the write service; its metrics are registered on reg.
func New(store EventStore, opts Options, reg prometheus.Registerer, log *slog.Logger) *Service {
	// UUIDv7s for ids and event ids come from a pool of random bytes
	// instead of a read of the system's random source each.
	uuid.EnableRandPool()
	s := &Service{
		store: store,
		aggs:  newAggregates(opts.CacheBytes, reg),
		opts:  opts,
		log:   log,
		skips: obs.NewSkips(reg, log),
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
	app.Post(BulkPath, noParams, s.bulkCreate)
	app.Post("/api/articles", noParams, s.createArticle)
	app.Put("/api/articles/:id", noParams, s.replaceArticle)
	app.Patch("/api/articles/:id", noParams, s.patchArticle)
	app.Delete("/api/articles/:id", eraseParam, s.deleteArticle)
	// The command API only writes: a read is answered with where the
	// query API serves it.
	app.Get("/api/articles", s.readOnQueryAPI)
	app.Get("/api/articles/:id", s.readOnQueryAPI)
}

// noParams refuses a query string: the write routes take none.
func noParams(c *fiber.Ctx) error {
	if err := httpx.Params(c); err != nil {
		return err
	}
	return c.Next()
}

// eraseParam refuses a query parameter besides erase (DELETE ?erase=true).
func eraseParam(c *fiber.Ctx) error {
	if err := httpx.Params(c, "erase"); err != nil {
		return err
	}
	return c.Next()
}

// readOnQueryAPI answers a GET of the articles or of an article: a 405
// problem that names the query API's URL of it, also in a Link header.
func (s *Service) readOnQueryAPI(c *fiber.Ctx) error {
	path, allow := "/api/articles", "POST"
	if c.Params("id") != "" {
		id, err := httpx.ArticleID(c)
		if err != nil {
			return err
		}
		path, allow = path+"/"+id, "PUT, PATCH, DELETE"
	}
	target := s.opts.PublicQueryURL + path
	c.Set(fiber.HeaderAllow, allow)
	c.Set(fiber.HeaderLink, "<"+target+`>; rel="alternate"`)
	return httpx.NewProblem(http.StatusMethodNotAllowed, "the command API only writes; read this on the query API: GET "+target)
}

// change runs a write to an existing article (PUT, PATCH, DELETE): it
// reads If-Match and Idempotency-Key, writes the command mk builds on
// behalf of by and answers status with the result.
func (s *Service) change(c *fiber.Ctx, by domain.Principal, id string, status int, mk func(m domain.Meta, ifMatch *int) domain.Command) error {
	ifMatch, err := parseIfMatch(c)
	if err != nil {
		return err
	}
	key, hash, err := idempotency(c, by)
	if err != nil {
		return err
	}
	r, err := s.write(c.UserContext(), request{id: id, key: key, hash: hash, by: by, command: func(m domain.Meta) domain.Command { return mk(m, ifMatch) }})
	if err != nil {
		return err
	}
	return respond(c, status, r)
}

// idempotency returns the message id and request digest of a request with
// an Idempotency-Key, or empty strings without one. A key is the
// writer's own: another writer's request with the same key is another
// write, and never answers the first one's article.
func idempotency(c *fiber.Ctx, by domain.Principal) (msgID, hash string, err error) {
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
	h.Write([]byte(by.Subject))
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
