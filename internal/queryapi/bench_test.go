package queryapi

import (
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkGetArticleCached is the hot path: GET /api/articles/{id} of a
// published article the view holds, anonymous, through the Fiber app.
func BenchmarkGetArticleCached(b *testing.B) {
	h := fuzzService(b)
	var ctx fasthttp.RequestCtx
	uri := "/api/articles/0196b5c2-7d1e-7a3b-8c4d-000000000000"
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(http.MethodGet)
		ctx.Request.SetRequestURI(uri)
		h(&ctx)
		if ctx.Response.StatusCode() != http.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
