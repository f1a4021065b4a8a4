// Package config reads the typed configuration of each inkstream process from
// command-line flags, each of which also reads an environment variable
// INKSTREAM_<FLAG> (upper case, '-' → '_'). The NATS URL also honours the
// standard NATS_URL and the NATS CLI's NATS_CONTEXT, so the NATS CLI and
// the services share one configuration. A variable set to the empty string
// sets its flag to the empty string, as -flag= does. Nothing else in
// inkstream reads the environment. A NATS URL is checked here, once, without
// quoting its credentials (natsx.CheckURLs); its passwords and tokens reach
// logs and errors only through natsx's redaction. Every error of a Parse
// function but flag.ErrHelp is an ErrUsage. (The OpenTelemetry SDK reads
// the standard OTEL_* variables itself: see obs.SetupTracing.)
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/obs"
)

// EnvPrefix is the prefix of every environment variable a flag reads.
const EnvPrefix = "INKSTREAM_"

// ErrUsage marks a configuration error: a bad flag, argument or
// environment variable. The commands exit with status 2 on it.
var ErrUsage = errors.New("usage")

// usageError is a configuration error: its message is err's, and it is
// both ErrUsage and err.
type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{ErrUsage, e.err} }

// usage marks err as a configuration error (flag.ErrHelp stays as it is).
func usage(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}

// Common is what every process has.
type Common struct {
	NATS      natsx.Options
	LogLevel  slog.Level
	LogFormat string // text or json
	Pprof     bool   // serve /debug/pprof on the HTTP listener
}

// Auth says which bearer tokens the APIs trust (see package auth).
type Auth struct {
	JWKSURL    string // an OIDC provider's jwks_uri, refreshed in the background
	JWKSFile   string // a JWKS file, read at start
	Issuer     string // the iss tokens must have (any when empty)
	Audience   string // what tokens' aud must include (any when empty)
	RolesClaim string // the claim with the roles; a dotted path reaches into objects
	// DevKeyDir, when set, is a data directory whose development key is
	// trusted too: the all-in-one's (not a flag).
	DevKeyDir string
}

// CommandAPI configures cmd/command-api.
type CommandAPI struct {
	Common
	Auth          Auth
	Listen        string
	BodyLimit     int
	WriteTimeout  time.Duration // how long a write may wait for JetStream, retries included
	CacheBytes    int64         // budget of the article states the command API keeps in memory
	BulkMax       int           // most articles in one bulk create
	BulkBodyLimit int           // largest body of a bulk create
	RateLimit     float64       // writes per second per token subject (else client IP); 0: no limit
	RateBurst     int           // writes a client may make at once above RateLimit
	GroupCommit   bool          // publish concurrent writes' events together
	Web           Web
}

// Web is how an API shows itself on the web: the query API's public URL
// (where Location headers and the Atom feed point) and the origins of
// browser front ends allowed to call it (CORS).
type Web struct {
	PublicQueryURL string   // the query API as clients reach it, e.g. https://blog.example; no trailing slash; empty on the query API: each request's own
	CORSOrigins    []string // origins given the CORS headers and preflights; none by default
}

// Projector configures cmd/projector.
type Projector struct {
	Common
	Listen     string // health and metrics
	Batch      int    // messages fetched per pull
	CacheBytes int64  // budget of the snapshots the projector keeps in memory
}

// QueryAPI configures cmd/query-api.
type QueryAPI struct {
	Common
	Auth        Auth
	Listen      string
	Versions    int           // versions kept and served by /versions
	MinSeqWait  time.Duration // how long a read with X-Min-Event-Seq waits for the view
	ReadTimeout time.Duration // how long a read may wait for NATS
	CacheBytes  int64         // budget of the article bodies kept in memory
	// ViewSource is what keeps the in-memory view fresh: ViewFromBucket
	// (the snapshot bucket's watch) or ViewFromStream (the stream itself).
	ViewSource string
	Web        Web
	Feed       Feed
}

// The sources of the query API's view (-view-source).
const (
	ViewFromBucket = "bucket"
	ViewFromStream = "stream"
)

// DefaultViewSource is the query API's -view-source when none is given (a
// variable, so that a benchmark build can set it with -ldflags -X).
var DefaultViewSource = ViewFromBucket

// Feed bounds the live change feed (GET /api/changes).
type Feed struct {
	MaxClients int           // clients at once (503 above)
	Heartbeat  time.Duration // a comment line this often keeps proxies open
	Queue      int           // events queued for a client before it is dropped as too slow
	CacheBytes int           // budget of the article states the feed keeps to fold events
}

