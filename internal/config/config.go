// Package config reads the typed configuration of each inkstream process from
// command-line flags, each of which also reads an environment variable
// INKSTREAM_<FLAG> (upper case, '-' → '_'). The NATS URL also honours the
// standard NATS_URL, so the NATS CLI and the services agree. Nothing else in
// inkstream reads the environment. A NATS URL is checked here, once, without
// quoting its credentials (natsx.CheckURLs); its passwords and tokens reach
// logs and errors only through natsx's redaction. (The OpenTelemetry SDK
// reads the standard OTEL_* variables itself: see obs.SetupTracing.)
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
}

// Defaults.
const (
	DefaultNATSURL         = "nats://127.0.0.1:4222"
	DefaultCommandListen   = "127.0.0.1:8080"
	DefaultQueryListen     = "127.0.0.1:8081"
	DefaultProjectorListen = "127.0.0.1:8082"
	DefaultBodyLimit       = 1 << 20
	DefaultVersions        = 10
)

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
	fs.StringVar(&c.NATS.StreamCompression, "stream-compression", "s2", "how stream ARTICLES stores events on disk: s2 or none")
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
	if c.NATS.StreamCompression != "s2" && c.NATS.StreamCompression != "none" {
		errs = append(errs, fmt.Errorf("-stream-compression must be s2 or none, not %q", c.NATS.StreamCompression))
	}
	if c.NATS.DuplicateWindow < time.Second {
		errs = append(errs, errors.New("-duplicate-window must be at least 1s"))
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
	err := parseRole(name, args, getenv, out, &c.Common, func(fs *flag.FlagSet) { authFlags(fs, &c.Auth); commandFlags(fs, &c, "listen") },
		func() error { return errors.Join(c.Auth.validate(), c.validate()) })
	return c, err
}

// parseRole reads the configuration of a role: the common flags, the
// role's own (flags), then checks both (validate: the role's own).
func parseRole(name string, args []string, getenv func(string) string, out io.Writer, c *Common, flags func(*flag.FlagSet), validate func() error) error {
	fs := newFlagSet(name, out)
	level := commonFlags(fs, c, name)
	flags(fs)
	if err := parse(fs, args, getenv); err != nil {
		return err
	}
	return errors.Join(c.finish(*level), validate())
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
	err := parseRole(name, args, getenv, out, &c.Common, func(fs *flag.FlagSet) { authFlags(fs, &c.Auth); queryFlags(fs, &c, "listen") },
		func() error { return errors.Join(c.Auth.validate(), c.validate()) })
	return c, err
}

func queryFlags(fs *flag.FlagSet, c *QueryAPI, listen string) {
	fs.StringVar(&c.Listen, listen, DefaultQueryListen, "query API listen address")
	fs.IntVar(&c.Versions, "versions", DefaultVersions, "versions served by /api/articles/{id}/versions")
	fs.DurationVar(&c.MinSeqWait, "min-seq-wait", 2*time.Second, "how long a read with X-Min-Event-Seq waits for the view (503 for lists after)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 5*time.Second, "how long a read that misses the view waits for NATS (503 after)")
	fs.Int64Var(&c.CacheBytes, "cache-bytes", 64<<20, "bytes of article bodies the query API keeps in memory (the index of every article is kept besides)")
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
	commandFlags(fs, &c.CommandAPI, "command-listen")
	projectorFlags(fs, &c.Projector, "projector-listen")
	queryFlags(fs, &c.QueryAPI, "query-listen")
	if err := parse(fs, args, getenv); err != nil {
		return c, err
	}
	err := errors.Join(c.finish(*level), c.Auth.validate(), c.CommandAPI.validate(), c.Projector.validate(), c.QueryAPI.validate())
	if c.DataDir == "" {
		err = errors.Join(err, errors.New("-data-dir must not be empty"))
	}
	c.CommandAPI.Common, c.Projector.Common, c.QueryAPI.Common = c.Common, c.Common, c.Common
	c.CommandAPI.Auth, c.QueryAPI.Auth = c.Auth, c.Auth
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
			case "nats-url":
				return EnvName(flagName) + " or NATS_URL"
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

// parse applies the environment first, then the command line, which wins.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	natsURL := EnvName("nats-url")
	env := func(k string) string {
		v := getenv(k)
		if v == "" && k == natsURL {
			v = getenv("NATS_URL")
		}
		return v
	}
	if err := ApplyEnv(fs, env, EnvName); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
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
		commandFlags(fs, &c.CommandAPI, "listen")
	case "projector":
		projectorFlags(fs, &c.Projector, "listen")
	case "query-api":
		authFlags(fs, &c.Auth)
		queryFlags(fs, &c.QueryAPI, "listen")
	case "inkstream":
		fs.String("nats-listen", "", "")
		fs.String("nats-monitor", "", "")
		fs.String("data-dir", "", "")
		authFlags(fs, &c.Auth)
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
