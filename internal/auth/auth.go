// Package auth turns a request's bearer token into a principal: one
// middleware that verifies the JWT against keys from a JWKS (an OIDC
// provider's jwks_uri, refreshed in the background, a JWKS file, or the
// all-in-one's development key) and records the principal for the
// handlers, which ask domain.Authorize what it may do. The cryptography,
// the JWKS fetch and its refresh are github.com/lestrrat-go/jwx's.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/inkstream/inkstream/pkg/domain"
)

// DefaultRolesClaim is the claim that holds a token's roles.
const DefaultRolesClaim = "roles"

// Options say which tokens to trust.
type Options struct {
	// JWKSURL is a JWKS to fetch and keep fresh (an OIDC provider's jwks_uri).
	JWKSURL string
	// JWKSFile is a JWKS read once at start.
	JWKSFile string
	// Trusted are more public keys to trust (the development key).
	Trusted []jwk.Key
	// Issuer and Audience, when set, must be the token's iss and be in its aud.
	Issuer, Audience string
	// RolesClaim is the claim with the roles, a JSON array of strings; a
	// dotted path reaches into objects (realm_access.roles).
	RolesClaim string
	// Refresh is the longest a fetched JWKS is kept before it is fetched
	// again (default 15 minutes; sooner when its Cache-Control says so).
	// A token whose key id is unknown makes the JWKS be fetched again at
	// once, at most every Refresh/15 (and at least every minute).
	Refresh time.Duration
}

// Configured reports whether o names any key to trust.
func (o Options) Configured() bool {
	return o.JWKSURL != "" || o.JWKSFile != "" || len(o.Trusted) > 0
}

// allowedAlgs are the signature algorithms a token may use: asymmetric
// ones only, so that no public key can ever serve as an HMAC secret, and
// "none" is never accepted.
var allowedAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true, "Ed25519": true,
}

// Verifier verifies bearer tokens. Its methods are safe for concurrent use.
type Verifier struct {
	static     jwk.Set
	remote     *httprc.ResourceBase[jwk.Set]
	cache      *jwk.Cache
	url        string
	issuer     string
	audience   string
	rolesPath  []string
	refreshGap time.Duration
	log        *slog.Logger

	refreshMu   sync.Mutex
	lastRefresh time.Time

	memo memo
}

// New returns a verifier for o. With a JWKS URL it fetches the keys in the
// background and keeps them fresh until ctx ends; a provider that cannot
// be reached at start is logged, and tokens are refused (401) until its
// keys arrive. Without any key source every token is refused.
func New(ctx context.Context, o Options, log *slog.Logger) (*Verifier, error) {
	if o.RolesClaim == "" {
		o.RolesClaim = DefaultRolesClaim
	}
	if o.Refresh <= 0 {
		o.Refresh = 15 * time.Minute
	}
	v := &Verifier{
		static: jwk.NewSet(), url: o.JWKSURL, issuer: o.Issuer, audience: o.Audience,
		rolesPath: strings.Split(o.RolesClaim, "."), log: log,
		refreshGap: min(max(o.Refresh/15, 10*time.Millisecond), time.Minute),
	}
	if o.JWKSFile != "" {
		b, err := os.ReadFile(o.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("-auth-jwks-file: %w", err)
		}
		set, err := jwk.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("-auth-jwks-file %s: %w", o.JWKSFile, err)
		}
		for i := range set.Len() {
			k, _ := set.Key(i)
			if err := v.static.AddKey(k); err != nil {
				return nil, fmt.Errorf("-auth-jwks-file %s: %w", o.JWKSFile, err)
			}
		}
	}
	for _, k := range o.Trusted {
		if err := v.static.AddKey(k); err != nil {
			return nil, err
		}
	}
	if o.JWKSURL != "" {
		c, err := jwk.NewCache(ctx, httprc.NewClient())
		if err != nil {
			return nil, err
		}
		if err := c.Register(ctx, o.JWKSURL, jwk.WithWaitReady(false),
			jwk.WithMinInterval(min(o.Refresh, time.Minute)), jwk.WithMaxInterval(o.Refresh)); err != nil {
			return nil, fmt.Errorf("-auth-jwks-url: %w", err)
		}
		if v.remote, err = c.LookupResource(ctx, o.JWKSURL); err != nil {
			return nil, fmt.Errorf("-auth-jwks-url: %w", err)
		}
		v.cache = c
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := v.remote.Ready(wctx); err != nil {
			log.Error("auth: the JWKS could not be fetched yet; tokens are refused until it is", "url", o.JWKSURL, "err", err)
		}
	}
	if !o.Configured() {
		log.Warn("auth: no -auth-jwks-url or -auth-jwks-file: every bearer token is refused, only anonymous reads work")
	}
	return v, nil
}

// errUnauthenticated words why a token is refused.
func errUnauthenticated(why string) error {
	return fmt.Errorf("%s: %w", why, domain.ErrUnauthenticated)
}

// Verify returns the principal of a bearer token: its sub and the roles
// of the roles claim. Errors: domain.ErrUnauthenticated, saying why.
func (v *Verifier) Verify(ctx context.Context, token string) (domain.Principal, error) {
	if p, ok := v.memo.get(token); ok {
		return p, nil
	}
	tok, err := v.parse(ctx, token)
	if errors.Is(err, errUnknownKey) && v.refreshUnknownKey(ctx) {
		tok, err = v.parse(ctx, token)
	}
	if err != nil {
		return domain.Principal{}, err
	}
	sub, _ := tok.Subject()
	if sub == "" {
		return domain.Principal{}, errUnauthenticated("the token has no sub")
	}
	p := domain.Principal{Subject: sub, Roles: domain.ParseRoles(v.roles(tok)...)}
	until := time.Now().Add(memoTTL)
	if exp, ok := tok.Expiration(); ok && exp.Before(until) {
		until = exp
	}
	v.memo.put(token, p, until)
	return p, nil
}

