package config

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggedNATSConfigurationIsRedacted(t *testing.T) {
	c, err := ParseProjector("projector", []string{"-nats-url", "nats://ink:s3cret@h:1"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "nats", c.NATS)
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), "nats://ink:xxxxx@h:1") {
		t.Fatalf("logged %s", out.String())
	}
}

func TestLoggedNATSPasswordIsRedacted(t *testing.T) {
	c, err := ParseProjector("projector", []string{"-nats-user", "ink", "-nats-password", "s3cret-pw"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "nats", c.NATS, "err", c.NATS.RedactError(errors.New("refused s3cret-pw")))
	if strings.Contains(out.String(), "s3cret-pw") || !strings.Contains(out.String(), "nats.user=ink") {
		t.Fatalf("logged %s", out.String())
	}
}

func TestUnparsableNATSURLIsRefusedWithoutItsPassword(t *testing.T) {
	for _, u := range []string{"nats://ink:s3cret@h:notaport", "nats://ink:s3cret%zz@h:1", "nats://ok:4222,nats://t0ken%zz@h:1"} {
		for _, e := range []map[string]string{nil, {"NATS_URL": u}} {
			args := []string{"-nats-url", u}
			if e != nil {
				args = nil
			}
			_, err := ParseCommandAPI("command-api", args, env(e), io.Discard)
			if err == nil || !strings.Contains(err.Error(), "-nats-url") {
				t.Fatalf("%s: want an error naming -nats-url, got %v", u, err)
			}
			for _, s := range []string{"s3cret", "t0ken"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("%s: error shows %s: %v", u, s, err)
				}
			}
		}
	}
	_, err := ParseCommandAPI("command-api", []string{"-nats-url", "nats://h:notaport"}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "invalid port") {
		t.Fatalf("a URL without credentials should say why it is bad: %v", err)
	}
}