// Admin configures the admin commands of cmd/inkstream: provision,
// rebuild and verify.
type Admin struct {
	Common
	CacheBytes int64  // rebuild: the window of snapshots folded in memory before they are written
	Yes        bool   // rebuild: do not ask for confirmation on a terminal
	CPUProfile string // rebuild: write a CPU profile of the run to this file
}

// AllInOne configures cmd/inkstream: an embedded NATS server and the three roles.
type AllInOne struct {
	Common
	Auth        Auth   // besides the development key in DataDir, which it always trusts
	NATSListen  string // host:port of the embedded server
	DataDir     string // JetStream store directory
	CommandAPI  CommandAPI
	Projector   Projector
	QueryAPI    QueryAPI
	HTTPMonitor string // embedded server monitoring host:port; empty disables
	Web         Web    // for both APIs; the public query URL defaults to -query-listen's
}

// Defaults.
const (
	DefaultNATSURL         = "nats://127.0.0.1:4222"
	DefaultCommandListen   = "127.0.0.1:8080"
	DefaultQueryListen     = "127.0.0.1:8081"
	DefaultProjectorListen = "127.0.0.1:8082"
	DefaultBodyLimit       = 1 << 20
	DefaultVersions        = 10
	DefaultMaxFeedClients  = 1000
	DefaultFeedHeartbeat   = 15 * time.Second
	DefaultFeedQueue       = 256
	DefaultFeedCacheBytes  = 16 << 20
)

// webFlags are the flags of Web, shared by both APIs and the all-in-one.
func webFlags(fs *flag.FlagSet, w *Web, publicQuery string) {
	fs.StringVar(&w.PublicQueryURL, "public-query-url", publicQuery, "the query API's URL as clients reach it: Location headers and the Atom feed point there (the query API, when empty: the scheme and host of each request)")
	fs.Func("cors-origins", "comma-separated origins (scheme://host[:port], or *) of browser front ends allowed to call the APIs (CORS); none by default", func(v string) error {
		w.CORSOrigins = nil
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				w.CORSOrigins = append(w.CORSOrigins, o)
			}
		}
		return nil
	})
}

func (w Web) validate() error {
	var errs []error
	// Empty, the query API's own links take the scheme and host of each request.
	if w.PublicQueryURL != "" {
		u, err := url.Parse(w.PublicQueryURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("-public-query-url must be an http or https URL of a host, not %q", w.PublicQueryURL))
		}
	}
	for _, o := range w.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("-cors-origins: %q is not an origin (scheme://host[:port]) nor *", o))
		}
	}
	return errors.Join(errs...)
}

// finish drops a trailing slash of the public query URL.
func (w *Web) finish() { w.PublicQueryURL = strings.TrimRight(w.PublicQueryURL, "/") }

// defaultPublicQuery is the public URL of a query API listening on listen.
func defaultPublicQuery(listen string) string { return "http://" + listen }

// commonFlags are the flags of a service: how it reaches NATS, its
// resources, its logs and its listener's extras.
func commonFlags(fs *flag.FlagSet, c *Common, name string) (level *string) {
	natsFlags(fs, c, name)
	fs.BoolVar(&c.NATS.Provision, "provision", false, "also create or update stream, bucket and consumer at start-up (needs the admin NATS user; never lowers replicas)")
	return roleFlags(fs, c)
}

// natsFlags say how a process reaches NATS: the servers and the credentials.
func natsFlags(fs *flag.FlagSet, c *Common, name string) {
	fs.StringVar(&c.NATS.URL, "nats-url", "", "NATS server URLs, comma-separated (default: NATS_URL, else the NATS context's, else "+DefaultNATSURL+")")
	fs.StringVar(&c.NATS.Name, "nats-name", name, "NATS connection name")
	fs.StringVar(&c.NATS.Context, "nats-context", "", "NATS CLI context: a name the CLI knows or a .json file; the flags below override it (also NATS_CONTEXT)")
	fs.StringVar(&c.NATS.Creds, "nats-creds", "", "NATS credentials file: user JWT and nkey seed (also NATS_CREDS)")
	fs.StringVar(&c.NATS.NKey, "nats-nkey", "", "NATS nkey seed file (also NATS_NKEY)")
	fs.StringVar(&c.NATS.User, "nats-user", "", "NATS user name, with -nats-password (also NATS_USER)")
	fs.StringVar(&c.NATS.Password, "nats-password", "", "NATS password, never logged (also NATS_PASSWORD)")
	fs.StringVar(&c.NATS.CA, "nats-ca", "", "CA certificate file that signed the NATS servers' TLS certificates (also NATS_CA)")
	fs.StringVar(&c.NATS.Cert, "nats-cert", "", "client certificate file, for NATS servers that verify clients, with -nats-key (also NATS_CERT)")
	fs.StringVar(&c.NATS.Key, "nats-key", "", "the client certificate's private key file (also NATS_KEY)")
}

