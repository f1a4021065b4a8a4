package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/gofiber/fiber/v2"
)

// serveFiber is `inkbench serve-fiber`, the baseline of the cached GET: a
// bare Fiber v2 app that answers GET /api/articles/{id} with the article's
// JSON from a Go map, loaded from -data (a JSON object: id → article, the
// very bytes the query API served). /readyz answers 200 once it listens.
func serveFiber(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("inkbench serve-fiber", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	data := fs.String("data", "", "JSON object of article id → article JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*data)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %w", *data, err)
	}
	articles := make(map[string][]byte, len(m))
	for id, a := range m {
		articles[id] = []byte(a)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/readyz", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) })
	app.Get("/api/articles/:id", func(c *fiber.Ctx) error {
		a, ok := articles[c.Params("id")]
		if !ok {
			return c.SendStatus(fiber.StatusNotFound)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(a)
	})
	stop := context.AfterFunc(ctx, func() { _ = app.Shutdown() })
	defer stop()
	return app.Listener(ln)
}
