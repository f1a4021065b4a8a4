package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/inkstream/inkstream/internal/obs"
)

// NewApp returns a Fiber app with inkstream's error handler and body
// limit, whose server refuses ambiguous framing and unknown methods with a
// problem (see guard). Serve it with Serve, so that a connection closed
// with a request half read is closed in stages.
func NewApp(name string, bodyLimit int, log *slog.Logger) *fiber.App {
	if bodyLimit <= 0 {
		bodyLimit = 1 << 20
	}
	log = obs.Logger(log) // request lines carry request_id and trace_id
	app := fiber.New(fiber.Config{
		AppName:               name,
		BodyLimit:             bodyLimit,
		DisableStartupMessage: true,
		ErrorHandler:          ErrorHandler(log),
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		StrictRouting:         false,
		// encoding/json's semantics, about twice as fast.
		JSONEncoder: json.Marshal,
		JSONDecoder: json.Unmarshal,
	})
	guard(app)
	// Every response carries X-Request-Id, the client's (when it is a
	// sane one) or a new one; log lines of the request name it. A panic in
	// a handler is logged with it and answered as a 500 problem by the
	// error handler, and the process lives on.
	app.Use(requestid.New(requestid.Config{Next: func(c *fiber.Ctx) bool {
		if id := c.Request().Header.Peek(fiber.HeaderXRequestID); len(id) > 0 && !saneRequestID(id) {
			c.Request().Header.Del(fiber.HeaderXRequestID)
		}
		return false
	}}))
	app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, p any) {
		log.ErrorContext(logContext(c), "handler panicked", "method", c.Method(), "path", c.Path(),
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}}))
	return app
}

// RequestID is the id of the request c answers (X-Request-Id).
func RequestID(c *fiber.Ctx) string { return c.GetRespHeader(fiber.HeaderXRequestID) }

// logContext is the context a line about request c is logged with: the
// request's own, which carries its id and span (Trace), or, before Trace
// has run, one with its id.
func logContext(c *fiber.Ctx) context.Context {
	ctx := c.UserContext()
	if obs.RequestID(ctx) == "" {
		ctx = obs.WithRequestID(ctx, strings.Clone(RequestID(c)))
	}
	return ctx
}

// saneRequestID accepts a client's request id of up to 128 visible ASCII
// characters; anything else is replaced, so that what reaches the logs and
// the answer stays short and printable.
func saneRequestID(id []byte) bool {
	if len(id) > 128 {
		return false
	}
	for _, b := range id {
		if b <= ' ' || b > '~' {
			return false
		}
	}
	return true
}

// Readiness reports whether a process can serve: nil when it can.
type Readiness func(ctx context.Context) error

// Ops adds /healthz, /readyz, /metrics and, with pprof, /debug/pprof, and
// registers the readiness as the metric inkstream_ready on reg.
func Ops(app *fiber.App, reg *prometheus.Registry, ready Readiness, withPprof bool) {
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		if err := ready(c.UserContext()); err != nil {
			return WriteProblem(c, &Problem{Type: kindOf(503).Type(), Title: "Not ready", Status: 503, Detail: err.Error(), RetryAfter: 1})
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inkstream_ready", Help: "1 when the process is ready (GET /readyz answers 200), else 0; asked at each scrape.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if ready(ctx) != nil {
			return 0
		}
		return 1
	}))
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	if withPprof {
		app.Get("/debug/pprof/cmdline", adaptor.HTTPHandlerFunc(pprof.Cmdline))
		app.Get("/debug/pprof/profile", adaptor.HTTPHandlerFunc(pprof.Profile))
		app.Get("/debug/pprof/symbol", adaptor.HTTPHandlerFunc(pprof.Symbol))
		app.Get("/debug/pprof/trace", adaptor.HTTPHandlerFunc(pprof.Trace))
		app.Get("/debug/pprof/*", adaptor.HTTPHandlerFunc(pprof.Index))
	}
}

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// UnmatchedRoute is the route label (and span route) of the requests that
// matched no route: one series for all of them, whatever their paths.
const UnmatchedRoute = "unmatched"

// route is the pattern of the route that handled the request, or
// UnmatchedRoute when none did. self is the route of the middleware that
// asks, taken before it called Next: when no route matched, Fiber leaves
// the last middleware's route in place and answers Next with its 404 or
// 405 error.
func route(c *fiber.Ctx, self *fiber.Route, err error) string {
	r := c.Route()
	var fe *fiber.Error
	if r == self || errors.As(err, &fe) && (fe == fiber.ErrMethodNotAllowed || fe.Code == fiber.StatusNotFound && strings.HasPrefix(fe.Message, "Cannot ")) {
		return UnmatchedRoute
	}
	return r.Path
}

// status is the status code the request is answered with: the response's,
// or for a returned error the one the error handler will send.
func status(c *fiber.Ctx, err error) int {
	if err == nil {
		return c.Response().StatusCode()
	}
	if p, ok := ProblemFor(err); ok {
		return p.Status
	}
	return 500
}