// roleFlags are the flags of the all-in-one's roles, which the services
// share: the layout of the resources, logs and profiling.
func roleFlags(fs *flag.FlagSet, c *Common) (level *string) {
	level = layoutFlags(fs, c)
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof on the HTTP listener")
	return level
}

// layoutFlags are the replicas and window of the resources, and the logs.
func layoutFlags(fs *flag.FlagSet, c *Common) (level *string) {
	fs.IntVar(&c.NATS.StreamReplicas, "stream-replicas", 1, "replicas of stream ARTICLES (1 or 3 in a cluster); an existing stream's are never lowered")
	fs.IntVar(&c.NATS.KVReplicas, "kv-replicas", 1, "replicas of KV bucket articles; an existing bucket's are never lowered")
	fs.DurationVar(&c.NATS.DuplicateWindow, "duplicate-window", 2*time.Minute, "JetStream de-duplication window (how long an Idempotency-Key is honoured)")
	fs.StringVar(&c.NATS.StreamCompression, "stream-compression", "s2", "how stream ARTICLES stores events on disk: s2 or none")
	level = fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	return level
}

// authFlags are the flags of Auth, shared by both APIs and the all-in-one.
func authFlags(fs *flag.FlagSet, a *Auth) {
	fs.StringVar(&a.JWKSURL, "auth-jwks-url", "", "JWKS URL of the identity provider (OIDC jwks_uri) whose tokens are trusted; refreshed in the background")
	fs.StringVar(&a.JWKSFile, "auth-jwks-file", "", "JWKS file whose keys are trusted")
	fs.StringVar(&a.Issuer, "auth-issuer", "", "issuer (iss) that tokens must have; any when empty")
	fs.StringVar(&a.Audience, "auth-audience", "", "audience (aud) that tokens must include; any when empty")
	fs.StringVar(&a.RolesClaim, "auth-roles-claim", "roles", "claim with the roles (a JSON array of strings); a dotted path reaches into objects, e.g. realm_access.roles")
}

func (a Auth) validate() error {
	var errs []error
	if a.JWKSURL != "" {
		u, err := url.Parse(a.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("-auth-jwks-url must be an http or https URL, not %q", a.JWKSURL))
		}
	}
	if a.RolesClaim == "" || slices.Contains(strings.Split(a.RolesClaim, "."), "") {
		errs = append(errs, fmt.Errorf("-auth-roles-claim must be a claim name or a dotted path of names, not %q", a.RolesClaim))
	}
	return errors.Join(errs...)
}

func (c *Common) finish(level string) error {
	var errs []error
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		errs = append(errs, fmt.Errorf("-log-level: %w", err))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format must be text or json, not %q", c.LogFormat))
	}
	errs = append(errs, c.finishNATS())
	for _, r := range []struct {
		name string
		v    int
	}{{"-stream-replicas", c.NATS.StreamReplicas}, {"-kv-replicas", c.NATS.KVReplicas}} {
		if r.v < 1 || r.v > 5 {
			errs = append(errs, fmt.Errorf("%s must be 1 to 5, not %d", r.name, r.v))
		}
	}
	if c.NATS.StreamCompression != "s2" && c.NATS.StreamCompression != "none" {
		errs = append(errs, fmt.Errorf("-stream-compression must be s2 or none, not %q", c.NATS.StreamCompression))
	}
	if c.NATS.DuplicateWindow < time.Second {
		errs = append(errs, errors.New("-duplicate-window must be at least 1s"))
	}
	return errors.Join(errs...)
}

// finishNATS checks the NATS settings and resolves the URL: -nats-url, else
// NATS_URL, else the context's, else DefaultNATSURL.
func (c *Common) finishNATS() error {
	n := &c.NATS
	if n.URL == "embedded" { // the all-in-one dials its own server
		return nil
	}
	var errs []error
	if n.Context != "" {
		nctx, err := natsx.LoadContext(n.Context)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("-nats-context: %w", err))
		case strings.TrimSpace(n.URL) == "":
			n.URL = nctx.ServerURL()
		}
	}
	if strings.TrimSpace(n.URL) == "" {
		n.URL = DefaultNATSURL
	}
	if err := natsx.CheckURLs(n.URL); err != nil {
		errs = append(errs, err)
	}
	kinds := 0
	for _, v := range []string{n.Creds, n.NKey, n.User} {
		if v != "" {
			kinds++
		}
	}
	if kinds > 1 {
		errs = append(errs, errors.New("give one of -nats-creds, -nats-nkey and -nats-user, not several"))
	}
	if (n.User == "") != (n.Password == "") {
		errs = append(errs, errors.New("-nats-user and -nats-password go together"))
	}
	if (n.Cert == "") != (n.Key == "") {
		errs = append(errs, errors.New("-nats-cert and -nats-key go together"))
	}
	return errors.Join(errs...)
}

