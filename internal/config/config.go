// Package config reads the typed configuration of each inkstream process from
// command-line flags, each of which also reads an environment variable
// INKSTREAM_<FLAG> (upper case, '-' → '_'). The NATS URL also honours the
// standard NATS_URL, so the NATS CLI and the services agree. Nothing else in
// inkstream reads the environment. A NATS URL is checked here, once, without
// quoting its credentials (natsx.CheckURLs); its passwords and tokens reach
// logs and errors only through natsx's redaction.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/inkstream/inkstream/internal/natsx"
)

// EnvPrefix is the prefix of every environment variable a flag reads.
const EnvPrefix = "INKSTREAM_"

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
	Auth         Auth
	Listen       string
	BodyLimit    int
	WriteTimeout time.Duration // how long a write may wait for JetStream, retries included
	CacheSize    int           // articles whose state the command API keeps in memory
	RateLimit    float64       // writes per second per token subject (else client IP); 0: no limit
	RateBurst    int           // writes a client may make at once above RateLimit
	Web          Web
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
	Listen    string // health and metrics
	Batch     int    // messages fetched per pull
	CacheSize int    // snapshots kept in memory
}

// QueryAPI configures cmd/query-api.
type QueryAPI struct {
	Common
	Auth        Auth
	Listen      string
	Versions    int           // versions kept and served by /versions
	MinSeqWait  time.Duration // how long a read with X-Min-Event-Seq waits for the view
	ReadTimeout time.Duration // how long a read may wait for NATS
	Web         Web
	Feed        Feed
}

