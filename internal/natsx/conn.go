package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jsm.go/natscontext"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a NATS connection with its JetStream context.
type Conn struct {
	NC *nats.Conn
	JS jetstream.JetStream
}

// Connect dials the configured servers. It reconnects for ever after a
// server loss and logs each disconnect and reconnect. The first dial is
// retried until ctx ends, or with a ConnectTimeout until it passes; with a
// ConnectTimeout (an admin command) a refused login fails at once.
func Connect(ctx context.Context, cfg Options, log *slog.Logger) (*Conn, error) {
	nctx, err := cfg.clientContext()
	if err != nil {
		return nil, err
	}
	// Whatever the context adds, logs and errors redact it too.
	cfg.URL = strings.Join(strings.Fields(strings.ReplaceAll(nctx.ServerURL(), ",", " ")), ",")
	if cfg.Password == "" {
		cfg.Password = nctx.Password()
	}
	opts, err := nctx.NATSOptions(
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", cfg.RedactError(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// ConnectedUrlRedacted leaves a token (nats://<token>@host) in clear.
			log.Info("nats reconnected", "url", RedactURL(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "err", cfg.RedactError(err))
		}))
	if err != nil {
		return nil, fmt.Errorf("nats options: %w", cfg.RedactError(err))
	}
	var deadline <-chan time.Time
	if cfg.ConnectTimeout > 0 {
		t := time.NewTimer(cfg.ConnectTimeout)
		defer t.Stop()
		deadline = t.C
	}
	var nc *nats.Conn
	// A process may start before NATS does: retry the first dial.
	for {
		nc, err = nats.Connect(cfg.URL, opts...)
		if err == nil {
			break
		}
		// The URL carries the credentials; a parse error quotes it.
		err = cfg.RedactError(err)
		if cfg.ConnectTimeout > 0 && isAuthError(err) {
			return nil, fmt.Errorf("connect to %s: %w (are these the admin's credentials? -nats-nkey, -nats-creds, -nats-user, or NATS_CONTEXT)", RedactURL(cfg.URL), err)
		}
		log.Warn("nats connect failed; retrying", "url", RedactURL(cfg.URL), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w", RedactURL(cfg.URL), errors.Join(err, ctx.Err()))
		case <-deadline:
			return nil, fmt.Errorf("could not connect to NATS at %s within %s (-connect-timeout): %w", RedactURL(cfg.URL), cfg.ConnectTimeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	// An async publish whose ack is lost (its stream leader stepped down or
	// died) would otherwise stay pending for ever and keep a slot of the
	// 4096: time it out, so it resolves with an error and frees its slot.
	jsOpts := []jetstream.JetStreamOpt{jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(10 * time.Second)}
	var js jetstream.JetStream
	switch {
	case nctx.JSAPIPrefix() != "":
		js, err = jetstream.NewWithAPIPrefix(nc, nctx.JSAPIPrefix(), jsOpts...)
	case nctx.JSDomain() != "":
		js, err = jetstream.NewWithDomain(nc, nctx.JSDomain(), jsOpts...)
	default:
		js, err = jetstream.New(nc, jsOpts...)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Conn{NC: nc, JS: js}, nil
}

// isAuthError reports whether the server refused the credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// clientContext is the connection's settings as a NATS CLI context: the
// context Options.Context names, if any, with the fields Options sets
// itself taking precedence. Credentials given in Options replace the
// context's altogether (they are different kinds: a user, an nkey, creds).
func (cfg Options) clientContext() (*natscontext.Context, error) {
	explicit := []natscontext.Option{
		natscontext.WithServerURL(cfg.URL),
		natscontext.WithCreds(cfg.Creds), natscontext.WithNKey(cfg.NKey),
		natscontext.WithUser(cfg.User), natscontext.WithPassword(cfg.Password),
		natscontext.WithCA(cfg.CA), natscontext.WithCertificate(cfg.Cert), natscontext.WithKey(cfg.Key),
	}
	if cfg.Context == "" {
		return natscontext.New("", false, explicit...)
	}
	if cfg.Creds == "" && cfg.NKey == "" && cfg.User == "" {
		return LoadContext(cfg.Context, explicit...)
	}
	loaded, err := LoadContext(cfg.Context)
	if err != nil {
		return nil, err
	}
	base := []natscontext.Option{
		natscontext.WithServerURL(loaded.ServerURL()),
		natscontext.WithCA(loaded.CA()), natscontext.WithCertificate(loaded.Certificate()), natscontext.WithKey(loaded.Key()),
		natscontext.WithInboxPrefix(loaded.InboxPrefix()), natscontext.WithSocksProxy(loaded.SocksProxy()),
		natscontext.WithJSAPIPrefix(loaded.JSAPIPrefix()), natscontext.WithJSDomain(loaded.JSDomain()),
	}
	if loaded.TLSHandshakeFirst() {
		base = append(base, natscontext.WithTLSHandshakeFirst())
	}
	return natscontext.New(loaded.Name, false, append(base, explicit...)...)
}

// LoadContext loads a NATS CLI context as the CLI does: a path to a .json
// file that exists, else the name of a context the CLI has saved
// (~/.config/nats/context/<name>.json). opts override what it holds.
func LoadContext(name string, opts ...natscontext.Option) (*natscontext.Context, error) {
	var c *natscontext.Context
	var err error
	if st, serr := os.Stat(name); serr == nil && st.Mode().IsRegular() && strings.HasSuffix(name, ".json") {
		c, err = natscontext.NewFromFile(name, opts...)
	} else {
		c, err = natscontext.New(name, true, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("NATS context %s: %w", name, err)
	}
	return c, nil
}

// Drain drains the connection and waits until it is closed or ctx ends.
func (c *Conn) Drain(ctx context.Context) error {
	if c == nil || c.NC == nil || c.NC.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	c.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
		return err
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		c.NC.Close()
		return ctx.Err()
	}
}