// RequestMetrics counts requests and observes their duration by route
// pattern, method and status. The labels are the route's pattern
// (UnmatchedRoute for a request that matched none), so their number is
// bounded by the routes; no label names the process, which is the scrape
// target's (job, instance).
func RequestMetrics(reg prometheus.Registerer) fiber.Handler {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "inkstream_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
	}, []string{"route", "method", "status"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "inkstream_http_request_duration_seconds", Help: "HTTP request duration by route pattern and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method"})
	reg.MustRegister(reqs, dur)
	// Resolved series are cached: the hot path does one lock-free lookup
	// instead of hashing label values on every request.
	type key struct {
		route, method string
		status        int
	}
	type series struct {
		count prometheus.Counter
		dur   prometheus.Observer
	}
	var cache sync.Map
	return func(c *fiber.Ctx) error {
		start := time.Now()
		self := c.Route()
		err := c.Next()
		code := status(c, err)
		k := key{route(c, self, err), c.Method(), code}
		v, ok := cache.Load(k)
		if !ok {
			k.route, k.method = strings.Clone(k.route), strings.Clone(k.method)
			v, _ = cache.LoadOrStore(k, series{
				count: reqs.WithLabelValues(k.route, k.method, strconv.Itoa(code)),
				dur:   dur.WithLabelValues(k.route, k.method),
			})
		}
		sr := v.(series)
		sr.count.Inc()
		sr.dur.Observe(time.Since(start).Seconds())
		return err
	}
}

// Trace puts what the log lines of a request carry into its context (its
// request id, from the request id middleware, which must come before) and,
// when tracing is on, starts its server span: a child of the client's
// traceparent, if it sent one, named for the method and route pattern.
// With tracing off it makes no span and allocates only for the request id.
func Trace() fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, self := c.UserContext(), c.Route()
		var span trace.Span
		if obs.Tracing() {
			ctx = obs.Propagator.Extract(ctx, headerCarrier{&c.Request().Header})
			ctx, span = obs.Tracer().Start(ctx, "HTTP", serverSpan) // named at its end, for its route
			if span.IsRecording() {
				span.SetAttributes(semconv.HTTPRequestMethodKey.String(strings.Clone(c.Method())), semconv.URLPath(strings.Clone(c.Path())))
			} else {
				span = nil // sampled out: nothing to finish
			}
		}
		if id := requestID(c); id != "" {
			ctx = obs.WithRequestID(ctx, id)
		}
		c.SetUserContext(ctx)
		err := c.Next()
		if span != nil {
			r, code := route(c, self, err), status(c, err)
			span.SetName(c.Method() + " " + r)
			span.SetAttributes(semconv.HTTPRoute(r), semconv.HTTPResponseStatusCode(code))
			if code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(code))
			}
			span.End()
		}
		return err
	}
}

// serverSpan is the option of every request's span, made once.
var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// requestID is the request's id as the request id middleware (Fiber's
// requestid) left it in the locals: a string of its own when it made one,
// the bytes of the request's header, which the next request overwrites,
// when the client sent one (then it is copied).
func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals("requestid").(string)
	switch {
	case id == "":
		return strings.Clone(c.GetRespHeader(fiber.HeaderXRequestID))
	case len(c.Request().Header.Peek(fiber.HeaderXRequestID)) > 0:
		return strings.Clone(id)
	}
	return id
}

// headerCarrier reads a request's headers for the W3C propagator.
type headerCarrier struct{ h *fasthttp.RequestHeader }

func (c headerCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c headerCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c headerCarrier) Keys() []string {
	var keys []string
	c.h.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}

// Serve serves app on ln until ctx ends, then shuts it down within the
// grace period. A connection that closes with a request half read (a
// body over the limit, a refused request) is closed in stages, so that
// the client reads the answer (see guard).
func Serve(ctx context.Context, app *fiber.App, ln net.Listener, log *slog.Logger) error {
	errc := make(chan error, 1)
	drain := int64(lingerBodies) * int64(app.Config().BodyLimit)
	go func() { errc <- app.Listener(lingerListener{Listener: ln, max: drain}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("http shutdown", "err", err)
	}
	// A shutdown that comes before fasthttp has registered ln does nothing
	// and Listener would serve for ever; a closed ln makes it return nil.
	_ = ln.Close()
	return <-errc
}

// BodyLimitFor lets requests to path (its query aside) carry bodies of up
// to limit bytes, beyond the app's own body limit; the others keep it.
func BodyLimitFor(app *fiber.App, path string, limit int) {
	srv := app.Server()
	screen := srv.HeaderReceived
	srv.HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		rc := screen(h)
		uri := h.RequestURI()
		if bytes.HasPrefix(uri, []byte(path)) && (len(uri) == len(path) || uri[len(path)] == '?') && rc.MaxRequestBodySize == 0 {
			rc.MaxRequestBodySize = limit
		}
		return rc
	}
}
