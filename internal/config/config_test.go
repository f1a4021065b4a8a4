package config

import (
	"errors"
	"flag"
	"io"
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
	if q.Listen != DefaultQueryListen || q.Versions != 10 || q.NATS.URL != DefaultNATSURL || q.NATS.DuplicateWindow != 2*time.Minute || !q.NATS.Provision {
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCommandAPI("command-api", tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error mentioning %q, got %v", tc.want, err)
			}
		})
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
