package domain

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error kinds. Specific errors wrap one of these with %w; callers match them
// with errors.Is.
var (
	// ErrNotFound means the article does not exist or has been deleted.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the command cannot apply to the current state
	// (an id created twice, an event out of order, a lost race).
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the input breaks a rule; see ValidationError.
	ErrInvalid = errors.New("invalid")
	// ErrPreconditionFailed means an If-Match version no longer matches.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrUnavailable means the event store or read model did not answer in
	// time, or answered only in part (no quorum, a leader election, no
	// connection). Nothing is known to be lost: the caller may retry (a
	// write with the same idempotency key).
	ErrUnavailable = errors.New("unavailable")
	// ErrIdempotencyMismatch means an idempotency key was used before for a
	// different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrUnauthenticated means the request needs a principal and has none
	// (no token, or one that is not valid).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the principal is known and may see the article,
	// but has not the right to do this to it. What the principal may not
	// see is ErrNotFound instead, so that nothing leaks.
	ErrForbidden = errors.New("forbidden")
	// ErrTooManyRequests means the client, or the event store as a whole,
	// takes no more requests for now; the caller may retry later.
	ErrTooManyRequests = errors.New("too many requests")
)

// ValidationError lists the broken rules, field name → message.
// It wraps ErrInvalid.
type ValidationError struct {
	Fields map[string]string
}

// Error lists the broken rules in field order.
func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "invalid article: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// PreconditionError says which version the article has when If-Match failed.
// It wraps ErrPreconditionFailed.
type PreconditionError struct {
	Expected, Actual int
}

// Error names both versions.
func (e *PreconditionError) Error() string {
	return fmt.Sprintf("article is at version %d, not %d", e.Actual, e.Expected)
}

// Unwrap makes errors.Is(err, ErrPreconditionFailed) true.
func (e *PreconditionError) Unwrap() error { return ErrPreconditionFailed }
