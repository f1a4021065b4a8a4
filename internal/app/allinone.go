package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
)

// AllInOne is the development server: an embedded nats-server and the
// three roles in one process.
type AllInOne struct {
	NATS    *server.Server
	NATSURL string
	// Context is the NATS CLI context of the admin user
	// (<data-dir>/nats/admin.json): NATS_CONTEXT=<it> gives the CLI and
	// the admin commands the admin's credentials.
	Context    string
	CommandAPI *Running
	QueryAPI   *Running
	Projector  *Running
	lock       *flock.Flock // of the data directory, held until Stop
}

// lockFile is the file in the data directory that a running all-in-one
// holds locked, so that a second process on the same store fails at start.
const lockFile = "inkstream.lock"

// credsDir is the directory in the data directory that holds the
// development NATS credentials.
const credsDir = "nats"

// StartAllInOne locks the data directory, starts the embedded server on
// it, then the roles against it. A data directory locked by another
// process is an error that names it, and nothing in it is touched.
//
// The server lets in inkstream's users only: on first start it makes an
// nkey per role in <data-dir>/nats (files 0600) and keeps them; on every
// start it writes the admin's NATS CLI context there. It provisions the
// stream, bucket and consumer as the admin, then each role connects as
// its own user.
func StartAllInOne(ctx context.Context, cfg config.AllInOne, log *slog.Logger) (*AllInOne, error) {
	host, port, err := splitHostPort(cfg.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("-nats-listen: %w", err)
	}
	eo := natsx.EmbeddedOptions{Host: host, Port: port, StoreDir: cfg.DataDir, ServerName: "inkstream", NoLog: true}
	if cfg.HTTPMonitor != "" {
		if eo.MonitorHost, eo.MonitorPort, err = splitHostPort(cfg.HTTPMonitor); err != nil {
			return nil, fmt.Errorf("-nats-monitor: %w", err)
		}
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// The development key: made on the first start, trusted by both APIs;
	// `inkstream token` signs with it.
	if _, created, err := auth.LoadOrCreateDevKey(cfg.DataDir); err != nil {
		return nil, errors.Join(fmt.Errorf("development key: %w", err), lock.Unlock())
	} else if created {
		log.Info("created the development signing key; `inkstream token -sub <user> -roles <roles>` signs tokens with it", "file", filepath.Join(cfg.DataDir, auth.DevKeyFile))
	}
	cfg.CommandAPI.Auth.DevKeyDir, cfg.QueryAPI.Auth.DevKeyDir = cfg.DataDir, cfg.DataDir
	creds, err := natsx.EnsureCredentials(filepath.Join(cfg.DataDir, credsDir), natsx.AccountRoles...)
	if err == nil {
		eo.Users, err = creds.Users(natsx.AccountRoles...)
	}
	if err != nil {
		return nil, errors.Join(err, lock.Unlock())
	}
	ns, err := natsx.StartEmbedded(eo)
	if err != nil {
		return nil, errors.Join(err, lock.Unlock())
	}
	a := &AllInOne{NATS: ns, NATSURL: ns.ClientURL(), lock: lock}
	log.Info("embedded NATS JetStream listening", "url", a.NATSURL, "store", cfg.DataDir)
	if a.Context, err = filepath.Abs(creds.ContextFile(natsx.RoleAdmin)); err == nil {
		err = creds.WriteContext(natsx.RoleAdmin, a.NATSURL)
	}
	if err == nil {
		err = provisionAsAdmin(ctx, cfg.NATS, a.NATSURL, creds, log)
	}
	if err != nil {
		return nil, errors.Join(err, a.Stop())
	}
	log.Info("NATS credentials in "+creds.Dir+"; for the NATS CLI and the admin commands: export NATS_CONTEXT="+a.Context, "context", a.Context)
	for role, c := range map[natsx.Role]*config.Common{natsx.RoleCommandAPI: &cfg.CommandAPI.Common, natsx.RoleQueryAPI: &cfg.QueryAPI.Common, natsx.RoleProjector: &cfg.Projector.Common} {
		c.NATS.URL, c.NATS.Name, c.NATS.NKey, c.NATS.Provision = a.NATSURL, string(role), creds.SeedFile(role), false
	}
	if a.Projector, err = StartProjector(ctx, cfg.Projector, log.With("role", "projector")); err == nil {
		if a.QueryAPI, err = StartQueryAPI(ctx, cfg.QueryAPI, log.With("role", "query-api")); err == nil {
			a.CommandAPI, err = StartCommandAPI(ctx, cfg.CommandAPI, log.With("role", "command-api"))
		}
	}
	if err != nil {
		return nil, errors.Join(err, a.Stop())
	}
	return a, nil
}

// provisionAsAdmin creates or updates the stream, bucket and consumer on
// the embedded server at url as the admin user.
func provisionAsAdmin(ctx context.Context, n natsx.Options, url string, creds natsx.Credentials, log *slog.Logger) error {
	n.URL, n.Name, n.NKey, n.ConnectTimeout = url, "inkstream-provision", creds.SeedFile(natsx.RoleAdmin), 10*time.Second
	conn, err := natsx.Connect(ctx, n, log)
	if err != nil {
		return err
	}
	defer conn.NC.Close()
	_, err = natsx.Provision(ctx, conn.JS, n, log)
	return err
}

// Stop stops the command API, the query API, the projector, then NATS,
// and unlocks the data directory.
func (a *AllInOne) Stop() error {
	var errs []error
	for _, r := range []*Running{a.CommandAPI, a.QueryAPI, a.Projector} {
		if r != nil {
			errs = append(errs, r.Stop())
		}
	}
	a.NATS.Shutdown()
	a.NATS.WaitForShutdown()
	errs = append(errs, a.lock.Unlock())
	return errors.Join(errs...)
}

// lockDataDir takes the lock of dir (creating both if need be) before
// nats-server opens its store there. A JetStream file store has one
// owner: a second server on it acknowledges writes at sequences the first
// also hands out, and one of them is lost. The lock is flock(2) on
// lockFile: the kernel drops it when the process dies, so a crash leaves
// nothing to clean up.
func lockDataDir(dir string) (*flock.Flock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("-data-dir: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	l := flock.New(path)
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("-data-dir: lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("data directory %s is in use: another inkstream holds the lock on %s; stop it, or give this one another -data-dir", dir, path)
	}
	return l, nil
}

// Done is closed when any role stops on its own.
func (a *AllInOne) Done() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		select {
		case <-a.CommandAPI.Done():
		case <-a.QueryAPI.Done():
		case <-a.Projector.Done():
		}
		close(done)
	}()
	return done
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if n == 0 {
		n = -1 // nats-server: -1 picks a free port
	}
	return h, n, nil
}
