package httpx

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Params answers a 400 problem for a request whose query string names a
// parameter besides allowed: a typo such as ?author= is not silently
// ignored. A request without a query string costs one length check.
func Params(c *fiber.Ctx, allowed ...string) error {
	if len(c.Request().URI().QueryString()) == 0 {
		return nil
	}
	args := c.Request().URI().QueryArgs()
	var unknown []string
	args.VisitAll(func(k, _ []byte) {
		if !slices.Contains(allowed, string(k)) && !slices.Contains(unknown, string(k)) {
			unknown = append(unknown, string(k))
		}
	})
	if len(unknown) == 0 {
		return nil
	}
	detail := "unknown query parameter " + strings.Join(unknown, ", ")
	if len(allowed) == 0 {
		detail += "; this route takes none"
	} else {
		detail += "; this route takes " + strings.Join(allowed, ", ")
	}
	return NewProblem(http.StatusBadRequest, detail)
}

// NoneMatch reports whether an If-None-Match header value matches etag
// (a strong entity tag such as "3"): "*", or a comma-separated list of
// entity tags one of which is etag under the weak comparison of RFC 9110
// §8.8.3.2 (W/"3" matches "3"). A malformed list matches nothing.
func NoneMatch(header, etag string) bool {
	for h := header; ; {
		h = strings.TrimLeft(h, " \t,")
		if h == "" {
			return false
		}
		if h[0] == '*' {
			return true
		}
		h = strings.TrimPrefix(h, "W/")
		if h == "" || h[0] != '"' {
			return false
		}
		end := strings.IndexByte(h[1:], '"')
		if end < 0 {
			return false
		}
		if h[:end+2] == etag {
			return true
		}
		h = h[end+2:]
	}
}
