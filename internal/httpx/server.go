package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
)

// NewApp returns a Fiber app with inkstream's error handler and body
// limit, whose server refuses ambiguous framing and unknown methods with a
// problem (see guard). Serve it with Serve, so that a connection closed
// with a request half read is closed in stages.
func NewApp(name string, bodyLimit int, log *slog.Logger) *fiber.App {
	if bodyLimit <= 0 {
		bodyLimit = 1 << 20
	}
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
		log.Error("handler panicked", "method", c.Method(), "path", c.Path(), "request_id", RequestID(c),
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}}))
	return app
}

// RequestID is the id of the request c answers (X-Request-Id).
func RequestID(c *fiber.Ctx) string { return c.GetRespHeader(fiber.HeaderXRequestID) }

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

// Ops adds /healthz, /readyz, /metrics and, with pprof, /debug/pprof.
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

// RequestMetrics counts requests and observes their duration by route
// pattern, method and status.
func RequestMetrics(reg *prometheus.Registry, service string) fiber.Handler {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "inkstream_http_requests_total", Help: "HTTP requests by route, method and status.",
		ConstLabels: prometheus.Labels{"service": service},
	}, []string{"route", "method", "status"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "inkstream_http_request_duration_seconds", Help: "HTTP request duration by route and method.",
		ConstLabels: prometheus.Labels{"service": service},
		Buckets:     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
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
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			if p, ok := ProblemFor(err); ok {
				status = p.Status
			} else {
				status = 500
			}
		}
		k := key{c.Route().Path, c.Method(), status}
		v, ok := cache.Load(k)
		if !ok {
			k.route, k.method = strings.Clone(k.route), strings.Clone(k.method)
			v, _ = cache.LoadOrStore(k, series{
				count: reqs.WithLabelValues(k.route, k.method, strconv.Itoa(status)),
				dur:   dur.WithLabelValues(k.route, k.method),
			})
		}
		sr := v.(series)
		sr.count.Inc()
		sr.dur.Observe(time.Since(start).Seconds())
		return err
	}
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
