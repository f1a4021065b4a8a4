package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/auth/authtest"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
)

// testCA is a certificate authority made by a test, in PEM files.
type testCA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	File string // the CA certificate
}

func newCA(tb testing.TB) *testCA {
	tb.Helper()
	ca := &testCA{dir: tb.TempDir()}
	ca.cert, ca.key, ca.File = ca.issue(tb, "inkstream test CA", nil, nil)
	return ca
}

// Issue makes a certificate signed by the CA (for ip, when given: a
// server's) and returns its file and its key's.
func (ca *testCA) Issue(tb testing.TB, name string, ip net.IP) (certFile, keyFile string) {
	tb.Helper()
	_, _, certFile = ca.issue(tb, name, ip, ca)
	return certFile, filepath.Join(ca.dir, name+".key")
}

func (ca *testCA) issue(tb testing.TB, name string, ip net.IP, parent *testCA) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	} else {
		signer, signerKey = parent.cert, parent.key
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile := filepath.Join(ca.dir, name+".pem")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, filepath.Join(ca.dir, name+".key"): {Type: "EC PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return cert, key, certFile
}

// writeContext writes a NATS CLI context file.
func writeContext(tb testing.TB, settings map[string]string) string {
	tb.Helper()
	b, err := json.Marshal(settings)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "context.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return file
}

// TestServicesConnectWithTLSAndAContext runs a NATS server that requires
// TLS with a client certificate, both from a CA the test makes, and lets
// in inkstream's users only. The command API connects with the flags
// (-nats-ca, -nats-cert, -nats-key, -nats-user, -nats-password), the
// projector and the query API with NATS CLI context files (NATS_CONTEXT),
// and verify as the admin with the admin's context. A write is projected
// and read back; no password reaches a log; a client without a
// certificate is refused.
func TestServicesConnectWithTLSAndAContext(t *testing.T) {
	ca := newCA(t)
	serverCert, serverKey := ca.Issue(t, "nats-server", net.ParseIP("127.0.0.1"))
	clientCert, clientKey := ca.Issue(t, "inkstream", nil)
	ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Port: -1, StoreDir: t.TempDir(), NoLog: true, Users: natstest.Users(),
		TLSCert: serverCert, TLSKey: serverKey, TLSCA: ca.File, TLSVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := fmt.Sprintf("tls://127.0.0.1:%d", ns.Addr().(*net.TCPAddr).Port)
	ctx := natstest.Context(t)
	var logs cmdtest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// The admin provisions, with the options as flags would set them.
	admin := natstest.RoleOptions(url, natsx.RoleAdmin, 1)
	admin.CA, admin.Cert, admin.Key = ca.File, clientCert, clientKey
	conn, err := natsx.Connect(ctx, admin, log)
	if err != nil {
		t.Fatalf("admin over TLS: %v", err)
	}
	t.Cleanup(conn.NC.Close)
	res, err := natsx.Provision(ctx, conn.JS, admin, log)
	if err != nil {
		t.Fatal(err)
	}

	// Without a client certificate the server lets nobody in.
	noCert := natstest.RoleOptions(url, natsx.RoleAdmin, 1)
	noCert.CA, noCert.ConnectTimeout = ca.File, time.Second
	if c, err := natsx.Connect(ctx, noCert, log); err == nil {
		c.NC.Close()
		t.Fatal("a client without a certificate connected")
	}

	// The APIs trust the keys of a JWKS file; writes need a token.
	signer := authtest.NewSigner(t)
	jwks, err := signer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	token, err := signer.Token(auth.Claims{Subject: "a", Roles: []string{"author"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cmdCfg, err := config.ParseCommandAPI("command-api", []string{"-listen", "127.0.0.1:0", "-nats-url", url, "-auth-jwks-file", jwksFile,
		"-nats-user", string(natsx.RoleCommandAPI), "-nats-password", natstest.Password(natsx.RoleCommandAPI),
		"-nats-ca", ca.File, "-nats-cert", clientCert, "-nats-key", clientKey}, cmdtest.Env(), &logs)
	if err != nil {
		t.Fatal(err)
	}
	context := func(role natsx.Role) string {
		return writeContext(t, map[string]string{"url": url, "user": string(role), "password": natstest.Password(role),
			"ca": ca.File, "cert": clientCert, "key": clientKey})
	}
	projCfg, err := config.ParseProjector("projector", []string{"-listen", "127.0.0.1:0"}, cmdtest.Env("NATS_CONTEXT="+context(natsx.RoleProjector)), &logs)
	if err != nil {
		t.Fatal(err)
	}
	queryCfg, err := config.ParseQueryAPI("query-api", []string{"-listen", "127.0.0.1:0", "-auth-jwks-file", jwksFile}, cmdtest.Env("INKSTREAM_NATS_CONTEXT="+context(natsx.RoleQueryAPI)), &logs)
	if err != nil {
		t.Fatal(err)
	}
	if queryCfg.NATS.URL != url {
		t.Fatalf("the query API's URL is %q, want the context's %s", queryCfg.NATS.URL, url)
	}
	var running []*app.Running
	for _, start := range []func() (*app.Running, error){
		func() (*app.Running, error) { return app.StartProjector(ctx, projCfg, log) },
		func() (*app.Running, error) { return app.StartQueryAPI(ctx, queryCfg, log) },
		func() (*app.Running, error) { return app.StartCommandAPI(ctx, cmdCfg, log) },
	} {
		r, err := start()
		if err != nil {
			t.Fatalf("start: %v\n%s", err, logs.String())
		}
		t.Cleanup(func() { _ = r.Stop() })
		running = append(running, r)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	w, err := systest.Do(client, http.MethodPost, "http://"+running[2].Addr+"/api/articles", map[string]any{"title": "Over TLS", "content": "c", "author_id": "a"}, "Authorization", "Bearer "+token)
	if err != nil || w.Status != http.StatusCreated {
		t.Fatalf("POST: %v %d %s", err, w.Status, w.Body)
	}
	var a struct{ ID string }
	w.JSON(t, &a)
	natstest.WaitFor(t, 20*time.Second, func() error {
		if _, err := res.KV.Get(ctx, a.ID); err != nil {
			return fmt.Errorf("snapshot of %s: %v", a.ID, err)
		}
		r, err := systest.Do(client, http.MethodGet, "http://"+running[1].Addr+"/api/articles/"+a.ID, nil, "Authorization", "Bearer "+token)
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("GET: %d %s", r.Status, r.Body)
		}
		return err
	})

	var out cmdtest.SyncBuffer
	adminContext := writeContext(t, map[string]string{"url": url, "user": string(natsx.RoleAdmin), "password": natstest.Password(natsx.RoleAdmin),
		"ca": ca.File, "cert": clientCert, "key": clientKey})
	if err := app.Verify(ctx, nil, cmdtest.Env("NATS_CONTEXT="+adminContext), &out, &out); err != nil || !strings.Contains(out.String(), "1 articles, 0 differences") {
		t.Fatalf("verify with the admin's context: %v\n%s", err, out.String())
	}
	for _, r := range natsx.AccountRoles {
		if strings.Contains(logs.String()+out.String(), natstest.Password(r)) {
			t.Fatalf("%s's password is in a log:\n%s%s", r, logs.String(), out.String())
		}
	}
}
