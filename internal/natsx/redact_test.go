package natsx

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://ink:s3cret@127.0.0.1:4222", "nats://ink:xxxxx@127.0.0.1:4222"},
		{"nats://t0ken@127.0.0.1:4222", "nats://xxxxx@127.0.0.1:4222"},
		{"ink:s3cret@127.0.0.1:4222", "ink:xxxxx@127.0.0.1:4222"},
		{"tls://ink:p%40ss:w@rd@h:1", "tls://ink:xxxxx@h:1"},
		{"nats://ink:s3cret@h:notaport", "nats://ink:xxxxx@h:notaport"},
		{"nats://a:one@h1:1, nats://b:two@h2:2,nats://h3:3", "nats://a:xxxxx@h1:1, nats://b:xxxxx@h2:2,nats://h3:3"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactErrorHidesEverySecretAndKeepsTheChain(t *testing.T) {
	n := Options{URL: "nats://ink:s3cr%21t@h1:1,nats://t0ken@h2:2"}
	_, perr := url.Parse("nats://ink:s3cr%21t@h1:bad")
	err := n.RedactError(errors.Join(perr, errors.New("token t0ken, decoded s3cr!t")))
	for _, s := range []string{"s3cr%21t", "s3cr!t", "t0ken"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%q shows %q", err, s)
		}
	}
	if !strings.Contains(err.Error(), Redacted) || !errors.Is(err, perr) {
		t.Errorf("%q: not redacted, or the chain is lost", err)
	}
	plain := errors.New("nats: no servers available for connection")
	if n.RedactError(plain) != plain || n.RedactError(nil) != nil {
		t.Error("an error without secrets must come back as it is")
	}
}