// Logger returns the slog logger the configuration asks for. A line logged
// with a request's context carries its request_id and trace_id (obs.LogHandler).
func (c Common) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(obs.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(obs.LogHandler(slog.NewTextHandler(w, opts)))
}

// ParseCommandAPI reads the command API's configuration.
func ParseCommandAPI(name string, args []string, getenv func(string) string, out io.Writer) (CommandAPI, error) {
	var c CommandAPI
	err := parseRole(name, args, getenv, out, &c.Common, func(fs *flag.FlagSet) {
		authFlags(fs, &c.Auth)
		webFlags(fs, &c.Web, defaultPublicQuery(DefaultQueryListen))
		commandFlags(fs, &c, "listen")
	}, func() error { c.Web.finish(); return errors.Join(c.Auth.validate(), c.Web.validate(), c.validate()) })
	return c, err
}

// parseRole reads the configuration of a role: the common flags, the
// role's own (flags), then checks both (validate: the role's own).
func parseRole(name string, args []string, getenv func(string) string, out io.Writer, c *Common, flags func(*flag.FlagSet), validate func() error) error {
	fs := newFlagSet(name, out)
	level := commonFlags(fs, c, name)
	flags(fs)
	if err := parse(fs, args, getenv); err != nil {
		return usage(err)
	}
	return usage(errors.Join(c.finish(*level), validate()))
}

func commandFlags(fs *flag.FlagSet, c *CommandAPI, listen string) {
	fs.StringVar(&c.Listen, listen, DefaultCommandListen, "command API listen address")
	fs.IntVar(&c.BodyLimit, "body-limit", DefaultBodyLimit, "largest request body in bytes (413 above)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 5*time.Second, "how long a write waits for JetStream, retries included (503 after)")
	fs.Int64Var(&c.CacheBytes, "command-cache-bytes", 32<<20, "bytes of article states the command API keeps in memory")
	fs.IntVar(&c.BulkMax, "bulk-max", 1000, "most articles in one POST /api/articles/_bulk (JetStream's atomic batch limit is 1000)")
	fs.IntVar(&c.BulkBodyLimit, "bulk-body-limit", 16<<20, "largest body of a bulk create in bytes (413 above)")
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "writes per second per client (token subject, else IP) before 429; 0: no limit")
	fs.IntVar(&c.RateBurst, "rate-burst", 20, "writes a client may make at once above -rate-limit")
	fs.BoolVar(&c.GroupCommit, "group-commit", true, "publish the events of concurrent writes together, each answered on its own acknowledgement")
}

func (c CommandAPI) validate() error {
	var errs []error
	if c.BodyLimit < 1024 {
		errs = append(errs, errors.New("-body-limit must be at least 1024"))
	}
	if c.WriteTimeout < 100*time.Millisecond {
		errs = append(errs, errors.New("-write-timeout must be at least 100ms"))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, errors.New("-command-cache-bytes must not be negative"))
	}
	if c.BulkMax < 1 || c.BulkMax > 1000 {
		errs = append(errs, errors.New("-bulk-max must be 1 to 1000"))
	}
	if c.BulkBodyLimit < c.BodyLimit {
		errs = append(errs, errors.New("-bulk-body-limit must be at least -body-limit"))
	}
	if c.RateLimit < 0 {
		errs = append(errs, errors.New("-rate-limit must not be negative"))
	}
	if c.RateBurst < 1 {
		errs = append(errs, errors.New("-rate-burst must be at least 1"))
	}
	return errors.Join(errs...)
}

// ParseProjector reads the projector's configuration.
func ParseProjector(name string, args []string, getenv func(string) string, out io.Writer) (Projector, error) {
	var c Projector
	err := parseRole(name, args, getenv, out, &c.Common, func(fs *flag.FlagSet) { projectorFlags(fs, &c, "listen") }, func() error { return c.validate() })
	return c, err
}

