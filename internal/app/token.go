package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/config"
)

// Token is `inkstream token`: it prints a token signed with the
// development key of the all-in-one's data directory, which the
// all-in-one trusts.
func Token(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.ParseToken("inkstream token", args, getenv, stderr)
	if err != nil {
		return err
	}
	key, err := auth.LoadDevKey(cfg.DataDir)
	if errors.Is(err, auth.ErrNoDevKey) {
		return fmt.Errorf("%w: start the all-in-one once with -data-dir %s (it creates the key), or pass the -data-dir it runs with", err, cfg.DataDir)
	}
	if err != nil {
		return err
	}
	tok, err := key.Token(auth.Claims{Subject: cfg.Subject, Roles: cfg.Roles, TTL: cfg.TTL,
		Issuer: cfg.Issuer, Audience: cfg.Audience, RolesClaim: cfg.RolesClaim})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
