package httpx

import (
	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/pkg/domain"
)

// principalKey is the key of the request's principal in Fiber's locals.
type principalKey struct{}

// SetPrincipal records who makes the request c answers; the
// authentication middleware calls it once it has verified the token.
func SetPrincipal(c *fiber.Ctx, p domain.Principal) { c.Locals(principalKey{}, p) }

// PrincipalOf is who makes the request c answers: the zero Principal
// (anonymous) unless the authentication middleware verified a token.
func PrincipalOf(c *fiber.Ctx) domain.Principal {
	p, _ := c.Locals(principalKey{}).(domain.Principal)
	return p
}
