package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/inkstream/inkstream/internal/cmdtest"
)

// refusingServer runs a NATS server that lets in only user ink with
// password right-password, and returns its host:port.
func refusingServer(tb testing.TB) string {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, Username: "ink", Password: "right-password", NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server did not start")
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.Addr().String()
}

// TestNATSCredentialsNeverReachTheLog starts the command API with NATS
// URLs that carry a password or a token, against an address where
// nothing listens and against a server that refuses them, lets it fail to
// connect and retry, stops it, and checks that neither its log nor what
// run returned shows a secret, while the log does say what failed and where.
func TestNATSCredentialsNeverReachTheLog(t *testing.T) {
	refusing := refusingServer(t)
	const pw, token = "s3cret-Pa55", "t0ken-Secr3t"
	unreachable := strings.TrimPrefix(cmdtest.UnreachableNATS, "nats://")
	for _, tc := range []struct {
		name, url, shown, reason string
		viaEnv                   bool
	}{
		{"password, nothing listens", "nats://ink:" + pw + "@" + unreachable, "nats://ink:xxxxx@" + unreachable, "no servers available", false},
		{"password in NATS_URL, nothing listens", "nats://ink:" + pw + "@" + unreachable, "nats://ink:xxxxx@" + unreachable, "no servers available", true},
		{"token, nothing listens", "nats://" + token + "@" + unreachable, "nats://xxxxx@" + unreachable, "no servers available", false},
		{"password refused", "nats://ink:" + pw + "@" + refusing, "nats://ink:xxxxx@" + refusing, "Authorization Violation", false},
		{"token refused, second of two URLs", cmdtest.UnreachableNATS + ",nats://" + token + "@" + refusing, "nats://xxxxx@" + refusing, "Authorization Violation", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, env := []string{"-listen", "127.0.0.1:0", "-nats-url", tc.url}, cmdtest.Env()
			if tc.viaEnv {
				args, env = []string{"-listen", "127.0.0.1:0"}, cmdtest.Env("NATS_URL="+tc.url)
			}
			b := cmdtest.Start(t, run, args, env)
			b.WaitLog(t, cmdtest.Timeout, regexp.MustCompile(`(nats connect failed; retrying)`), regexp.MustCompile(`(`+regexp.QuoteMeta(tc.reason)+`)`))
			err := b.Stop(t)
			all := b.Out.String()
			if err != nil {
				all += "\nrun returned: " + err.Error()
			}
			for _, secret := range []string{pw, token} {
				if strings.Contains(all, secret) {
					t.Fatalf("the secret %q is in the log or error:\n%s", secret, all)
				}
			}
			if !strings.Contains(all, tc.shown) {
				t.Fatalf("the log does not name the redacted URL %s:\n%s", tc.shown, all)
			}
		})
	}
}

// TestBadNATSURLIsRefusedWithoutItsPassword: a URL the NATS client cannot
// parse is a configuration error that names the flag, not the password.
func TestBadNATSURLIsRefusedWithoutItsPassword(t *testing.T) {
	out, err := cmdtest.RunBriefly(t, run, []string{"-nats-url", "nats://ink:s3cret%zz@127.0.0.1:bad"}, cmdtest.Env())
	if err == nil || !strings.Contains(err.Error(), "-nats-url") {
		t.Fatalf("want a configuration error naming -nats-url, got %v", err)
	}
	if strings.Contains(out+err.Error(), "s3cret") {
		t.Fatalf("the password is shown: %v\n%s", err, out)
	}
}
