package bench

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// startCluster starts three nats-servers in one JetStream cluster on
// loopback, each storing in r.dir/store/<name>, and returns them with
// the URL of all three and the harness's own connection, once JetStream
// answers (it has a meta leader).
func (r *runner) startCluster(ctx context.Context, store string) ([]*proc, string, *natsConn, error) {
	const n = 3
	var clients, routes, urls, routeURLs []string
	for range n {
		c, err := freeAddr()
		if err != nil {
			return nil, "", nil, err
		}
		rt, err := freeAddr()
		if err != nil {
			return nil, "", nil, err
		}
		clients, routes = append(clients, c), append(routes, rt)
		urls, routeURLs = append(urls, "nats://"+c), append(routeURLs, "nats://"+rt)
	}
	url := strings.Join(urls, ",")
	var servers []*proc
	for i := range n {
		name := fmt.Sprintf("nats-%d", i+1)
		_, port, _ := net.SplitHostPort(clients[i])
		args := []string{"-a", "127.0.0.1", "-p", port, "-js", "-sd", filepath.Join(r.dir, store, name), "-n", name,
			"--cluster_name", "inkbench", "--cluster", routeURLs[i], "--routes", strings.Join(routeURLs, ",")}
		var pprofURL string
		if r.cfg.Pprof {
			if prof, err := freeAddr(); err == nil {
				_, pport, _ := net.SplitHostPort(prof)
				args = append(args, "--profile", pport)
				pprofURL = "http://127.0.0.1:" + pport
				r.logf("%s: pprof: %s/debug/pprof/", name, pprofURL)
			}
		}
		p, err := r.ps.start(name, r.cfg.bin("nats-server"), args...)
		if err != nil {
			return nil, "", nil, err
		}
		p.pprofURL = pprofURL
		servers = append(servers, p)
	}
	var conn natsConn
	var err error
	conn.nc, conn.js, err = connectJS(ctx, servers[0], url)
	if err != nil {
		return nil, "", nil, fmt.Errorf("cluster: %w", err)
	}
	if err := alive(servers...); err != nil {
		conn.nc.Close()
		return nil, "", nil, err
	}
	r.logf("cluster: %s, stores in %s", url, filepath.Join(r.dir, store))
	return servers, url, &conn, nil
}
