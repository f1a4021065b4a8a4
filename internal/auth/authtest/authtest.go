// Package authtest serves test keys as a JWKS over real HTTP, so that the
// tests of inkstream verify tokens the way a deployment does: fetched from
// a JWKS endpoint by the JWT library, and fetched again when keys rotate.
package authtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/inkstream/inkstream/internal/auth"
)

// JWKS is an HTTP JWKS endpoint serving the public keys of some signers.
type JWKS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	doc     []byte
	fetches atomic.Int64
}

// ServeJWKS starts an endpoint serving the public keys of signers (and of
// any extra keys) until the test ends.
func ServeJWKS(tb testing.TB, signers ...*auth.Signer) *JWKS {
	tb.Helper()
	j := &JWKS{}
	j.Serve(tb, signers)
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		doc := j.doc
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	tb.Cleanup(j.srv.Close)
	return j
}

// Serve replaces the keys served: those of signers and extra.
func (j *JWKS) Serve(tb testing.TB, signers []*auth.Signer, extra ...jwk.Key) {
	tb.Helper()
	set := jwk.NewSet()
	for _, s := range signers {
		if err := set.AddKey(s.Public()); err != nil {
			tb.Fatal(err)
		}
	}
	for _, k := range extra {
		if err := set.AddKey(k); err != nil {
			tb.Fatal(err)
		}
	}
	doc, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	j.mu.Lock()
	j.doc = doc
	j.mu.Unlock()
}

// URL is the endpoint's address.
func (j *JWKS) URL() string { return j.srv.URL }

// Fetches counts the requests the endpoint has answered.
func (j *JWKS) Fetches() int64 { return j.fetches.Load() }

// NewSigner returns a signer with a fresh key, failing the test if it cannot.
func NewSigner(tb testing.TB) *auth.Signer {
	tb.Helper()
	s, err := auth.NewSigner()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
