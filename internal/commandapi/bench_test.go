package commandapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// encodeOnly stands in for the event store in BenchmarkCreateArticle: it
// encodes each event as the real Append does and acknowledges it at once,
// so the benchmark measures the command API's own work per request and
// none of NATS's. Behaviour against NATS is tested in internal/systest.
type encodeOnly struct{ seq atomic.Uint64 }

var errNotInBenchmark = errors.New("not used by the benchmark")

func (s *encodeOnly) Append(_ context.Context, e domain.Event, _ uint64, _, _ string) (uint64, bool, error) {
	if _, err := events.Encode(e); err != nil {
		return 0, false, err
	}
	return s.seq.Add(1), false, nil
}

func (s *encodeOnly) History(context.Context, string, uint64) (events.History, error) {
	return events.History{}, errNotInBenchmark
}

func (s *encodeOnly) Last(context.Context, string) (events.Message, error) {
	return events.Message{}, errNotInBenchmark
}

func (s *encodeOnly) Get(context.Context, uint64) (events.Message, error) {
	return events.Message{}, errNotInBenchmark
}

// BenchmarkCreateArticle is the command API's CPU per POST /api/articles
// of the article inkbench posts, through Fiber's handler: routing, the
// bearer token, decoding, validation, the policy, the decision, the
// event's encoding and the response.
func BenchmarkCreateArticle(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := httpx.NewApp("bench", 0, log)
	// As in production: the token is verified by the middleware (once:
	// a token seen again is remembered), the policy asked for every write.
	signer, err := auth.NewSigner()
	if err != nil {
		b.Fatal(err)
	}
	v, err := auth.New(b.Context(), auth.Options{Trusted: []jwk.Key{signer.Public()}}, log)
	if err != nil {
		b.Fatal(err)
	}
	token, err := signer.Token(auth.Claims{Subject: "author-1", Roles: []string{"author"}, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	app.Use("/api", v.Middleware())
	New(&encodeOnly{}, Options{CacheBytes: 16 << 20, WriteTimeout: 5 * time.Second}, prometheus.NewRegistry(), log).Routes(app)
	h := app.Handler()
	body := []byte(`{"title":"Posted article 17","content":"` +
		strings.Repeat("Event sourcing keeps every change as an immutable fact; the read side folds them. ", 12) +
		`","author_id":"author-1","status":"draft","tags":["bench","nats","go"]}`)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(http.MethodPost)
		ctx.Request.SetRequestURI("/api/articles")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+token)
		ctx.Request.SetBody(body)
		h(&ctx)
		if ctx.Response.StatusCode() != http.StatusCreated {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

func (s *encodeOnly) AppendBatch(context.Context, []domain.Event, []string, string) (uint64, uint64, bool, error) {
	return 0, 0, false, errNotInBenchmark
}

func (s *encodeOnly) Purge(context.Context, string, uint64) error { return errNotInBenchmark }

func (s *encodeOnly) Range(context.Context, uint64, uint64) ([]events.Message, error) {
	return nil, errNotInBenchmark
}