// errUnknownKey means no trusted key has the token's key id.
var errUnknownKey = errors.New("signed with a key this server does not know")

func (v *Verifier) parse(ctx context.Context, token string) (jwt.Token, error) {
	opts := []jwt.ParseOption{
		jwt.WithKeyProvider(keyProvider{v}),
		jwt.WithContext(ctx),
		jwt.WithAcceptableSkew(30 * time.Second),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	tok, err := jwt.ParseString(token, opts...)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, errUnknownKey):
		return nil, fmt.Errorf("the token is %w: %w", errUnknownKey, domain.ErrUnauthenticated)
	case errors.Is(err, errAlg):
		return nil, errUnauthenticated("the token's alg is not one of RS256, ES256, EdDSA and the like")
	case errors.Is(err, jwt.TokenExpiredError()):
		return nil, errUnauthenticated("the token has expired")
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return nil, errUnauthenticated("the token is not valid yet")
	case errors.Is(err, jwt.InvalidIssuerError()):
		return nil, errUnauthenticated("the token's issuer is not " + v.issuer)
	case errors.Is(err, jwt.InvalidAudienceError()):
		return nil, errUnauthenticated("the token's audience does not include " + v.audience)
	case errors.Is(err, jwt.ValidateError()):
		return nil, errUnauthenticated("the token's claims are not valid")
	default:
		return nil, errUnauthenticated("the token is malformed or its signature does not verify")
	}
}

// errAlg means the token names an algorithm that is not allowed.
var errAlg = errors.New("algorithm not allowed")

// keyProvider hands jwx the trusted keys with the token's key id (all of
// them when it names none), once the token's alg is an allowed one.
type keyProvider struct{ v *Verifier }

func (kp keyProvider) FetchKeys(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg, ok := h.Algorithm()
	if !ok || !allowedAlgs[alg.String()] {
		return errAlg
	}
	kid, _ := h.KeyID()
	found := false
	for _, set := range [...]jwk.Set{kp.v.static, kp.v.remoteSet()} {
		if set == nil {
			continue
		}
		for i := range set.Len() {
			k, _ := set.Key(i)
			if id, _ := k.KeyID(); kid != "" && id != kid {
				continue
			}
			if ka, ok := k.Algorithm(); ok && ka.String() != alg.String() {
				continue
			}
			found = true
			sink.Key(alg, k)
		}
	}
	if !found {
		return errUnknownKey
	}
	return nil
}

func (v *Verifier) remoteSet() jwk.Set {
	if v.remote == nil {
		return nil
	}
	return v.remote.Resource()
}

// refreshUnknownKey fetches the JWKS again when a token names a key it
// lacks (the provider rotated its keys), at most every refreshGap. It
// reports whether it fetched.
func (v *Verifier) refreshUnknownKey(ctx context.Context) bool {
	if v.cache == nil {
		return false
	}
	v.refreshMu.Lock()
	defer v.refreshMu.Unlock()
	if time.Since(v.lastRefresh) < v.refreshGap {
		return false
	}
	v.lastRefresh = time.Now()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := v.cache.Refresh(rctx, v.url); err != nil {
		v.log.Warn("auth: JWKS refresh for an unknown key id failed", "url", v.url, "err", err)
		return false
	}
	return true
}

// roles reads the roles claim: an array of strings (or one string) at the
// claim's dotted path.
func (v *Verifier) roles(tok jwt.Token) []string {
	var cur any
	if err := tok.Get(v.rolesPath[0], &cur); err != nil {
		return nil
	}
	for _, name := range v.rolesPath[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[name]
	}
	switch r := cur.(type) {
	case string:
		return []string{r}
	case []string:
		return r
	case []any:
		out := make([]string, 0, len(r))
		for _, x := range r {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Close stops the background refresh.
func (v *Verifier) Close(ctx context.Context) error {
	if v.cache == nil {
		return nil
	}
	return v.cache.Shutdown(ctx)
}

// memoTTL is the longest a verified token is remembered: a key the
// provider withdraws stops verifying tokens within it.
const memoTTL = time.Minute

// memoSize bounds the tokens remembered.
const memoSize = 4096

// memo remembers verified tokens, so that a client sending the same token
// with every request pays for its signature once a minute, not each time.
type memo struct {
	mu sync.RWMutex
	m  map[string]memoEntry
}

type memoEntry struct {
	p     domain.Principal
	until time.Time
}

func (m *memo) get(token string) (domain.Principal, bool) {
	m.mu.RLock()
	e, ok := m.m[token]
	m.mu.RUnlock()
	if !ok || !time.Now().Before(e.until) {
		return domain.Principal{}, false
	}
	return e.p, true
}

func (m *memo) put(token string, p domain.Principal, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= memoSize {
		m.m = make(map[string]memoEntry, 64) // forget them all: each is verified again once
	}
	m.m[token] = memoEntry{p: p, until: until}
}

// sigAlg is the algorithm the development key signs with.
var sigAlg = jwa.EdDSA()