// Feed bounds the live change feed (GET /api/changes).
type Feed struct {
	MaxClients int           // clients at once (503 above)
	Heartbeat  time.Duration // a comment line this often keeps proxies open
	Queue      int           // events queued for a client before it is dropped as too slow
	CacheBytes int           // budget of the article states the feed keeps to fold events
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

func commonFlags(fs *flag.FlagSet, c *Common, name string) (level *string) {
	fs.StringVar(&c.NATS.URL, "nats-url", DefaultNATSURL, "NATS server URLs, comma-separated (also NATS_URL)")
	return roleFlags(fs, c, name)
}

// roleFlags are the common flags but the NATS URL (the all-in-one embeds its server).
func roleFlags(fs *flag.FlagSet, c *Common, name string) (level *string) {
	fs.StringVar(&c.NATS.Name, "nats-name", name, "NATS connection name")
	fs.StringVar(&c.NATS.Creds, "nats-creds", "", "NATS credentials file")
	fs.IntVar(&c.NATS.StreamReplicas, "stream-replicas", 1, "replicas of stream ARTICLES (1 or 3 in a cluster)")
	fs.IntVar(&c.NATS.KVReplicas, "kv-replicas", 1, "replicas of KV bucket articles")
	fs.DurationVar(&c.NATS.DuplicateWindow, "duplicate-window", 2*time.Minute, "JetStream de-duplication window (how long an Idempotency-Key is honoured)")
	fs.BoolVar(&c.NATS.Provision, "provision", true, "create or update stream, bucket and consumer at start-up")
	level = fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof on the HTTP listener")
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
	if strings.TrimSpace(c.NATS.URL) == "" {
		errs = append(errs, errors.New("-nats-url must not be empty"))
	} else if err := natsx.CheckURLs(c.NATS.URL); err != nil {
		errs = append(errs, err)
	}
	for _, r := range []struct {
		name string
		v    int
	}{{"-stream-replicas", c.NATS.StreamReplicas}, {"-kv-replicas", c.NATS.KVReplicas}} {
		if r.v < 1 || r.v > 5 {
			errs = append(errs, fmt.Errorf("%s must be 1 to 5, not %d", r.name, r.v))
		}
	}
	if c.NATS.DuplicateWindow < time.Second {
		errs = append(errs, errors.New("-duplicate-window must be at least 1s"))
	}
	return errors.Join(errs...)
}

// Logger returns the slog logger the configuration asks for.
func (c Common) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ParseCommandAPI reads the command API's configuration.
func ParseCommandAPI(name string, args []string, getenv func(string) string, out io.Writer) (CommandAPI, error) {
	var c CommandAPI
	fs := newFlagSet(name, out)
	level := commonFlags(fs, &c.Common, name)
	authFlags(fs, &c.Auth)
	webFlags(fs, &c.Web, defaultPublicQuery(DefaultQueryListen))
	commandFlags(fs, &c, "listen")
	if err := parse(fs, args, getenv); err != nil {
		return c, err
	}
	c.Web.finish()
	return c, errors.Join(c.finish(*level), c.Auth.validate(), c.Web.validate(), c.validate())
}

func commandFlags(fs *flag.FlagSet, c *CommandAPI, listen string) {
	fs.StringVar(&c.Listen, listen, DefaultCommandListen, "command API listen address")
	fs.IntVar(&c.BodyLimit, "body-limit", DefaultBodyLimit, "largest request body in bytes (413 above)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 5*time.Second, "how long a write waits for JetStream, retries included (503 after)")
	fs.IntVar(&c.CacheSize, "command-cache", 100_000, "articles whose state the command API keeps in memory")
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "writes per second per client (token subject, else IP) before 429; 0: no limit")
	fs.IntVar(&c.RateBurst, "rate-burst", 20, "writes a client may make at once above -rate-limit")
}

func (c CommandAPI) validate() error {
	var errs []error
	if c.BodyLimit < 1024 {
		errs = append(errs, errors.New("-body-limit must be at least 1024"))
	}
	if c.WriteTimeout < 100*time.Millisecond {
		errs = append(errs, errors.New("-write-timeout must be at least 100ms"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("-command-cache must not be negative"))
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
	fs := newFlagSet(name, out)
	level := commonFlags(fs, &c.Common, name)
	projectorFlags(fs, &c, "listen")
	if err := parse(fs, args, getenv); err != nil {
		return c, err
	}
	return c, errors.Join(c.finish(*level), c.validate())
}

func projectorFlags(fs *flag.FlagSet, c *Projector, listen string) {
	fs.StringVar(&c.Listen, listen, DefaultProjectorListen, "projector health and metrics listen address")
	fs.IntVar(&c.Batch, "batch", 5000, "most messages the projector folds together (it takes what has arrived, up to this)")
	fs.IntVar(&c.CacheSize, "projector-cache", 200_000, "snapshots the projector keeps in memory")
}

func (c Projector) validate() error {
	var errs []error
	if c.Batch < 1 || c.Batch > 10_000 {
		errs = append(errs, errors.New("-batch must be 1 to 10000"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("-projector-cache must not be negative"))
	}
	return errors.Join(errs...)
}

// ParseQueryAPI reads the query API's configuration.
func ParseQueryAPI(name string, args []string, getenv func(string) string, out io.Writer) (QueryAPI, error) {
	var c QueryAPI
	fs := newFlagSet(name, out)
	level := commonFlags(fs, &c.Common, name)
	authFlags(fs, &c.Auth)
	webFlags(fs, &c.Web, "")
	queryFlags(fs, &c, "listen")
	if err := parse(fs, args, getenv); err != nil {
		return c, err
	}
	c.Web.finish()
	return c, errors.Join(c.finish(*level), c.Auth.validate(), c.Web.validate(), c.validate())
}

func queryFlags(fs *flag.FlagSet, c *QueryAPI, listen string) {
	fs.StringVar(&c.Listen, listen, DefaultQueryListen, "query API listen address")
	fs.IntVar(&c.Versions, "versions", DefaultVersions, "versions served by /api/articles/{id}/versions")
	fs.DurationVar(&c.MinSeqWait, "min-seq-wait", 2*time.Second, "how long a read with X-Min-Event-Seq waits for the view (503 for lists after)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 5*time.Second, "how long a read that misses the view waits for NATS (503 after)")
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
	if c.ReadTimeout < 100*time.Millisecond {
		errs = append(errs, errors.New("-read-timeout must be at least 100ms"))
	}
	if c.MinSeqWait < 0 {
		errs = append(errs, errors.New("-min-seq-wait must not be negative"))
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
	level := roleFlags(fs, &c.Common, name)
	fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "embedded NATS server client address")
	fs.StringVar(&c.HTTPMonitor, "nats-monitor", "127.0.0.1:8222", "embedded NATS server monitoring address (empty: off)")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "JetStream store directory of the embedded server, and the development signing key")
	authFlags(fs, &c.Auth)
	webFlags(fs, &c.Web, "")
	commandFlags(fs, &c.CommandAPI, "command-listen")
	projectorFlags(fs, &c.Projector, "projector-listen")
	queryFlags(fs, &c.QueryAPI, "query-listen")
	if err := parse(fs, args, getenv); err != nil {
		return c, err
	}
	if c.Web.PublicQueryURL == "" {
		c.Web.PublicQueryURL = defaultPublicQuery(c.QueryAPI.Listen)
	}
	c.Web.finish()
	err := errors.Join(c.finish(*level), c.Auth.validate(), c.Web.validate(), c.CommandAPI.validate(), c.Projector.validate(), c.QueryAPI.validate())
	if c.DataDir == "" {
		err = errors.Join(err, errors.New("-data-dir must not be empty"))
	}
	c.CommandAPI.Common, c.Projector.Common, c.QueryAPI.Common = c.Common, c.Common, c.Common
	c.CommandAPI.Auth, c.QueryAPI.Auth = c.Auth, c.Auth
	c.CommandAPI.Web, c.QueryAPI.Web = c.Web, c.Web
	return c, err
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
		return c, err
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
	return c, errors.Join(errs...)
}

// ParseAdmin reads the configuration of the admin commands (rebuild, verify).
func ParseAdmin(name string, args []string, getenv func(string) string, out io.Writer) (Projector, error) {
	return ParseProjector(name, args, getenv, out)
}

func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage of %s:\n", name)
		fmt.Fprintf(out, "Every flag also reads the environment variable %s<FLAG> (upper case, '-' as '_').\n", EnvPrefix)
		fs.PrintDefaults()
	}
	return fs
}

// EnvName returns the environment variable a flag reads.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies the environment first, then the command line, which wins.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(EnvName(f.Name))
		if v == "" && f.Name == "nats-url" {
			v = getenv("NATS_URL")
		}
		if v == "" {
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
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// FlagNames lists the flags (and so, with EnvName, the environment variables)
// of a process: command-api, projector, query-api or inkstream.
func FlagNames(process string) ([]string, error) {
	fs := newFlagSet(process, io.Discard)
	var c AllInOne
	if process == "inkstream" {
		roleFlags(fs, &c.Common, process)
	} else {
		commonFlags(fs, &c.Common, process)
	}
	switch process {
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
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names, nil
}
