// Package apidoc is the API description of each inkstream API: an OpenAPI
// 3.1 document served at /openapi.json, a reference rendered from it at
// /docs (Redoc's standalone bundle, embedded: nothing is fetched from
// elsewhere at run time), and /problems/<kind>, where every problem type
// URI resolves to its section of the reference.
//
// The document is written by hand in openapi/*.yaml (what both APIs share,
// and each API's own routes); the problem responses and the "Problem types"
// section are generated from httpx.ProblemKinds, the table the error
// handler answers from, so that they cannot drift apart.
package apidoc

import (
	"embed"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"
	"gopkg.in/yaml.v3"

	"github.com/inkstream/inkstream/internal/httpx"
)

// API names one of the APIs.
type API string

// The APIs.
const (
	Command API = "command"
	Query   API = "query"
)

//go:embed openapi/*.yaml
var specs embed.FS

//go:embed redoc/redoc.standalone.js
var redocJS []byte

// ProblemSection is the anchor of the reference's section on a kind of
// problem: Redoc's id of the Markdown heading that documents it.
func ProblemSection(kind string) string { return "section/Problem-types/" + kind }

// Document returns the OpenAPI document of api as JSON.
func Document(api API) ([]byte, error) {
	doc, err := load("common")
	if err != nil {
		return nil, err
	}
	own, err := load(string(api))
	if err != nil {
		return nil, err
	}
	tags, _ := own["tags"].([]any)
	commonTags, _ := doc["tags"].([]any)
	merge(doc, own)
	doc["tags"] = append(tags, commonTags...)
	info := doc["info"].(map[string]any)
	info["description"] = strings.TrimSpace(info["description"].(string)) + "\n\n" + problemSection()
	components := doc["components"].(map[string]any)
	responses, _ := components["responses"].(map[string]any)
	if responses == nil {
		responses = map[string]any{}
		components["responses"] = responses
	}
	maps.Copy(responses, problemResponses())
	return json.Marshal(doc)
}

func load(name string) (map[string]any, error) {
	b, err := specs.ReadFile("openapi/" + name + ".yaml")
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("openapi/%s.yaml: %w", name, err)
	}
	return m, nil
}

// merge adds src into dst: maps are merged member by member, anything
// else in src replaces dst's.
func merge(dst, src map[string]any) {
	for k, v := range src {
		sm, ok1 := v.(map[string]any)
		dm, ok2 := dst[k].(map[string]any)
		if ok1 && ok2 {
			merge(dm, sm)
			continue
		}
		dst[k] = v
	}
}

// problemSection documents every kind of problem, one Markdown heading
// each (Redoc makes each a section: ProblemSection).
func problemSection() string {
	var b strings.Builder
	b.WriteString("# Problem types\n\nEvery error is an RFC 9457 problem (`application/problem+json`): `type`, `title`, `status`, `detail`, and for a validation problem `errors`, field → message. `type` names the kind of problem: a URI reference, the same on every deployment, that resolves (on either API) to its section here.\n\n")
	for _, k := range httpx.ProblemKinds {
		fmt.Fprintf(&b, "## %s\n\n`type`: `%s` — **%d %s**\n\n%s\n\n", k.Name, k.Type(), k.Status, k.Title, k.Doc)
	}
	return b.String()
}

// problemResponses are the responses Problem<status>: a problem of one of
// the kinds with that status, with the headers it always has.
func problemResponses() map[string]any {
	byStatus := map[int][]httpx.ProblemKind{}
	for _, k := range httpx.ProblemKinds {
		byStatus[k.Status] = append(byStatus[k.Status], k)
	}
	out := map[string]any{}
	for _, status := range slices.Sorted(maps.Keys(byStatus)) {
		kinds := byStatus[status]
		var types, names []any
		for _, k := range kinds {
			types = append(types, k.Type())
			names = append(names, "["+k.Name+"](#"+ProblemSection(k.Name)+")")
		}
		headers := map[string]any{"X-Request-Id": ref("headers", "XRequestID")}
		switch status {
		case http.StatusUnauthorized:
			headers["WWW-Authenticate"] = ref("headers", "WWWAuthenticate")
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			headers["Retry-After"] = ref("headers", "RetryAfter")
		}
		desc := fmt.Sprintf("%s: a problem of type %s.", kinds[0].Title, joinAny(names))
		out["Problem"+strconv.Itoa(status)] = map[string]any{
			"description": desc,
			"headers":     headers,
			"content": map[string]any{httpx.ContentTypeProblem: map[string]any{"schema": map[string]any{
				"allOf": []any{ref("schemas", "Problem"), map[string]any{"properties": map[string]any{
					"status": map[string]any{"const": status},
					"type":   map[string]any{"enum": types},
				}}},
			}}},
		}
	}
	return out
}

func ref(kind, name string) map[string]any {
	return map[string]any{"$ref": "#/components/" + kind + "/" + name}
}

func joinAny(xs []any) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.(string)
	}
	return strings.Join(s, " or ")
}

// Routes serves api's document at /openapi.json, its reference at /docs
// and the problem type URIs. The document is built once, here.
func Routes(app *fiber.App, api API) error {
	doc, err := Document(api)
	if err != nil {
		return err
	}
	app.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(doc)
	})
	page := []byte(docsPage(api))
	app.Get("/docs", func(c *fiber.Ctx) error {
		// Everything the reference needs is served here: Redoc's footer
		// logo, which it would load from its makers' site, is not.
		c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'")
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.Send(page)
	})
	app.Get("/docs/redoc.standalone.js", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
		c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
		return c.Send(redocJS)
	})
	app.Get(httpx.ProblemsPath+":kind", func(c *fiber.Ctx) error {
		k, ok := httpx.KindNamed(c.Params("kind"))
		if !ok {
			return httpx.NewProblem(http.StatusNotFound, "no problem type "+strconv.Quote(c.Params("kind")))
		}
		return c.Redirect("/docs#"+ProblemSection(k.Name), http.StatusFound)
	})
	return nil
}

func docsPage(api API) string {
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>inkstream ` + string(api) + ` API reference</title>
<style>body { margin: 0; }</style>
</head>
<body>
<noscript>This reference needs JavaScript; the document it shows is <a href="/openapi.json">/openapi.json</a>.</noscript>
<redoc spec-url="/openapi.json" hide-download-button="false"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
`
}