func projectorFlags(fs *flag.FlagSet, c *Projector, listen string) {
	fs.StringVar(&c.Listen, listen, DefaultProjectorListen, "projector health and metrics listen address")
	fs.IntVar(&c.Batch, "batch", 5000, "most messages the projector folds together (it takes what has arrived, up to this)")
	fs.Int64Var(&c.CacheBytes, "projector-cache-bytes", 64<<20, "bytes of snapshots the projector keeps in memory")
}

func (c Projector) validate() error {
	var errs []error
	if c.Batch < 1 || c.Batch > 10_000 {
		errs = append(errs, errors.New("-batch must be 1 to 10000"))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, errors.New("-projector-cache-bytes must not be negative"))
	}
	return errors.Join(errs...)
}

// ParseQueryAPI reads the query API's configuration.
func ParseQueryAPI(name string, args []string, getenv func(string) string, out io.Writer) (QueryAPI, error) {
	var c QueryAPI
	err := parseRole(name, args, getenv, out, &c.Common, func(fs *flag.FlagSet) { authFlags(fs, &c.Auth); webFlags(fs, &c.Web, ""); queryFlags(fs, &c, "listen") },
		func() error { c.Web.finish(); return errors.Join(c.Auth.validate(), c.Web.validate(), c.validate()) })
	return c, err
}

func queryFlags(fs *flag.FlagSet, c *QueryAPI, listen string) {
	fs.StringVar(&c.Listen, listen, DefaultQueryListen, "query API listen address")
	fs.IntVar(&c.Versions, "versions", DefaultVersions, "versions served by /api/articles/{id}/versions")
	fs.DurationVar(&c.MinSeqWait, "min-seq-wait", 2*time.Second, "how long a read with X-Min-Event-Seq waits for the view (503 for lists after)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 5*time.Second, "how long a read that misses the view waits for NATS (503 after)")
	fs.Int64Var(&c.CacheBytes, "cache-bytes", 64<<20, "bytes of article bodies the query API keeps in memory (the index of every article is kept besides)")
	fs.StringVar(&c.ViewSource, "view-source", DefaultViewSource, "what keeps the in-memory view fresh: bucket (a watch of the snapshot bucket) or stream (the query API folds stream ARTICLES itself; the bucket serves its cold start and misses)")
	fs.IntVar(&c.Feed.MaxClients, "max-feed-clients", DefaultMaxFeedClients, "clients of the live feed /api/changes at once (503 above)")
	fs.DurationVar(&c.Feed.Heartbeat, "feed-heartbeat", DefaultFeedHeartbeat, "how often the live feed sends a comment line to keep proxies open")
	fs.IntVar(&c.Feed.CacheBytes, "feed-cache-bytes", DefaultFeedCacheBytes, "budget of the article states the live feed keeps to show each event's article without reading its history")
	fs.IntVar(&c.Feed.Queue, "feed-queue", DefaultFeedQueue, "events queued for a live feed client; a client that falls further behind is dropped (it resumes with Last-Event-ID)")
}

func (c QueryAPI) validate() error {
	var errs []error
	if c.Versions < 1 || c.Versions > 1000 {
		errs = append(errs, errors.New("-versions must be 1 to 1000"))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, errors.New("-cache-bytes must not be negative"))
	}
	if c.ReadTimeout < 100*time.Millisecond {
		errs = append(errs, errors.New("-read-timeout must be at least 100ms"))
	}
	if c.MinSeqWait < 0 {
		errs = append(errs, errors.New("-min-seq-wait must not be negative"))
	}
	if c.ViewSource != ViewFromBucket && c.ViewSource != ViewFromStream {
		errs = append(errs, fmt.Errorf("-view-source must be %s or %s, not %q", ViewFromBucket, ViewFromStream, c.ViewSource))
	}
	if c.Feed.MaxClients < 0 {
		errs = append(errs, errors.New("-max-feed-clients must not be negative"))
	}
	if c.Feed.Heartbeat < 10*time.Millisecond {
		errs = append(errs, errors.New("-feed-heartbeat must be at least 10ms"))
	}
	if c.Feed.CacheBytes < 0 {
		errs = append(errs, errors.New("-feed-cache-bytes must not be negative"))
	}
	if c.Feed.Queue < 1 {
		errs = append(errs, errors.New("-feed-queue must be at least 1"))
	}
	return errors.Join(errs...)
}

