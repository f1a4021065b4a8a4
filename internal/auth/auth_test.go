package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/auth/authtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/pkg/domain"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newVerifier(tb testing.TB, o auth.Options) *auth.Verifier {
	tb.Helper()
	v, err := auth.New(natstest.Context(tb), o, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = v.Close(context.Background()) })
	return v
}

func mint(tb testing.TB, s *auth.Signer, c auth.Claims) string {
	tb.Helper()
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	tok, err := s.Token(c)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// signRaw signs claims for sub with any algorithm and key, for the tokens
// the Signer would never make.
func signRaw(tb testing.TB, alg jwa.SignatureAlgorithm, key any, kid string) string {
	tb.Helper()
	tok, err := jwt.NewBuilder().Subject("mallory").Claim("roles", []string{"admin"}).
		IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Build()
	if err != nil {
		tb.Fatal(err)
	}
	k, err := jwk.Import(key)
	if err != nil {
		tb.Fatal(err)
	}
	if kid != "" {
		_ = k.Set(jwk.KeyIDKey, kid)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(alg, k))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestVerifyOverJWKS verifies tokens against keys fetched from a JWKS
// endpoint over HTTP: roles, issuer and audience, and every way a token
// must be refused.
func TestVerifyOverJWKS(t *testing.T) {
	good := authtest.NewSigner(t)
	stranger := authtest.NewSigner(t)
	// The endpoint also serves a symmetric key: it must never verify anything.
	secret := []byte("a shared secret that is long enough for HS256!!")
	oct, err := jwk.Import(secret)
	if err != nil {
		t.Fatal(err)
	}
	_ = oct.Set(jwk.KeyIDKey, "oct-1")
	jwks := authtest.ServeJWKS(t)
	jwks.Serve(t, []*auth.Signer{good}, oct)
	v := newVerifier(t, auth.Options{JWKSURL: jwks.URL(), Issuer: "https://id.example", Audience: "inkstream"})
	claims := auth.Claims{Subject: "ada", Roles: []string{"author", "unknown-role"}, Issuer: "https://id.example", Audience: "inkstream"}

	p, err := v.Verify(context.Background(), mint(t, good, claims))
	if err != nil {
		t.Fatal(err)
	}
	if p != (domain.Principal{Subject: "ada", Roles: domain.RoleAuthor}) {
		t.Fatalf("principal %+v", p)
	}

	goodKid, _ := good.Public().KeyID()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	with := func(f func(*auth.Claims)) string { c := claims; f(&c); return mint(t, good, c) }
	valid := mint(t, good, claims)
	parts := strings.Split(valid, ".")
	bad := map[string]string{
		"malformed":                          "not.a.jwt",
		"garbage":                            "eyJhbGciOiJFZERTQSJ9.%%%.@@@",
		"empty payload":                      parts[0] + ".." + parts[2],
		"signature of another":               parts[0] + "." + parts[1] + "." + strings.Split(mint(t, good, auth.Claims{Subject: "bob", Issuer: claims.Issuer, Audience: claims.Audience}), ".")[2],
		"unknown key":                        mint(t, stranger, claims),
		"unknown key, our kid":               signRaw(t, jwa.EdDSA(), mustEd(t), goodKid),
		"RS256 unknown key":                  signRaw(t, jwa.RS256(), rsaKey, ""),
		"ES256 unknown key":                  signRaw(t, jwa.ES256(), ecKey, ""),
		"HS256 with the oct key of the JWKS": signRaw(t, jwa.HS256(), secret, "oct-1"),
		"HS256 without kid":                  signRaw(t, jwa.HS256(), secret, ""),
		"alg none":                           unsigned(t, "ada"),
		"expired":                            with(func(c *auth.Claims) { c.IssuedAt = time.Now().Add(-2 * time.Hour) }),
		"not yet valid":                      with(func(c *auth.Claims) { c.IssuedAt = time.Now().Add(time.Hour) }),
		"other issuer":                       with(func(c *auth.Claims) { c.Issuer = "https://evil.example" }),
		"no issuer":                          with(func(c *auth.Claims) { c.Issuer = "" }),
		"other audience":                     with(func(c *auth.Claims) { c.Audience = "another-app" }),
		"no sub":                             with(func(c *auth.Claims) { c.Subject = "" }),
	}
	for name, tok := range bad {
		p, err := v.Verify(context.Background(), tok)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("%s: principal %+v, err %v; want ErrUnauthenticated", name, p, err)
		}
	}
}

func mustEd(tb testing.TB) any {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return priv
}

// unsigned is a token with alg none claiming to be an admin.
func unsigned(tb testing.TB, sub string) string {
	tb.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).Claim("roles", []string{"admin"}).Expiration(time.Now().Add(time.Hour)).Build()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := jwt.Sign(tok, jwt.WithInsecureNoSignature())
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestKeyRotation: the provider replaces its key. A token of the new key
// makes the verifier fetch the JWKS again at once; and the JWKS is fetched
// again in the background without any token asking.
func TestKeyRotation(t *testing.T) {
	old, cur := authtest.NewSigner(t), authtest.NewSigner(t)
	jwks := authtest.ServeJWKS(t, old)
	v := newVerifier(t, auth.Options{JWKSURL: jwks.URL(), Refresh: 300 * time.Millisecond})
	if _, err := v.Verify(context.Background(), mint(t, old, auth.Claims{Subject: "ada"})); err != nil {
		t.Fatal(err)
	}
	jwks.Serve(t, []*auth.Signer{cur})
	natstest.WaitFor(t, 10*time.Second, func() error {
		_, err := v.Verify(context.Background(), mint(t, cur, auth.Claims{Subject: "ada"}))
		return err
	})
	natstest.WaitFor(t, 10*time.Second, func() error {
		if _, err := v.Verify(context.Background(), mint(t, old, auth.Claims{Subject: "bob"})); err == nil {
			return errors.New("a token of the withdrawn key still verifies")
		}
		return nil
	})
	// The background refresh: more fetches come with no token at all.
	n := jwks.Fetches()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if jwks.Fetches() < n+2 {
			return errors.New("the JWKS is not fetched again in the background")
		}
		return nil
	})
}

