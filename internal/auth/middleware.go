package auth

import (
	"bytes"

	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
)

var bearerPrefix = []byte("bearer ")

// Middleware verifies the request's bearer token, if it has one, and
// records its principal (httpx.PrincipalOf). A request without an
// Authorization header goes on as anonymous, paying for nothing; one with
// a token that does not verify is answered 401 with WWW-Authenticate:
// Bearer. Whether the principal may do what it asks is the handlers' to
// decide (domain.Authorize).
func (v *Verifier) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := c.Request().Header.Peek(fiber.HeaderAuthorization)
		if len(h) == 0 {
			return c.Next()
		}
		token, ok := bearerToken(h)
		if !ok {
			return errUnauthenticated("the Authorization header must be: Bearer <token>")
		}
		p, err := v.Verify(c.UserContext(), token)
		if err != nil {
			return err
		}
		httpx.SetPrincipal(c, p)
		return c.Next()
	}
}

// bearerToken returns the token of an Authorization header of the Bearer
// scheme (RFC 6750: the scheme is case-insensitive).
func bearerToken(h []byte) (string, bool) {
	if len(h) <= len(bearerPrefix) || !bytes.EqualFold(h[:len(bearerPrefix)], bearerPrefix) {
		return "", false
	}
	t := bytes.TrimSpace(h[len(bearerPrefix):])
	if len(t) == 0 || bytes.ContainsAny(t, " \t") {
		return "", false
	}
	return string(t), true
}