// ParseAllInOne reads the all-in-one configuration. The roles share the
// common settings; the NATS URL defaults to the embedded server.
func ParseAllInOne(name string, args []string, getenv func(string) string, out io.Writer) (AllInOne, error) {
	var c AllInOne
	fs := newFlagSet(name, out)
	c.NATS.URL = "embedded"
	c.NATS.Name = name
	level := roleFlags(fs, &c.Common)
	fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "embedded NATS server client address")
	fs.StringVar(&c.HTTPMonitor, "nats-monitor", "127.0.0.1:8222", "embedded NATS server monitoring address (empty: off)")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "JetStream store directory of the embedded server, and the development signing key")
	authFlags(fs, &c.Auth)
	webFlags(fs, &c.Web, "")
	commandFlags(fs, &c.CommandAPI, "command-listen")
	projectorFlags(fs, &c.Projector, "projector-listen")
	queryFlags(fs, &c.QueryAPI, "query-listen")
	if err := parse(fs, args, getenv); err != nil {
		return c, usage(err)
	}
	if c.Web.PublicQueryURL == "" {
		c.Web.PublicQueryURL = defaultPublicQuery(c.QueryAPI.Listen)
	}
	c.Web.finish()
	err := errors.Join(c.finish(*level), c.Auth.validate(), c.Web.validate(), c.CommandAPI.validate(), c.Projector.validate(), c.QueryAPI.validate())
	if c.DataDir == "" {
		err = errors.Join(err, errors.New("-data-dir must not be empty"))
	}
	// One server: more replicas could never be placed.
	for _, r := range []struct {
		flag string
		n    int
	}{{"-stream-replicas", c.NATS.StreamReplicas}, {"-kv-replicas", c.NATS.KVReplicas}} {
		if r.n > 1 {
			err = errors.Join(err, fmt.Errorf("%s %d: the embedded NATS server is a single node, which holds 1 replica; run a cluster for more (make cluster)", r.flag, r.n))
		}
	}
	c.CommandAPI.Common, c.Projector.Common, c.QueryAPI.Common = c.Common, c.Common, c.Common
	c.CommandAPI.Auth, c.QueryAPI.Auth = c.Auth, c.Auth
	c.CommandAPI.Web, c.QueryAPI.Web = c.Web, c.Web
	return c, usage(err)
}

// AdminCommands are the admin subcommands of cmd/inkstream.
var AdminCommands = []string{"provision", "rebuild", "verify"}

func adminFlags(fs *flag.FlagSet, c *Admin, command string) (level *string) {
	natsFlags(fs, &c.Common, "inkstream-"+command)
	level = layoutFlags(fs, &c.Common)
	fs.DurationVar(&c.NATS.ConnectTimeout, "connect-timeout", 10*time.Second, "give up when NATS cannot be reached for this long")
	if command == "rebuild" {
		// A window that holds every article writes each once: 100 000
		// articles of 1 KB need 100 MB, and a window of the projector's
		// 64 MiB made a rebuild of their 1 000 000 events write 1 000 000
		// snapshots in 21 windows instead of 100 000 in one.
		fs.Int64Var(&c.CacheBytes, "projector-cache-bytes", 256<<20, "bytes of snapshots folded in memory before they are written (one window)")
		fs.BoolVar(&c.Yes, "yes", false, "do not ask for confirmation on a terminal")
		fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the rebuild to this file (go tool pprof)")
	}
	return level
}

// ParseAdmin reads the configuration of an admin command: provision,
// rebuild or verify. They connect as the admin user, and give up
// connecting after -connect-timeout.
func ParseAdmin(command string, args []string, getenv func(string) string, out io.Writer) (Admin, error) {
	var c Admin
	fs := newFlagSet("inkstream "+command, out)
	level := adminFlags(fs, &c, command)
	if err := parse(fs, args, getenv); err != nil {
		return c, usage(err)
	}
	err := c.finish(*level)
	if c.NATS.ConnectTimeout <= 0 {
		err = errors.Join(err, errors.New("-connect-timeout must be positive"))
	}
	if command == "rebuild" {
		err = errors.Join(err, Projector{Batch: 1, CacheBytes: c.CacheBytes}.validate())
	}
	return c, usage(err)
}

// Token configures `inkstream token`: a development token signed with the
// key in a data directory.
type Token struct {
	DataDir    string
	Subject    string
	Roles      []string
	TTL        time.Duration
	Issuer     string
	Audience   string
	RolesClaim string
}

