package apidoc_test

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/apidoc"
	"github.com/inkstream/inkstream/internal/commandapi"
	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/queryapi"
)

// TestDocumentsAreValid loads each API's document with kin-openapi and
// validates it against OpenAPI 3.1, its examples and its defaults included.
func TestDocumentsAreValid(t *testing.T) {
	for _, api := range []apidoc.API{apidoc.Command, apidoc.Query} {
		t.Run(string(api), func(t *testing.T) {
			b, err := apidoc.Document(api)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := openapi3.NewLoader().LoadFromData(b)
			if err != nil {
				t.Fatal(err)
			}
			if !doc.IsOpenAPI31OrLater() {
				t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
			}
			if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation()); err != nil {
				t.Fatal(err)
			}
			if doc.Components.SecuritySchemes["bearer"] == nil {
				t.Fatal("no bearer security scheme")
			}
			// Every kind of problem has its response and its section.
			for _, k := range httpx.ProblemKinds {
				if doc.Components.Responses["Problem"+itoa(k.Status)] == nil {
					t.Errorf("no response for problems of status %d", k.Status)
				}
			}
		})
	}
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestEveryRouteIsDocumented builds each API's routes as the app does and
// checks that the document has every one of them, method and path, and
// nothing the API does not route.
func TestEveryRouteIsDocumented(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, api := range []apidoc.API{apidoc.Command, apidoc.Query} {
		t.Run(string(api), func(t *testing.T) {
			app := httpx.NewApp(string(api), 0, log)
			reg := prometheus.NewRegistry()
			httpx.Ops(app, reg, func(context.Context) error { return nil }, false)
			if err := apidoc.Routes(app, api); err != nil {
				t.Fatal(err)
			}
			switch api {
			case apidoc.Command:
				commandapi.New(nil, commandapi.Options{CacheBytes: 1 << 20}, reg, log).Routes(app)
			case apidoc.Query:
				queryapi.New(nil, nil, nil, nil, queryapi.Options{Versions: 1, CacheBytes: 1 << 20}, reg, log).Routes(app)
			}
			b, err := apidoc.Document(api)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := openapi3.NewLoader().LoadFromData(b)
			if err != nil {
				t.Fatal(err)
			}
			routed := map[string]bool{}
			for _, r := range app.GetRoutes(true) {
				if r.Method == fiber.MethodHead || r.Path == "/" && r.Method != fiber.MethodGet {
					continue // HEAD goes with GET; app.Use registers "/" for every method
				}
				if r.Path == "/" && len(r.Handlers) == 0 {
					continue
				}
				path := regexp.MustCompile(`:([a-z]+)`).ReplaceAllString(r.Path, "{$1}")
				routed[r.Method+" "+path] = true
			}
			documented := map[string]bool{}
			for path, item := range doc.Paths.Map() {
				for method := range item.Operations() {
					documented[method+" "+path] = true
				}
			}
			for r := range routed {
				if !documented[r] {
					t.Errorf("%s is routed but not documented", r)
				}
			}
			for d := range documented {
				if !routed[d] {
					t.Errorf("%s is documented but not routed", d)
				}
			}
		})
	}
}
