package natsx

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure an in-process nats-server with JetStream.
type EmbeddedOptions struct {
	Host        string // client host; default 127.0.0.1
	Port        int    // client port; -1 picks a free one
	StoreDir    string // JetStream file store
	MonitorHost string
	MonitorPort int // 0: no monitoring
	ServerName  string
	// Cluster, when ClusterPort is non-zero, joins a cluster.
	ClusterName string
	ClusterHost string
	ClusterPort int
	Routes      []string // nats-route://host:port of the other nodes
	NoLog       bool
	// Users are who may connect, each with its role's permissions; none:
	// anyone, anonymously (the benchmark's and some tests' servers).
	Users []User
	// TLS, when TLSCert is set: clients must connect with TLS; with
	// TLSVerify they must also show a certificate that TLSCA signed.
	TLSCert, TLSKey, TLSCA string
	TLSVerify              bool
}

// StartEmbedded starts a nats-server with JetStream and waits until it
// accepts connections.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName: o.ServerName,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      o.NoLog,
		// Large enough for 1 MiB article bodies plus envelope and headers.
		MaxPayload: 8 << 20,
	}
	serverUsers(opts, o.Users)
	if o.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey, CaFile: o.TLSCA, Verify: o.TLSVerify})
		if err != nil {
			return nil, fmt.Errorf("nats-server TLS: %w", err)
		}
		opts.TLS, opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = true, tc, o.TLSVerify, 2
	}
	if o.MonitorPort != 0 {
		opts.HTTPHost = o.MonitorHost
		if opts.HTTPHost == "" {
			opts.HTTPHost = o.Host
		}
		opts.HTTPPort = o.MonitorPort
	}
	if o.ClusterPort != 0 {
		opts.Cluster.Name = o.ClusterName
		opts.Cluster.Host = o.ClusterHost
		if opts.Cluster.Host == "" {
			opts.Cluster.Host = o.Host
		}
		opts.Cluster.Port = o.ClusterPort
		opts.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
	}
	// nats-server does not report a busy port: it only never gets ready.
	// Fail at once instead, so a busy port fails at start.
	for _, l := range []struct {
		host string
		port int
	}{{opts.Host, opts.Port}, {opts.HTTPHost, opts.HTTPPort}, {opts.Cluster.Host, opts.Cluster.Port}} {
		if err := checkFree(l.host, l.port); err != nil {
			return nil, err
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	if !o.NoLog {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server did not start on %s:%d", o.Host, o.Port)
	}
	return s, nil
}

func checkFree(host string, port int) error {
	if port <= 0 {
		return nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	return l.Close()
}