// ParseToken reads the configuration of `inkstream token`. The data
// directory and the -auth-* settings read the same variables as the
// all-in-one's, so that its tokens fit the running server.
func ParseToken(name string, args []string, getenv func(string) string, out io.Writer) (Token, error) {
	var c Token
	var a Auth
	var roles string
	fs := newFlagSet(name, out)
	fs.StringVar(&c.Subject, "sub", "", "the token's subject (sub): the user id, the author_id of what they write (required)")
	fs.StringVar(&roles, "roles", "", "comma-separated roles: author, editor, admin")
	fs.DurationVar(&c.TTL, "ttl", 24*time.Hour, "how long the token is valid")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "data directory of the all-in-one, which holds the development signing key")
	fs.StringVar(&a.Issuer, "auth-issuer", "", "issuer (iss) of the token, as the server's -auth-issuer")
	fs.StringVar(&a.Audience, "auth-audience", "", "audience (aud) of the token, as the server's -auth-audience")
	fs.StringVar(&a.RolesClaim, "auth-roles-claim", "roles", "claim (dotted path) that holds the roles, as the server's -auth-roles-claim")
	if err := parse(fs, args, getenv); err != nil {
		return c, usage(err)
	}
	c.Issuer, c.Audience, c.RolesClaim = a.Issuer, a.Audience, a.RolesClaim
	errs := []error{a.validate()}
	if strings.TrimSpace(c.Subject) == "" {
		errs = append(errs, errors.New("-sub is required: the user id the token is for"))
	}
	for _, r := range strings.Split(roles, ",") {
		switch r = strings.TrimSpace(r); r {
		case "":
		case "author", "editor", "admin":
			c.Roles = append(c.Roles, r)
		default:
			errs = append(errs, fmt.Errorf("-roles: %q is not a role; the roles are author, editor, admin", r))
		}
	}
	if c.TTL <= 0 {
		errs = append(errs, errors.New("-ttl must be positive"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("-data-dir must not be empty"))
	}
	return c, usage(errors.Join(errs...))
}

func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Bool(versionFlag, false, "print the version (from the build information) and exit")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage of %s:\n", name)
		fmt.Fprintf(out, "Every flag also reads the environment variable %s<FLAG> (upper case, '-' as '_').\n", EnvPrefix)
		if !strings.Contains(name, " ") { // a service, not a subcommand such as "inkstream verify"
			fmt.Fprintln(out, obs.TracingHelp)
		}
		PrintFlags(out, fs, func(flagName string) string {
			switch flagName {
			case versionFlag:
				return ""
			}
			if std := standardEnv[flagName]; std != "" {
				return EnvName(flagName) + " or " + std
			}
			return EnvName(flagName)
		})
	}
	return fs
}

// versionFlag is the flag that prints the version; it reads no environment variable.
const versionFlag = "version"

// ErrVersion is returned by a parse that printed the version (-version); it
// is a flag.ErrHelp, so a main that exits 0 on a help request does so here.
var ErrVersion = fmt.Errorf("version printed: %w", flag.ErrHelp)

// VersionOut is where -version prints.
var VersionOut io.Writer = os.Stdout

