package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// DevKeyFile is the development signing key's file in a data directory.
const DevKeyFile = "dev-signing-key.pem"

// DevJWKSFile is the development key's public half as a JWKS, beside it,
// for processes started with -auth-jwks-file (make cluster, make bench).
const DevJWKSFile = "dev-jwks.json"

// WriteDevJWKS makes sure dir has a development key, and writes its
// public half to DevJWKSFile there.
func WriteDevJWKS(dir string) error {
	k, _, err := LoadOrCreateDevKey(dir)
	if err != nil {
		return err
	}
	doc, err := k.JWKS()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, DevJWKSFile), doc, 0o644)
}

// ErrNoDevKey means a data directory holds no development key yet.
var ErrNoDevKey = errors.New("no development signing key")

// Signer signs tokens with one private key. Tests and the development
// all-in-one use it; production tokens come from an identity provider.
type Signer struct {
	private jwk.Key
	public  jwk.Key
}

// NewSigner returns a signer with a new Ed25519 key.
func NewSigner() (*Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return signerOf(priv)
}

// signerOf wraps a private key; its key id is its RFC 7638 thumbprint.
func signerOf(priv crypto.Signer) (*Signer, error) {
	private, err := jwk.Import(priv)
	if err != nil {
		return nil, err
	}
	public, err := jwk.PublicKeyOf(private)
	if err != nil {
		return nil, err
	}
	tp, err := public.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	for _, k := range []jwk.Key{private, public} {
		if err := errors.Join(k.Set(jwk.KeyIDKey, kid), k.Set(jwk.AlgorithmKey, sigAlg), k.Set(jwk.KeyUsageKey, "sig")); err != nil {
			return nil, err
		}
	}
	return &Signer{private: private, public: public}, nil
}

// Public is the signer's public key, to trust (Options.Trusted).
func (s *Signer) Public() jwk.Key { return s.public }

// JWKS is the signer's public key as a JWKS document.
func (s *Signer) JWKS() ([]byte, error) {
	set := jwk.NewSet()
	if err := set.AddKey(s.public); err != nil {
		return nil, err
	}
	return json.Marshal(set)
}

// Claims are what a token says.
type Claims struct {
	Subject    string
	Roles      []string
	TTL        time.Duration // from now; the token has no exp when 0
	Issuer     string
	Audience   string
	RolesClaim string    // dotted path of the roles (default "roles")
	IssuedAt   time.Time // default now; tests move it back to make expired tokens
}

// Token returns a signed JWT with the claims.
func (s *Signer) Token(c Claims) (string, error) {
	now := c.IssuedAt
	if now.IsZero() {
		now = time.Now()
	}
	b := jwt.NewBuilder().Subject(c.Subject).IssuedAt(now).NotBefore(now)
	if c.TTL != 0 {
		b = b.Expiration(now.Add(c.TTL))
	}
	if c.Issuer != "" {
		b = b.Issuer(c.Issuer)
	}
	if c.Audience != "" {
		b = b.Audience([]string{c.Audience})
	}
	path := strings.Split(cmp(c.RolesClaim, DefaultRolesClaim), ".")
	var roles any = append([]string{}, c.Roles...)
	for i := len(path) - 1; i > 0; i-- {
		roles = map[string]any{path[i]: roles}
	}
	tok, err := b.Claim(path[0], roles).Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(sigAlg, s.private))
	if err != nil {
		return "", err
	}
	return string(signed), nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// LoadDevKey reads the development key of a data directory. Errors:
// ErrNoDevKey when it has none.
func LoadDevKey(dir string) (*Signer, error) {
	path := filepath.Join(dir, DevKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoDevKey)
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return signerOf(priv)
}

// LoadOrCreateDevKey reads the development key of a data directory, and
// creates it (readable by the owner only) when there is none; created
// says which.
func LoadOrCreateDevKey(dir string) (s *Signer, created bool, err error) {
	s, err = LoadDevKey(dir)
	if !errors.Is(err, ErrNoDevKey) {
		return s, false, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, false, err
	}
	path := filepath.Join(dir, DevKeyFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		s, err := LoadDevKey(dir) // another process made it meanwhile
		return s, false, err
	}
	if err != nil {
		return nil, false, err
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(path)
		return nil, false, err
	}
	s, err = signerOf(priv)
	return s, true, err
}
