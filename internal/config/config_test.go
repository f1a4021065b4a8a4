package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
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
	if q.Listen != DefaultQueryListen || q.Versions != 10 || q.NATS.URL != DefaultNATSURL || q.NATS.DuplicateWindow != 2*time.Minute || q.NATS.Provision {
		t.Fatalf("defaults: %+v", q)
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

func TestInvalidValuesAreErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad env number", nil, map[string]string{"INKSTREAM_BODY_LIMIT": "abc"}, "INKSTREAM_BODY_LIMIT"},
		{"tiny body limit", []string{"-body-limit", "10"}, nil, "-body-limit"},
		{"replicas", []string{"-stream-replicas", "0"}, nil, "-stream-replicas"},
		{"log level", []string{"-log-level", "loud"}, nil, "-log-level"},
		{"log format", []string{"-log-format", "xml"}, nil, "-log-format"},
		{"window", []string{"-duplicate-window", "1ms"}, nil, "-duplicate-window"},
		{"unknown flag", []string{"-nope"}, nil, "nope"},
		{"extra args", []string{"extra"}, nil, "unexpected arguments"},
		{"empty NATS URL", []string{"-nats-url="}, nil, "-nats-url"},
		{"user without password", []string{"-nats-user", "ink"}, nil, "-nats-password"},
		{"password in NATS_PASSWORD without a user", nil, map[string]string{"NATS_PASSWORD": "pw"}, "-nats-user"},
		{"two kinds of credentials", []string{"-nats-nkey", "a.nk", "-nats-creds", "a.creds"}, nil, "one of"},
		{"cert without key", []string{"-nats-cert", "c.pem"}, nil, "-nats-key"},
		{"unknown context", []string{"-nats-context", "no-such-context-" + strings.Repeat("x", 8)}, nil, "-nats-context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no NATS CLI contexts of the machine's user
			_, err := ParseCommandAPI("command-api", tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error mentioning %q, got %v", tc.want, err)
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

func TestHelpListsEveryFlagWithItsEnvironmentVariable(t *testing.T) {
	var out strings.Builder
	_, err := ParseProjector("projector", []string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("want flag.ErrHelp, got %v", err)
	}
	names, err := FlagNames("projector")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(out.String(), "-"+n) {
			t.Errorf("-h does not list -%s", n)
		}
	}
	if !strings.Contains(out.String(), "INKSTREAM_") {
		t.Error("-h does not explain the environment variables")
	}
	if EnvName("min-seq-wait") != "INKSTREAM_MIN_SEQ_WAIT" {
		t.Errorf("EnvName: %s", EnvName("min-seq-wait"))
	}
	if _, err := FlagNames("nope"); err == nil {
		t.Error("FlagNames of an unknown process must fail")
	}
	ink, _ := FlagNames("inkstream")
	for _, n := range ink {
		if n == "nats-url" {
			t.Error("the all-in-one embeds its server and must not take -nats-url")
		}
	}
}
