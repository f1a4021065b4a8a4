package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"

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
}

// StartAllInOne starts the embedded server, then the roles against it.
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
	ns, err := natsx.StartEmbedded(eo)
	if err != nil {
		return nil, err
	}
	a := &AllInOne{NATS: ns, NATSURL: ns.ClientURL()}
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

// Stop stops the command API, the query API, the projector, then NATS.
func (a *AllInOne) Stop() error {
	var errs []error
	for _, r := range []*Running{a.CommandAPI, a.QueryAPI, a.Projector} {
		if r != nil {
			errs = append(errs, r.Stop())
		}
	}
	a.NATS.Shutdown()
	a.NATS.WaitForShutdown()
	return errors.Join(errs...)
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
