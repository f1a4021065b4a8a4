// Package app assembles the inkstream roles (command API, projector, query
// API and the all-in-one with an embedded nats-server) from their
// configuration, and runs each until its context ends, then shuts it down in
// order: HTTP first, then consumers, then the NATS connection.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/apidoc"
	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/commandapi"
	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/projector"
	"github.com/inkstream/inkstream/internal/queryapi"
)

// Running is a started role.
type Running struct {
	// Addr is the address the role's HTTP server listens on.
	Addr   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Stop shuts the role down and waits until it has.
func (r *Running) Stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// Done is closed when the role has stopped.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is why the role stopped (nil on a clean stop); valid after Done.
func (r *Running) Err() error { return r.err }

// base is what every role sets up before its own parts: the listener (bound
// first, so a busy port fails at start), the NATS connection and resources.
type base struct {
	ln     net.Listener
	conn   *natsx.Conn
	res    natsx.Resources
	reg    *prometheus.Registry
	app    *fiber.App
	log    *slog.Logger
	onStop []func(context.Context) error // after HTTP has stopped
	// onShutdown runs as HTTP begins to stop: it ends what would keep a
	// connection open (the live feed's streams).
	onShutdown []func()
}

// setup binds the listener and connects; then, with -provision (the admin
// user), it provisions the resources, or else looks them up and waits
// for them (and for the projector consumer, with consumer).
func setup(ctx context.Context, name, listen string, bodyLimit int, c config.Common, consumer bool, log *slog.Logger) (*base, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	conn, err := natsx.Connect(ctx, c.NATS, log)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var res natsx.Resources
	if c.NATS.Provision {
		res, err = natsx.Provision(ctx, conn.JS, c.NATS, log)
	} else {
		res, err = natsx.Lookup(ctx, conn.JS, c.NATS, consumer, log)
	}
	if err != nil {
		conn.NC.Close()
		ln.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	reg := httpx.NewRegistry()
	app := httpx.NewApp(name, bodyLimit, log)
	app.Use(httpx.RequestMetrics(reg), httpx.Trace())
	return &base{ln: ln, conn: conn, res: res, reg: reg, app: app, log: log}, nil
}

func (b *base) ready(extra func() error) httpx.Readiness {
	return func(ctx context.Context) error {
		if !b.conn.NC.IsConnected() {
			return errors.New("not connected to NATS")
		}
		if err := natsx.Ready(ctx, b.conn.JS); err != nil {
			return err
		}
		if extra != nil {
			return extra()
		}
		return nil
	}
}

// authenticate installs the bearer token middleware on the API routes,
// trusting the keys cfg names (and the development key of cfg.DevKeyDir).
// On an error the base is closed.
func (b *base) authenticate(ctx context.Context, cfg config.Auth) error {
	o := auth.Options{JWKSURL: cfg.JWKSURL, JWKSFile: cfg.JWKSFile, Issuer: cfg.Issuer, Audience: cfg.Audience, RolesClaim: cfg.RolesClaim}
	if cfg.DevKeyDir != "" {
		k, err := auth.LoadDevKey(cfg.DevKeyDir)
		if err != nil {
			b.close()
			return err
		}
		o.Trusted = append(o.Trusted, k.Public())
	}
	v, err := auth.New(ctx, o, b.log)
	if err != nil {
		b.close()
		return err
	}
	b.onStop = append(b.onStop, v.Close)
	b.app.Use("/api", v.Middleware())
	return nil
}

// close releases what setup took, for a role that fails to start.
func (b *base) close() {
	b.conn.NC.Close()
	b.ln.Close()
}

// run starts the HTTP server and the workers; on ctx's end it stops HTTP,
// then the workers, then drains NATS.
func (b *base) run(ctx context.Context, workers ...func(context.Context) error) *Running {
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Addr: b.ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	wctx, wcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w(wctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	go func() {
		<-ctx.Done()
		for _, f := range b.onShutdown {
			f()
		}
	}()
	go func() {
		defer close(r.done)
		err := httpx.Serve(ctx, b.app, b.ln, b.log)
		for _, f := range b.onStop {
			err = errors.Join(err, f(context.Background()))
		}
		cancel()
		wcancel()
		wg.Wait()
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		derr := b.conn.Drain(dctx)
		mu.Lock()
		r.err = errors.Join(append(errs, err, derr)...)
		mu.Unlock()
	}()
	return r
}

// lagTimeout bounds the requests a scrape makes for the read model's lag.
const lagTimeout = 2 * time.Second

// StartCommandAPI starts the write service.
func StartCommandAPI(ctx context.Context, cfg config.CommandAPI, log *slog.Logger) (*Running, error) {
	b, err := setup(ctx, "command-api", cfg.Listen, cfg.BodyLimit, cfg.Common, false, log)
	if err != nil {
		return nil, err
	}
	httpx.CORS(b.app, cfg.Web.CORSOrigins, "GET,HEAD,POST,PUT,PATCH,DELETE")
	if err := b.authenticate(ctx, cfg.Auth); err != nil {
		return nil, err
	}
	if cfg.RateLimit > 0 {
		b.app.Use("/api", httpx.RateLimit(cfg.RateLimit, cfg.RateBurst))
	}
	store := natsx.NewEventStore(b.conn.JS).Instrument(obs.NewPublish(b.reg))
	svc := commandapi.New(store, commandapi.Options{CacheBytes: uint64(cfg.CacheBytes), WriteTimeout: cfg.WriteTimeout, BulkMax: cfg.BulkMax, PublicQueryURL: cfg.Web.PublicQueryURL}, b.reg, log)
	httpx.Ops(b.app, b.reg, b.ready(nil), cfg.Pprof)
	if err := apidoc.Routes(b.app, apidoc.Command); err != nil {
		b.close()
		return nil, err
	}
	svc.Routes(b.app)
	httpx.BodyLimitFor(b.app, commandapi.BulkPath, cfg.BulkBodyLimit)
	log.Info("command API listening", "addr", b.ln.Addr().String())
	if cfg.GroupCommit {
		return b.run(ctx, store.RunGroupCommit), nil
	}
	return b.run(ctx), nil
}

// StartQueryAPI starts the read service; /readyz answers 200 once its view
// has loaded the bucket.
func StartQueryAPI(ctx context.Context, cfg config.QueryAPI, log *slog.Logger) (*Running, error) {
	b, err := setup(ctx, "query-api", cfg.Listen, 0, cfg.Common, true, log)
	if err != nil {
		return nil, err
	}
	httpx.CORS(b.app, cfg.Web.CORSOrigins, "GET,HEAD")
	if err := b.authenticate(ctx, cfg.Auth); err != nil {
		return nil, err
	}
	svc := queryapi.New(natsx.NewEventStore(b.conn.JS), natsx.NewSnapshots(b.conn.JS, b.res.KV), natsx.NewProgress(b.conn.JS, b.res.KV), natsx.NewLog(b.conn.JS),
		queryapi.Options{Versions: cfg.Versions, MinSeqWait: cfg.MinSeqWait, ReadTimeout: cfg.ReadTimeout, CacheBytes: uint64(cfg.CacheBytes), PublicURL: cfg.Web.PublicQueryURL,
			FoldStream: cfg.ViewSource == config.ViewFromStream, Feed: queryapi.FeedOptions{MaxClients: cfg.Feed.MaxClients, Heartbeat: cfg.Feed.Heartbeat, Queue: cfg.Feed.Queue, CacheBytes: cfg.Feed.CacheBytes}}, b.reg, log)
	obs.RegisterLag(b.reg, natsx.NewLog(b.conn.JS), lagTimeout, log)
	b.onShutdown = append(b.onShutdown, svc.Close)
	httpx.Ops(b.app, b.reg, b.ready(func() error {
		if !svc.Ready() {
			return errors.New("view is still loading")
		}
		return nil
	}), cfg.Pprof)
	if err := apidoc.Routes(b.app, apidoc.Query); err != nil {
		b.close()
		return nil, err
	}
	svc.Routes(b.app)
	log.Info("query API listening", "addr", b.ln.Addr().String())
	return b.run(ctx, svc.Watch, svc.Track), nil
}

// StartProjector starts a projector with its health and metrics server.
func StartProjector(ctx context.Context, cfg config.Projector, log *slog.Logger) (*Running, error) {
	b, err := setup(ctx, "projector", cfg.Listen, 0, cfg.Common, true, log)
	if err != nil {
		return nil, err
	}
	p := projector.New(natsx.NewConsumer(b.conn.JS, cfg.NATS.Provision, log), natsx.NewSnapshots(b.conn.JS, b.res.KV), natsx.NewEventStore(b.conn.JS),
		projector.Options{Batch: cfg.Batch, CacheBytes: uint64(cfg.CacheBytes)}, b.reg, log)
	obs.RegisterLag(b.reg, natsx.NewLog(b.conn.JS), lagTimeout, log)
	httpx.Ops(b.app, b.reg, b.ready(nil), cfg.Pprof)
	log.Info("projector health listening", "addr", b.ln.Addr().String())
	return b.run(ctx, p.Run), nil
}