// TestRolesClaimPath reads Keycloak's realm roles.
func TestRolesClaimPath(t *testing.T) {
	s := authtest.NewSigner(t)
	jwks := authtest.ServeJWKS(t, s)
	v := newVerifier(t, auth.Options{JWKSURL: jwks.URL(), RolesClaim: "realm_access.roles"})
	p, err := v.Verify(context.Background(), mint(t, s, auth.Claims{Subject: "eve", Roles: []string{"editor", "offline_access"}, RolesClaim: "realm_access.roles"}))
	if err != nil || p.Roles != domain.RoleEditor {
		t.Fatalf("%+v %v", p, err)
	}
	// Roles elsewhere are not roles.
	p, err = v.Verify(context.Background(), mint(t, s, auth.Claims{Subject: "eve", Roles: []string{"editor"}}))
	if err != nil || p.Roles != 0 {
		t.Fatalf("%+v %v", p, err)
	}
}

// TestJWKSFileAndNoKeys: keys from a file; and with no key source every
// token is refused.
func TestJWKSFileAndNoKeys(t *testing.T) {
	s := authtest.NewSigner(t)
	doc, err := s.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := mint(t, s, auth.Claims{Subject: "ada", Roles: []string{"admin"}})
	if p, err := newVerifier(t, auth.Options{JWKSFile: path}).Verify(context.Background(), tok); err != nil || p.Roles != domain.RoleAdmin {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := newVerifier(t, auth.Options{}).Verify(context.Background(), tok); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("no keys: %v", err)
	}
	if _, err := auth.New(context.Background(), auth.Options{JWKSFile: filepath.Join(t.TempDir(), "missing.json")}, quiet); err == nil {
		t.Fatal("a missing JWKS file is no error")
	}
}

// TestDevKey: created once, 0600, loaded again, and its tokens verify.
func TestDevKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := auth.LoadDevKey(dir); !errors.Is(err, auth.ErrNoDevKey) {
		t.Fatalf("no key yet: %v", err)
	}
	k1, created, err := auth.LoadOrCreateDevKey(dir)
	if err != nil || !created {
		t.Fatalf("%v %v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, auth.DevKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi.Mode(), err)
	}
	k2, created, err := auth.LoadOrCreateDevKey(dir)
	if err != nil || created {
		t.Fatalf("second start: %v %v", created, err)
	}
	v := newVerifier(t, auth.Options{Trusted: []jwk.Key{k2.Public()}})
	if _, err := v.Verify(context.Background(), mint(t, k1, auth.Claims{Subject: "ada"})); err != nil {
		t.Fatal(err)
	}
}

// FuzzVerify feeds the token parsing path anything: it never panics, and
// nothing but the signer's own tokens verifies.
func FuzzVerify(f *testing.F) {
	s := authtest.NewSigner(f)
	v := newVerifier(f, auth.Options{Trusted: []jwk.Key{s.Public()}})
	valid := mint(f, s, auth.Claims{Subject: "ada", Roles: []string{"author"}})
	f.Add(valid)
	f.Add(unsigned(f, "ada"))
	f.Add("a.b.c")
	f.Add("")
	f.Add(`{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJub25lIn0","signature":""}]}`)
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := v.Verify(context.Background(), tok)
		if err == nil {
			// Only the signer's token verifies (base64 may spell it
			// otherwise): its claims, nobody else's.
			if p != (domain.Principal{Subject: "ada", Roles: domain.RoleAuthor}) {
				t.Fatalf("%q verified as %+v", tok, p)
			}
			return
		}
		if !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatalf("%q: %v is not ErrUnauthenticated", tok, err)
		}
	})
}
