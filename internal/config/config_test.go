package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFlagsReadEnvironmentAndCommandLineWins(t *testing.T) {
	c, err := ParseCommandAPI("command-api", []string{"-listen", "127.0.0.1:9999"}, env(map[string]string{
		"INKSTREAM_LISTEN":          "127.0.0.1:1111",
		"INKSTREAM_BODY_LIMIT":      "2048",
		"INKSTREAM_STREAM_REPLICAS": "3",
		"INKSTREAM_WRITE_TIMEOUT":   "7s",
		"NATS_URL":                  "nats://a:4222,nats://b:4222",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.BodyLimit != 2048 || c.NATS.StreamReplicas != 3 || c.WriteTimeout != 7*time.Second {
		t.Fatalf("unexpected config %+v", c)
	}
	if c.NATS.URL != "nats://a:4222,nats://b:4222" {
		t.Fatalf("NATS_URL not honoured: %q", c.NATS.URL)
	}
}

func TestInkstreamNATSURLBeatsNATSURL(t *testing.T) {
	c, err := ParseQueryAPI("query-api", nil, env(map[string]string{
		"INKSTREAM_NATS_URL": "nats://x:1", "NATS_URL": "nats://y:2",
	}), io.Discard)
	if err != nil || c.NATS.URL != "nats://x:1" {
		t.Fatalf("got %q, %v", c.NATS.URL, err)
	}
}

func TestDefaults(t *testing.T) {
	q, err := ParseQueryAPI("query-api", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if q.Listen != DefaultQueryListen || q.Versions != 10 || q.NATS.URL != DefaultNATSURL || q.NATS.DuplicateWindow != 2*time.Minute || q.NATS.Provision ||
		q.ViewSource != DefaultViewSource {
		t.Fatalf("defaults: %+v", q)
	}
	for _, src := range []string{ViewFromBucket, ViewFromStream} {
		q, err := ParseQueryAPI("query-api", nil, env(map[string]string{"INKSTREAM_VIEW_SOURCE": src}), io.Discard)
		if err != nil || q.ViewSource != src {
			t.Fatalf("INKSTREAM_VIEW_SOURCE=%s: %q, %v", src, q.ViewSource, err)
		}
	}
	a, err := ParseAllInOne("inkstream", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if a.DataDir != "./data" || a.NATSListen != "127.0.0.1:4222" || a.CommandAPI.Listen != DefaultCommandListen ||
		a.QueryAPI.Listen != DefaultQueryListen || a.Projector.Listen != DefaultProjectorListen {
		t.Fatalf("all-in-one defaults: %+v", a)
	}
}

// parsers are the configuration parsers of each process.
var parsers = map[string]func(args []string, getenv func(string) string) error{
	"command-api": func(args []string, getenv func(string) string) error {
		_, err := ParseCommandAPI("command-api", args, getenv, io.Discard)
		return err
	},
	"projector": func(args []string, getenv func(string) string) error {
		_, err := ParseProjector("projector", args, getenv, io.Discard)
		return err
	},
	"query-api": func(args []string, getenv func(string) string) error {
		_, err := ParseQueryAPI("query-api", args, getenv, io.Discard)
		return err
	},
	"inkstream": func(args []string, getenv func(string) string) error {
		_, err := ParseAllInOne("inkstream", args, getenv, io.Discard)
		return err
	},
}

func TestInvalidValuesAreErrors(t *testing.T) {
	for _, tc := range []struct {
		process, name string
		args          []string
		env           map[string]string
		want          string // what the error must name
	}{
		{"command-api", "body limit not a number", []string{"-body-limit=abc"}, nil, "body-limit"},
		{"command-api", "tiny body limit", []string{"-body-limit", "10"}, nil, "-body-limit"},
		{"command-api", "write timeout not a duration", []string{"-write-timeout=soon"}, nil, "write-timeout"},
		{"command-api", "replicas", []string{"-stream-replicas", "0"}, nil, "-stream-replicas"},
		{"command-api", "log level", []string{"-log-level", "loud"}, nil, "-log-level"},
		{"command-api", "log format", []string{"-log-format", "xml"}, nil, "-log-format"},
		{"command-api", "window", []string{"-duplicate-window", "1ms"}, nil, "-duplicate-window"},
		{"command-api", "unknown flag", []string{"-nope"}, nil, "nope"},
		{"command-api", "extra args", []string{"extra"}, nil, "unexpected arguments"},
		{"command-api", "env body limit not a number", nil, map[string]string{"INKSTREAM_BODY_LIMIT": "abc"}, "INKSTREAM_BODY_LIMIT"},
		{"command-api", "env write timeout not a duration", nil, map[string]string{"INKSTREAM_WRITE_TIMEOUT": "soon"}, "INKSTREAM_WRITE_TIMEOUT"},
		{"command-api", "env cache negative", nil, map[string]string{"INKSTREAM_COMMAND_CACHE_BYTES": "-1"}, "command-cache-bytes"},
		{"command-api", "env provision not a bool", nil, map[string]string{"INKSTREAM_PROVISION": "maybe"}, "INKSTREAM_PROVISION"},
		{"projector", "batch not a number", []string{"-batch=abc"}, nil, "batch"},
		{"projector", "batch 0", []string{"-batch=0"}, nil, "batch"},
		{"projector", "batch 10001", []string{"-batch=10001"}, nil, "batch"},
		{"projector", "cache negative", []string{"-projector-cache-bytes=-1"}, nil, "projector-cache-bytes"},
		{"projector", "env batch not a number", nil, map[string]string{"INKSTREAM_BATCH": "abc"}, "INKSTREAM_BATCH"},
		{"projector", "env cache not a number", nil, map[string]string{"INKSTREAM_PROJECTOR_CACHE_BYTES": "lots"}, "INKSTREAM_PROJECTOR_CACHE_BYTES"},
		{"projector", "env log level unknown", nil, map[string]string{"INKSTREAM_LOG_LEVEL": "loud"}, "log-level"},
		{"query-api", "versions not a number", []string{"-versions=abc"}, nil, "versions"},
		{"query-api", "versions 0", []string{"-versions=0"}, nil, "versions"},
		{"query-api", "min-seq-wait not a duration", []string{"-min-seq-wait=soon"}, nil, "min-seq-wait"},
		{"query-api", "min-seq-wait negative", []string{"-min-seq-wait=-1s"}, nil, "min-seq-wait"},
		{"query-api", "view source unknown", []string{"-view-source=kv"}, nil, "view-source"},
		{"query-api", "env view source unknown", nil, map[string]string{"INKSTREAM_VIEW_SOURCE": "both"}, "view-source"},
		{"inkstream", "view source empty", []string{"-view-source="}, nil, "view-source"},
		{"query-api", "empty NATS URL", []string{"-nats-url="}, nil, "nats-url"},
		{"query-api", "env versions not a number", nil, map[string]string{"INKSTREAM_VERSIONS": "abc"}, "INKSTREAM_VERSIONS"},
		{"query-api", "env min-seq-wait not a duration", nil, map[string]string{"INKSTREAM_MIN_SEQ_WAIT": "soon"}, "INKSTREAM_MIN_SEQ_WAIT"},
		{"query-api", "env kv replicas not a number", nil, map[string]string{"INKSTREAM_KV_REPLICAS": "three"}, "INKSTREAM_KV_REPLICAS"},
		{"command-api", "user without password", []string{"-nats-user", "ink"}, nil, "-nats-password"},
		{"command-api", "password in NATS_PASSWORD without a user", nil, map[string]string{"NATS_PASSWORD": "pw"}, "-nats-user"},
		{"command-api", "two kinds of credentials", []string{"-nats-nkey", "a.nk", "-nats-creds", "a.creds"}, nil, "one of"},
		{"command-api", "cert without key", []string{"-nats-cert", "c.pem"}, nil, "-nats-key"},
		{"command-api", "unknown context", []string{"-nats-context", "no-such-context-xxxxxxxx"}, nil, "-nats-context"},
		{"inkstream", "more replicas than one node", []string{"-stream-replicas", "3"}, nil, "single node"},
	} {
		t.Run(tc.process+" "+tc.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no NATS CLI contexts of the machine's user
			err := parsers[tc.process](tc.args, env(tc.env))
			if err == nil || errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("%v is not a usage error", err)
			}
		})
	}
}

// TestEmptyVariableEmptiesItsFlag: in the process environment, a
// variable set to "" sets its flag to "" (monitoring off), as -flag= does;
// unset, the flag keeps its default.
func TestEmptyVariableEmptiesItsFlag(t *testing.T) {
	for _, k := range []string{"INKSTREAM_NATS_MONITOR", "INKSTREAM_BATCH"} {
		t.Setenv(k, "") // restored when the test ends
		os.Unsetenv(k)
	}
	a, err := ParseAllInOne("inkstream", nil, os.Getenv, io.Discard)
	if err != nil || a.HTTPMonitor != "127.0.0.1:8222" {
		t.Fatalf("unset: monitor %q, %v", a.HTTPMonitor, err)
	}
	t.Setenv("INKSTREAM_NATS_MONITOR", "")
	a, err = ParseAllInOne("inkstream", nil, os.Getenv, io.Discard)
	if err != nil || a.HTTPMonitor != "" {
		t.Fatalf("INKSTREAM_NATS_MONITOR=: monitor %q, %v; want it off", a.HTTPMonitor, err)
	}
	t.Setenv("INKSTREAM_BATCH", "")
	if _, err := ParseAllInOne("inkstream", nil, os.Getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "INKSTREAM_BATCH") {
		t.Fatalf("INKSTREAM_BATCH=: %v, want an error naming it, as -batch= is", err)
	}
}

// TestNATSContextSetsTheURL: the URL comes from -nats-url, else NATS_URL,
// else the context's.
func TestNATSContextSetsTheURL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ink.json")
	if err := os.WriteFile(file, []byte(`{"url":"nats://ctx:4222","nkey":"/x/admin.nk"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"NATS_CONTEXT": file}, "nats://ctx:4222"},
		{map[string]string{"INKSTREAM_NATS_CONTEXT": file, "NATS_URL": "nats://env:1"}, "nats://env:1"},
	} {
		c, err := ParseProjector("projector", nil, env(tc.env), io.Discard)
		if err != nil || c.NATS.URL != tc.want || c.NATS.Context != file {
			t.Fatalf("%v: URL %q context %q, %v; want %s", tc.env, c.NATS.URL, c.NATS.Context, err, tc.want)
		}
	}
}

// TestEveryFlagReadsItsEnvironmentVariable: each process reads, for every
// flag it has, the variable EnvName names, and -h is flag.ErrHelp.
func TestEveryFlagReadsItsEnvironmentVariable(t *testing.T) {
	if EnvName("min-seq-wait") != "INKSTREAM_MIN_SEQ_WAIT" {
		t.Errorf("EnvName: %s", EnvName("min-seq-wait"))
	}
	for process, parse := range parsers {
		t.Run(process, func(t *testing.T) {
			asked := map[string]bool{}
			if err := parse(nil, func(k string) string { asked[k] = true; return "" }); err != nil {
				t.Fatal(err)
			}
			names, err := FlagNames(process)
			if err != nil || len(names) < 5 {
				t.Fatalf("FlagNames: %v %v", names, err)
			}
			for _, n := range names {
				if !asked[EnvName(n)] {
					t.Errorf("-%s does not read %s", n, EnvName(n))
				}
			}
			if err := parse([]string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
				t.Errorf("-h: %v, want flag.ErrHelp", err)
			}
		})
	}
	if _, err := FlagNames("nope"); err == nil {
		t.Error("FlagNames of an unknown process must fail")
	}
	ink, _ := FlagNames("inkstream")
	if slices.Contains(ink, "nats-url") {
		t.Error("the all-in-one embeds its server and must not take -nats-url")
	}
}

func TestWebFlags(t *testing.T) {
	c, err := ParseCommandAPI("command-api", nil, func(string) string { return "" }, io.Discard)
	if err != nil || c.Web.PublicQueryURL != "http://127.0.0.1:8081" || c.Web.CORSOrigins != nil {
		t.Fatalf("defaults: %+v %v", c.Web, err)
	}
	env := map[string]string{"INKSTREAM_PUBLIC_QUERY_URL": "https://blog.example/", "INKSTREAM_CORS_ORIGINS": "https://a.example, http://b.example:8000"}
	q, err := ParseQueryAPI("query-api", nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || q.Web.PublicQueryURL != "https://blog.example" || len(q.Web.CORSOrigins) != 2 || q.Web.CORSOrigins[1] != "http://b.example:8000" {
		t.Fatalf("from the environment: %+v %v", q.Web, err)
	}
	if q, err := ParseQueryAPI("query-api", nil, func(string) string { return "" }, io.Discard); err != nil || q.Web.PublicQueryURL != "" {
		t.Fatalf("query API default: %q %v", q.Web.PublicQueryURL, err)
	}
	for _, bad := range [][]string{{"-public-query-url", "ftp://x"}, {"-public-query-url", "http://x/path"}, {"-cors-origins", "https://a.example/path"}, {"-max-feed-clients", "-1"}, {"-feed-queue", "0"}} {
		if _, err := ParseQueryAPI("query-api", bad, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
