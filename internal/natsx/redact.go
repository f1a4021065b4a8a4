package natsx

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Redacted is what a password or token is replaced with in anything a
// process logs or returns (the same mark as net/url's URL.Redacted).
const Redacted = "xxxxx"

// RedactURL returns urls, a comma-separated list of NATS server URLs as
// -nats-url takes it, with each password replaced by Redacted, and each
// user without a password too: NATS reads that as a token
// (nats://<token>@host). It only rewrites text, so it redacts what
// net/url cannot parse as well.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if from, to := secretIn(p); from >= 0 {
			parts[i] = p[:from] + Redacted + p[to:]
		}
	}
	return strings.Join(parts, ",")
}

// secretIn returns where the password, or else the token, of one server
// URL is: p[from:to], or -1, -1 when it has neither.
func secretIn(p string) (from, to int) {
	to = strings.LastIndexByte(p, '@')
	if to < 0 {
		return -1, -1
	}
	if i := strings.Index(p[:to], "://"); i >= 0 {
		from = i + len("://")
	}
	if i := strings.IndexByte(p[from:to], ':'); i >= 0 {
		from += i + 1
	}
	return from, to
}

// secrets lists the passwords and tokens in urls as written and, where it
// differs, percent-decoded.
func secrets(urls string) []string {
	var out []string
	for _, p := range strings.Split(urls, ",") {
		from, to := secretIn(p)
		if from < 0 || from == to {
			continue
		}
		s := p[from:to]
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s && d != "" {
			out = append(out, d)
		}
	}
	return out
}

// RedactedURL is the configured URL as logs and errors may show it.
func (n Options) RedactedURL() string { return RedactURL(n.URL) }

// LogValue makes a logged NATS configuration show the redacted URL, and
// of the other credentials only which files they are in: never a password.
func (n Options) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("url", n.RedactedURL()), slog.String("name", n.Name)}
	for _, a := range []struct{ k, v string }{
		{"context", n.Context}, {"creds", n.Creds}, {"nkey", n.NKey}, {"user", n.User},
		{"ca", n.CA}, {"cert", n.Cert}, {"key", n.Key},
	} {
		if a.v != "" {
			attrs = append(attrs, slog.String(a.k, a.v))
		}
	}
	if n.Password != "" {
		attrs = append(attrs, slog.String("password", Redacted))
	}
	attrs = append(attrs, slog.Int("stream_replicas", n.StreamReplicas), slog.Int("kv_replicas", n.KVReplicas),
		slog.Duration("duplicate_window", n.DuplicateWindow), slog.Bool("provision", n.Provision))
	return slog.GroupValue(attrs...)
}

// RedactError returns err with every password and token of the configured
// URLs, and the configured password, replaced by Redacted in its message
// (a NATS client's error may quote the URL it could not use). errors.Is
// and errors.As still see through it. It returns err itself when the
// message holds no secret.
func (n Options) RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	secrets := secrets(n.URL)
	if n.Password != "" {
		secrets = append(secrets, n.Password)
	}
	for _, s := range secrets {
		red = strings.ReplaceAll(red, s, Redacted)
	}
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// CheckURLs reports each server URL in urls that the NATS client could
// not parse, without quoting any password or token.
func CheckURLs(urls string) error {
	var errs []error
	for i, p := range strings.Split(urls, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		u := p
		if !strings.Contains(u, "://") {
			u = "nats://" + u // as the NATS client reads it
		}
		if _, err := url.Parse(u); err != nil {
			why := "not a valid URL"
			// The parser's reason may quote a piece of the user part.
			var ue *url.Error
			if !strings.Contains(p, "@") && errors.As(err, &ue) {
				why = ue.Err.Error()
			}
			errs = append(errs, fmt.Errorf("-nats-url: URL %d (%s): %s", i+1, RedactURL(p), why))
		}
	}
	return errors.Join(errs...)
}
