package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a NATS connection with its JetStream context.
type Conn struct {
	NC *nats.Conn
	JS jetstream.JetStream
}

// Connect dials the configured servers. It reconnects for ever after a
// server loss and logs each disconnect and reconnect.
func Connect(ctx context.Context, cfg Options, log *slog.Logger) (*Conn, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
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
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	url := strings.Join(strings.Fields(strings.ReplaceAll(cfg.URL, ",", " ")), ",")
	var nc *nats.Conn
	var err error
	// A process may start before NATS does: retry the first dial until ctx ends.
	for {
		nc, err = nats.Connect(url, opts...)
		if err == nil {
			break
		}
		// The URL carries the credentials; a parse error quotes it.
		err = cfg.RedactError(err)
		log.Warn("nats connect failed; retrying", "url", RedactURL(url), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w", RedactURL(url), errors.Join(err, ctx.Err()))
		case <-time.After(500 * time.Millisecond):
		}
	}
	// An async publish whose ack is lost (its stream leader stepped down or
	// died) would otherwise stay pending for ever and keep a slot of the
	// 4096: time it out, so it resolves with an error and frees its slot.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Conn{NC: nc, JS: js}, nil
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
