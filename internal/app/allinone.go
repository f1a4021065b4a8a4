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

	"github.com/gofrs/flock"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natsx"
)

// AllInOne is the development server: an embedded nats-server and the
// three roles in one process.
type AllInOne struct {
	NATS       *server.Server
	NATSURL    string
	CommandAPI *Running
	QueryAPI   *Running
	Projector  *Running
	lock       *flock.Flock // of the data directory, held until Stop
}

// lockFile is the file in the data directory that a running all-in-one
// holds locked, so that a second process on the same store fails at start.
const lockFile = "inkstream.lock"

// StartAllInOne locks the data directory, starts the embedded server on
// it, then the roles against it. A data directory locked by another
// process is an error that names it, and nothing in it is touched.
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
	ns, err := natsx.StartEmbedded(eo)
	if err != nil {
		return nil, errors.Join(err, lock.Unlock())
	}
	a := &AllInOne{NATS: ns, NATSURL: ns.ClientURL(), lock: lock}
	log.Info("embedded NATS JetStream listening", "url", a.NATSURL, "store", cfg.DataDir)
	for _, c := range []*config.Common{&cfg.CommandAPI.Common, &cfg.QueryAPI.Common, &cfg.Projector.Common} {
		c.NATS.URL = a.NATSURL
	}
	cfg.Projector.NATS.Name, cfg.QueryAPI.NATS.Name, cfg.CommandAPI.NATS.Name = "projector", "query-api", "command-api"
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
