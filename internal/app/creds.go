package app

import (
	"fmt"
	"io"

	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
)

// Creds is `inkstream creds`: it makes (or keeps) an nkey per NATS user of
// inkstream in -dir, the accounts block of the servers' config
// (accounts.conf, which deployments/nats/nats.conf includes as
// auth/accounts.conf) and the NATS CLI contexts of the admin and the
// system user (admin.json, sys.json) for -nats-url. Nothing in it is a
// password that a deployment would share: each one made anew is random.
func Creds(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.ParseCreds(args, getenv, stderr)
	if err != nil {
		return err
	}
	if _, err := natsx.DeploymentCredentials(cfg.Dir, cfg.URL); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "creds: in %s: admin.nk, command-api.nk, projector.nk, query-api.nk, sys.nk (nkey seeds, one per NATS user); "+
		"accounts.conf (the servers' users and permissions); admin.json, sys.json (NATS CLI contexts for %s)\n", cfg.Dir, natsx.RedactURL(cfg.URL))
	return nil
}