// PrintFlags prints the flags of fs as flag.PrintDefaults does, each with
// the environment variable it also reads (env(name); "" for none).
func PrintFlags(w io.Writer, fs *flag.FlagSet, env func(flagName string) string) {
	fs.VisitAll(func(f *flag.Flag) {
		var b strings.Builder
		fmt.Fprintf(&b, "  -%s", f.Name)
		typ, usage := flag.UnquoteUsage(f)
		if typ != "" {
			b.WriteString(" " + typ)
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !isZeroValue(f) {
			if typ == "string" {
				fmt.Fprintf(&b, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(&b, " (default %v)", f.DefValue)
			}
		}
		if e := env(f.Name); e != "" {
			fmt.Fprintf(&b, "\n    \tenv %s", e)
		}
		fmt.Fprintln(w, b.String())
	})
}

// isZeroValue reports whether f's default is its type's zero value, which
// flag.PrintDefaults leaves out.
func isZeroValue(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	v, ok := z.Interface().(flag.Value)
	return ok && f.DefValue == v.String()
}

// PrintVersion prints the version line of fs's program when its -version
// flag is set, and then returns ErrVersion.
func PrintVersion(fs *flag.FlagSet) error {
	f := fs.Lookup(versionFlag)
	if f == nil || f.Value.String() != "true" {
		return nil
	}
	fmt.Fprintln(VersionOut, obs.Version().Line(fs.Name()))
	return ErrVersion
}

// EnvName returns the environment variable a flag reads.
func EnvName(flagName string) string { return EnvNameWith(EnvPrefix, flagName) }

// standardEnv are the NATS CLI's own variables, which a flag falls back on
// when its INKSTREAM_ variable is not set: the CLI and the services share
// one configuration.
var standardEnv = map[string]string{
	"nats-url": "NATS_URL", "nats-context": "NATS_CONTEXT", "nats-creds": "NATS_CREDS", "nats-nkey": "NATS_NKEY",
	"nats-user": "NATS_USER", "nats-password": "NATS_PASSWORD", "nats-ca": "NATS_CA", "nats-cert": "NATS_CERT", "nats-key": "NATS_KEY",
}

// lookupEnv turns getenv into a lookup. Of the process environment
// (os.Getenv, or nil) it tells a variable set to "" from an unset one;
// of any other getenv (a test's map), "" is unset.
func lookupEnv(getenv func(string) string) func(string) (string, bool) {
	if getenv == nil || reflect.ValueOf(getenv).Pointer() == reflect.ValueOf(os.Getenv).Pointer() {
		return os.LookupEnv
	}
	return func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
}

// parse applies the environment first, then the command line, which wins.
// A variable set to "" sets its flag to "".
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	lookup := lookupEnv(getenv)
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == versionFlag {
			return
		}
		v, ok := lookup(EnvName(f.Name))
		if std := standardEnv[f.Name]; std != "" && v == "" {
			v, ok = lookup(std)
		}
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Left out, the URL comes from NATS_URL, a context or the default;
	// given, it must say something.
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "nats-url" && strings.TrimSpace(f.Value.String()) == "" {
			errs = append(errs, errors.New("-nats-url must not be empty"))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := PrintVersion(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// ApplyEnv sets every flag of fs (but -version) whose environment variable,
// envName(flag name), getenv finds set and not empty.
func ApplyEnv(fs *flag.FlagSet, getenv func(string) string, envName func(flagName string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == versionFlag {
			return
		}
		name := envName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

// EnvNameWith returns the environment variable of a flag under prefix:
// the flag's name in upper case with '-' as '_', after prefix.
func EnvNameWith(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// FlagNames lists the flags (and so, with EnvName, the environment variables)
// of a process: command-api, projector, query-api or inkstream, or an
// inkstream subcommand ("inkstream provision", "inkstream creds", ...).
func FlagNames(process string) ([]string, error) {
	fs := newFlagSet(process, io.Discard)
	var c AllInOne
	if sub, ok := strings.CutPrefix(process, "inkstream "); ok {
		switch {
		case sub == "creds":
			credsFlags(fs, &Creds{})
		case slices.Contains(AdminCommands, sub):
			adminFlags(fs, &Admin{}, sub)
		default:
			return nil, fmt.Errorf("unknown process %q", process)
		}
		process = "subcommand"
	} else if process == "inkstream" {
		roleFlags(fs, &c.Common)
	} else {
		commonFlags(fs, &c.Common, process)
	}
	switch process {
	case "subcommand":
	case "command-api":
		authFlags(fs, &c.Auth)
		webFlags(fs, &c.Web, "")
		commandFlags(fs, &c.CommandAPI, "listen")
	case "projector":
		projectorFlags(fs, &c.Projector, "listen")
	case "query-api":
		authFlags(fs, &c.Auth)
		webFlags(fs, &c.Web, "")
		queryFlags(fs, &c.QueryAPI, "listen")
	case "inkstream":
		fs.String("nats-listen", "", "")
		fs.String("nats-monitor", "", "")
		fs.String("data-dir", "", "")
		authFlags(fs, &c.Auth)
		webFlags(fs, &c.Web, "")
		commandFlags(fs, &c.CommandAPI, "command-listen")
		projectorFlags(fs, &c.Projector, "projector-listen")
		queryFlags(fs, &c.QueryAPI, "query-listen")
	default:
		return nil, fmt.Errorf("unknown process %q", process)
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != versionFlag {
			names = append(names, f.Name)
		}
	})
	return names, nil
}

// Creds configures `inkstream creds`.
type Creds struct {
	Dir string // where the credentials go
	URL string // the servers the CLI contexts name
}

// ParseCreds reads the configuration of `inkstream creds`.
func ParseCreds(args []string, getenv func(string) string, out io.Writer) (Creds, error) {
	var c Creds
	fs := newFlagSet("inkstream creds", out)
	credsFlags(fs, &c)
	if err := parse(fs, args, getenv); err != nil {
		return c, usage(err)
	}
	var err error
	if c.Dir == "" {
		err = errors.New("-dir must be given")
	}
	return c, usage(errors.Join(err, natsx.CheckURLs(c.URL)))
}

func credsFlags(fs *flag.FlagSet, c *Creds) {
	fs.StringVar(&c.Dir, "dir", "", "directory of the credentials (made 0700; seeds that exist are kept)")
	fs.StringVar(&c.URL, "nats-url", DefaultNATSURL, "NATS server URLs the CLI contexts name, comma-separated")
}
