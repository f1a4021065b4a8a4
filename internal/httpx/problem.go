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

// NewProblem returns a problem with a type URI derived from the status.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: typeURI(status), Title: http.StatusText(status), Status: status, Detail: detail}
}

func typeURI(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "https://inkstream.dev/problems/bad-request"
	case http.StatusUnauthorized:
		return "https://inkstream.dev/problems/unauthenticated"
	case http.StatusForbidden:
		return "https://inkstream.dev/problems/forbidden"
	case http.StatusNotFound:
		return "https://inkstream.dev/problems/not-found"
	case http.StatusMethodNotAllowed:
		return "https://inkstream.dev/problems/method-not-allowed"
	case http.StatusConflict:
		return "https://inkstream.dev/problems/conflict"
	case http.StatusPreconditionFailed:
		return "https://inkstream.dev/problems/precondition-failed"
	case http.StatusRequestEntityTooLarge:
		return "https://inkstream.dev/problems/too-large"
	case http.StatusUnsupportedMediaType:
		return "https://inkstream.dev/problems/unsupported-media-type"
	case http.StatusUnprocessableEntity:
		return "https://inkstream.dev/problems/idempotency-key-reused"
	case http.StatusTooManyRequests:
		return "https://inkstream.dev/problems/too-many-requests"
	case http.StatusServiceUnavailable:
		return "https://inkstream.dev/problems/unavailable"
	case http.StatusNotImplemented:
		return "https://inkstream.dev/problems/not-implemented"
	default:
		return "about:blank"
	}
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
		pr.Type = "https://inkstream.dev/problems/validation"
		pr.Title = "Validation failed"
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
