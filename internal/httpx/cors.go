package httpx

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
)

// corsHeaders are the request headers a browser front end may send.
var corsHeaders = strings.Join([]string{
	fiber.HeaderAuthorization, fiber.HeaderContentType, fiber.HeaderIfMatch, fiber.HeaderIfNoneMatch,
	"Idempotency-Key", "X-Min-Event-Seq", fiber.HeaderXRequestID, "Last-Event-ID",
}, ",")

// corsExposed are the response headers a browser front end may read.
var corsExposed = strings.Join([]string{
	fiber.HeaderETag, fiber.HeaderLocation, "X-Event-Seq", fiber.HeaderXRequestID, fiber.HeaderRetryAfter,
	fiber.HeaderWWWAuthenticate, fiber.HeaderLink,
}, ",")

// CORS installs on app the CORS headers and preflights for origins (each
// "scheme://host[:port]", or "*" for any) on the routes of methods. With
// no origins it installs nothing, so that no request pays for it.
func CORS(app *fiber.App, origins []string, methods string) {
	if len(origins) == 0 {
		return
	}
	app.Use(cors.New(cors.Config{
		AllowOrigins:  strings.Join(origins, ","),
		AllowMethods:  methods,
		AllowHeaders:  corsHeaders,
		ExposeHeaders: corsExposed,
		MaxAge:        600,
	}))
}
