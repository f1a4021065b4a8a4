package systest

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/auth/authtest"
	"github.com/inkstream/inkstream/internal/config"
)

// Every system of the kit runs with authentication on: its APIs trust the
// kit's signing key, served to them as a JWKS over HTTP by the system's own
// endpoint. Requests to them carry an editor's token unless they say
// otherwise (see Do), so that a test that is not about rights is not
// about tokens either.

// DefaultSubject is the subject of the editor token requests carry by default.
const DefaultSubject = "kit-editor"

var kit struct {
	once   sync.Once
	signer *auth.Signer
	editor string
	err    error
	mu     sync.Mutex
	hosts  map[string]bool // host:port of the kit's APIs
}

// kitSigner is the test process's signing key and the default editor token.
func kitSigner(tb testing.TB) *auth.Signer {
	tb.Helper()
	kit.once.Do(func() {
		if kit.signer, kit.err = auth.NewSigner(); kit.err == nil {
			kit.editor, kit.err = kit.signer.Token(auth.Claims{Subject: DefaultSubject, Roles: []string{"editor"}, TTL: 24 * time.Hour})
		}
		kit.hosts = map[string]bool{}
	})
	if kit.err != nil {
		tb.Fatal(kit.err)
	}
	return kit.signer
}

// serveKeys starts the system's JWKS endpoint.
func (s *System) serveKeys() {
	s.TB.Helper()
	s.JWKS = authtest.ServeJWKS(s.TB, kitSigner(s.TB))
}

// withAuth makes a role's configuration trust the kit's key through the
// system's JWKS endpoint, unless it names keys of its own.
func (s *System) withAuth(a config.Auth) config.Auth {
	if a.JWKSURL == "" && a.JWKSFile == "" && a.DevKeyDir == "" {
		a.JWKSURL = s.JWKS.URL()
	}
	return a
}

// addHost makes Do give requests to addr the default token until the test ends.
func (s *System) addHost(addr string) {
	kit.mu.Lock()
	kit.hosts[addr] = true
	kit.mu.Unlock()
	s.TB.Cleanup(func() {
		kit.mu.Lock()
		delete(kit.hosts, addr)
		kit.mu.Unlock()
	})
}

// authorize gives req the default editor token when it goes to an API of
// a kit system and names no Authorization of its own; an Authorization
// header with an empty value makes it anonymous.
func authorize(req *http.Request, headers []string) {
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Authorization" {
			if headers[i+1] == "" {
				req.Header.Del("Authorization")
			}
			return
		}
	}
	kit.mu.Lock()
	ours := kit.hosts[req.URL.Host]
	kit.mu.Unlock()
	if ours {
		req.Header.Set("Authorization", "Bearer "+kit.editor)
	}
}

// Token returns a token the system's APIs trust, for sub with roles
// (author, editor, admin), valid for an hour.
func (s *System) Token(sub string, roles ...string) string {
	s.TB.Helper()
	return s.TokenWith(auth.Claims{Subject: sub, Roles: roles, TTL: time.Hour})
}

// TokenWith returns a token of any claims signed with the key the system's
// APIs trust.
func (s *System) TokenWith(c auth.Claims) string {
	s.TB.Helper()
	tok, err := kitSigner(s.TB).Token(c)
	if err != nil {
		s.TB.Fatal(err)
	}
	return tok
}

// As is the header pair that makes a request carry token; As("") makes
// it anonymous.
func As(token string) []string {
	if token == "" {
		return []string{"Authorization", ""}
	}
	return []string{"Authorization", "Bearer " + token}
}

// Anonymous is the header pair of a request without a token.
var Anonymous = As("")

// EditorToken is the token requests to the system carry by default.
func (s *System) EditorToken() string {
	s.TB.Helper()
	kitSigner(s.TB)
	return kit.editor
}
