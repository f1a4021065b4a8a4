// Package httpx holds what the HTTP services share: RFC 9457 problem
// responses and the one table that maps error kinds to status codes, health
// and metrics endpoints, request metrics, the listen/shutdown cycle, and
// the rules of RFC 9110 and RFC 9112 that fasthttp and Fiber leave to the
// application (request framing, unknown methods, closing a connection).
package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	json "github.com/go-json-experiment/json/v1"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/pkg/domain"
)

// ContentTypeProblem is the media type of error bodies.
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem body.
type Problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail,omitempty"`
	Errors map[string]string `json:"errors,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
	// Authenticate, when set, sends WWW-Authenticate: Bearer (a 401).
	Authenticate bool `json:"-"`
}

// Error makes a Problem an error that handlers can return.
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// NewProblem returns a problem of the kind of its status.
func NewProblem(status int, detail string) *Problem {
	k := kindOf(status)
	return &Problem{Type: k.Type(), Title: k.Title, Status: status, Detail: detail}
}

// ProblemsPath is where each problem type URI resolves, on either API:
// ProblemsPath + the kind's name redirects to its section of the API
// reference (/docs).
const ProblemsPath = "/problems/"

// ProblemKind is one kind of problem: every problem body of the kind has
// its type URI, status and title. The API reference documents each kind
// from this table.
type ProblemKind struct {
	Name   string // the last segment of its type URI
	Status int
	Title  string
	Doc    string // what it means and what to do, for the API reference (Markdown)
}

// Type is the kind's type URI: a reference relative to the API that
// answered (RFC 9457 §3.1.1), the same on every deployment, that resolves
// to the kind's section of that API's reference.
func (k ProblemKind) Type() string {
	if k.Name == "" {
		return "about:blank"
	}
	return ProblemsPath + k.Name
}

// ProblemKinds are every kind of problem the APIs answer.
var ProblemKinds = []ProblemKind{
	{"bad-request", http.StatusBadRequest, "Bad Request",
		"The request is malformed: bad JSON, a body that is not one JSON object, an unknown or read-only field, a query parameter the route does not have or a value it does not take, a malformed header (`If-Match`, `X-Min-Event-Seq`, `Last-Event-ID`, an `Idempotency-Key` over 255 characters). Nothing was written; `detail` says what is wrong."},
	{"validation", http.StatusBadRequest, "Validation failed",
		"The article breaks one or more field rules. `errors` maps each field (`title`, `tags[1]`, `articles[3].title` in a bulk create) to what is wrong with it. Nothing was written."},
	{"unauthenticated", http.StatusUnauthorized, "Unauthorized",
		"The request needs a bearer token and has none, or its token does not verify (signature, `exp`, `nbf`, issuer, audience). The answer carries `WWW-Authenticate: Bearer`. Send `Authorization: Bearer <JWT>`."},
	{"forbidden", http.StatusForbidden, "Forbidden",
		"The token is valid but its roles do not allow this: an author writing as someone else or publishing, an author changing another's article, erasure without the admin role, the audit trail of someone else's article."},
	{"not-found", http.StatusNotFound, "Not Found",
		"Nothing here for the caller: the article never existed, is deleted or erased, or is not visible to the caller (a draft's existence never leaks); also a version older than the kept ones, or an unknown route."},
	{"method-not-allowed", http.StatusMethodNotAllowed, "Method Not Allowed",
		"The route exists, not with this method. The command API only writes: a `GET` of an article there names, in `detail` and in a `Link` header, the query API's URL of it."},
	{"conflict", http.StatusConflict, "Conflict",
		"Another write to the same article won a race that could not be decided again. Retry the request."},
	{"precondition-failed", http.StatusPreconditionFailed, "Precondition Failed",
		"`If-Match` named a version the article has moved on from. Read the article again (its `ETag`), decide again, and retry with the new version."},
	{"too-large", http.StatusRequestEntityTooLarge, "Request Entity Too Large",
		"The request body is larger than the limit (`-body-limit`, default 1 MiB). Nothing was written."},
	{"unsupported-media-type", http.StatusUnsupportedMediaType, "Unsupported Media Type",
		"The body's `Content-Type` is not the one the route takes: `application/json`, or `application/merge-patch+json` for `PATCH`."},
	{"idempotency-key-reused", http.StatusUnprocessableEntity, "Unprocessable Entity",
		"The `Idempotency-Key` was used before, by the same writer, for a request with another body. Use a new key for a new request."},
	{"too-many-requests", http.StatusTooManyRequests, "Too Many Requests",
		"Too many writes from this client (`-rate-limit`), or JetStream refuses more for now. Wait `Retry-After` seconds and retry."},
	{"internal-error", http.StatusInternalServerError, "Internal Server Error",
		"A bug: the server logged it with the request's `X-Request-Id`. No input is meant to produce this."},
	{"not-implemented", http.StatusNotImplemented, "Not Implemented",
		"The request's method, or a transfer coding besides chunked, is one this server does not implement."},
	{"unavailable", http.StatusServiceUnavailable, "Service Unavailable",
		"JetStream did not answer in time (a leader election, a lost connection), the read model has not reached `X-Min-Event-Seq` yet, the process is not ready, or the live feed has as many clients as it takes (`-max-feed-clients`). Retry after `Retry-After` seconds; a write with the same `Idempotency-Key`."},
}

// kindOf is the kind of a status: the first of ProblemKinds with it.
func kindOf(status int) ProblemKind {
	for _, k := range ProblemKinds {
		if k.Status == status {
			return k
		}
	}
	return ProblemKind{Status: status, Title: http.StatusText(status)}
}

// KindNamed returns the kind of a name, and whether there is one.
func KindNamed(name string) (ProblemKind, bool) {
	for _, k := range ProblemKinds {
		if k.Name == name {
			return k, true
		}
	}
	return ProblemKind{}, false
}

// ProblemFor maps an error to its problem: the one table of error kinds.
func ProblemFor(err error) (*Problem, bool) {
	var p *Problem
	var ve *domain.ValidationError
	var fe *fiber.Error
	switch {
	case errors.As(err, &p):
		return p, true
	case errors.As(err, &ve):
		pr := NewProblem(http.StatusBadRequest, "the article breaks one or more rules")
		k, _ := KindNamed("validation")
		pr.Type, pr.Title = k.Type(), k.Title
		pr.Errors = ve.Fields
		return pr, true
	case errors.Is(err, domain.ErrInvalid):
		return NewProblem(http.StatusBadRequest, err.Error()), true
	case errors.Is(err, domain.ErrUnauthenticated):
		pr := NewProblem(http.StatusUnauthorized, err.Error())
		pr.Authenticate = true
		return pr, true
	case errors.Is(err, domain.ErrForbidden):
		return NewProblem(http.StatusForbidden, err.Error()), true
	case errors.Is(err, domain.ErrNotFound):
		return NewProblem(http.StatusNotFound, err.Error()), true
	case errors.Is(err, domain.ErrTooManyRequests):
		pr := NewProblem(http.StatusTooManyRequests, err.Error())
		pr.RetryAfter = 1
		return pr, true
	case errors.Is(err, domain.ErrPreconditionFailed):
		return NewProblem(http.StatusPreconditionFailed, err.Error()), true
	case errors.Is(err, domain.ErrConflict):
		return NewProblem(http.StatusConflict, err.Error()), true
	case errors.Is(err, domain.ErrIdempotencyMismatch):
		return NewProblem(http.StatusUnprocessableEntity, err.Error()), true
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		pr := NewProblem(http.StatusServiceUnavailable, "JetStream did not answer in time; retry with the same Idempotency-Key")
		pr.RetryAfter = 1
		return pr, true
	case errors.As(err, &fe):
		detail := fe.Message
		if fe.Code == http.StatusRequestEntityTooLarge {
			detail = "the request body is larger than the limit"
		}
		return NewProblem(fe.Code, detail), true
	}
	return nil, false
}

// ErrorHandler is installed as Fiber's ErrorHandler: handlers only return
// errors, this answers them. Unknown errors are logged with the request id
// (and trace id) and answered as a plain 500.
func ErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	log = obs.Logger(log)
	return func(c *fiber.Ctx, err error) error {
		p, ok := ProblemFor(err)
		if !ok {
			log.ErrorContext(logContext(c), "request failed", "method", c.Method(), "path", c.Path(), "err", err)
			p = NewProblem(http.StatusInternalServerError, "internal error")
		}
		return WriteProblem(c, p)
	}
}

// WriteProblem sends p.
func WriteProblem(c *fiber.Ctx, p *Problem) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if p.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, itoa(p.RetryAfter))
	}
	if p.Authenticate || p.Status == http.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="inkstream"`)
	}
	c.Set(fiber.HeaderContentType, ContentTypeProblem)
	return c.Status(p.Status).Send(b)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// ArticleID returns the {id} of the path as a string of its own (Fiber's
// values point into a buffer that the next request reuses). Ids are UUIDs;
// anything else cannot name an article, nor be a subject token: 404.
func ArticleID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return "", fmt.Errorf("article %q: %w", id, domain.ErrNotFound)
	}
	return u.String(), nil
}
