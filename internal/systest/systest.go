// Package systest runs whole inkstream systems inside a test process: real
// embedded JetStream (one server or a three-node cluster), the roles on
// port 0, an HTTP client that drives them, and the kit of checks the system
// tests share (kit.go).
package systest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/auth/authtest"
	"github.com/inkstream/inkstream/internal/config"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/projector"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/events"
)

// Logger is quiet unless INKSTREAM_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("INKSTREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Common returns the settings of the test's own connection to url (a
// natstest server's: the admin's), which provisions.
func Common(url string, replicas int) config.Common {
	return config.Common{NATS: natstest.Options(url, replicas), LogFormat: "text"}
}

// RoleCommon returns the settings of a role of a test system: its own
// NATS user (natstest.RoleOptions), whatever credentials url carries.
func RoleCommon(url string, role natsx.Role, replicas int) config.Common {
	return config.Common{NATS: natstest.RoleOptions(url, role, replicas), LogFormat: "text"}
}

// CommandConfig is a command API on a free port, as user command-api.
func CommandConfig(url string, replicas int) config.CommandAPI {
	return config.CommandAPI{Common: RoleCommon(url, natsx.RoleCommandAPI, replicas), Listen: "127.0.0.1:0", BodyLimit: config.DefaultBodyLimit, WriteTimeout: 10 * time.Second, CacheBytes: 16 << 20, BulkMax: 1000, BulkBodyLimit: 16 << 20, GroupCommit: true}
}

// QueryConfig is a query API on a free port, as user query-api.
func QueryConfig(url string, replicas int) config.QueryAPI {
	return config.QueryAPI{Common: RoleCommon(url, natsx.RoleQueryAPI, replicas), Listen: "127.0.0.1:0", Versions: config.DefaultVersions, MinSeqWait: 2 * time.Second, ReadTimeout: 10 * time.Second, CacheBytes: 16 << 20,
		ViewSource: config.DefaultViewSource, Feed: config.Feed{MaxClients: 100, Heartbeat: config.DefaultFeedHeartbeat, Queue: config.DefaultFeedQueue, CacheBytes: config.DefaultFeedCacheBytes}}
}

// ProjectorConfig is a projector on a free port, as user projector.
func ProjectorConfig(url string, replicas int) config.Projector {
	return config.Projector{Common: RoleCommon(url, natsx.RoleProjector, replicas), Listen: "127.0.0.1:0", Batch: 256, CacheBytes: 16 << 20}
}

// System is one command API, one query API and any number of projectors
// against one NATS URL.
type System struct {
	TB         testing.TB
	URL        string // NATS
	Replicas   int
	CommandAPI *app.Running
	QueryAPI   *app.Running
	Projectors []*app.Running
	Conn       *natsx.Conn
	Res        natsx.Resources
	Client     *http.Client
	JWKS       *authtest.JWKS // the keys the APIs trust (see auth.go)
}

// NewClient is an HTTP client for a test: enough idle connections per host
// that hundreds of concurrent requests do not churn through sockets.
func NewClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// Start provisions the stream, bucket and consumer with replicas as the
// admin (url's credentials: a natstest server's URL has the admin's), as
// the start-up of a cluster does, then runs the roles against url, each
// as its own NATS user (with n projectors), and waits until the query API
// is ready. Everything stops when the test ends.
func Start(tb testing.TB, url string, replicas, projectors int) *System {
	tb.Helper()
	s := &System{TB: tb, URL: url, Replicas: replicas, Client: &http.Client{Timeout: 30 * time.Second, Transport: newValidator(tb)}}
	s.serveKeys()
	s.Conn, s.Res = natstest.Connect(tb, url, replicas)
	for i := 0; i < projectors; i++ {
		s.StartProjector()
	}
	s.QueryAPI = s.StartQueryAPI(QueryConfig(url, replicas))
	s.CommandAPI = s.StartCommandAPI(CommandConfig(url, replicas))
	return s
}

// StartSingle starts an embedded JetStream server and a system on it.
func StartSingle(tb testing.TB, projectors int) (*natstest.Server, *System) {
	tb.Helper()
	srv := natstest.RunServer(tb)
	return srv, Start(tb, srv.URL(), 1, projectors)
}

// StartProjector adds a projector; Stop it to simulate a crash or pause.
func (s *System) StartProjector() *app.Running {
	s.TB.Helper()
	r, err := app.StartProjector(natstest.Context(s.TB), ProjectorConfig(s.URL, s.Replicas), Logger())
	if err != nil {
		s.TB.Fatal(err)
	}
	s.TB.Cleanup(func() { _ = r.Stop() })
	s.Projectors = append(s.Projectors, r)
	return r
}

// StartQueryAPI starts a query API and waits until it is ready.
func (s *System) StartQueryAPI(cfg config.QueryAPI) *app.Running {
	s.TB.Helper()
	cfg.Auth = s.withAuth(cfg.Auth)
	r, err := app.StartQueryAPI(natstest.Context(s.TB), cfg, Logger())
	if err != nil {
		s.TB.Fatal(err)
	}
	s.TB.Cleanup(func() { _ = r.Stop() })
	s.addHost(r.Addr)
	// Cleanups run last-in first-out: idle client connections are closed
	// before the server stops, so its graceful shutdown need not wait for them.
	s.TB.Cleanup(s.Client.CloseIdleConnections)
	WaitReady(s.TB, s.Client, Base(r))
	s.checkAgainstDocument(r.Addr)
	return r
}

// checkAgainstDocument makes the client check its exchanges with the API
// at addr against the document it serves, until the test ends.
func (s *System) checkAgainstDocument(addr string) {
	s.TB.Helper()
	v, ok := s.Client.Transport.(*validator)
	if !ok {
		return
	}
	v.load(addr)
	s.TB.Cleanup(func() { v.forget(addr) })
}

// StartCommandAPI starts a command API.
func (s *System) StartCommandAPI(cfg config.CommandAPI) *app.Running {
	s.TB.Helper()
	cfg.Auth = s.withAuth(cfg.Auth)
	if cfg.Web.PublicQueryURL == "" && s.QueryAPI != nil {
		cfg.Web.PublicQueryURL = s.Query()
	}
	r, err := app.StartCommandAPI(natstest.Context(s.TB), cfg, Logger())
	if err != nil {
		s.TB.Fatal(err)
	}
	s.TB.Cleanup(func() { _ = r.Stop() })
	s.addHost(r.Addr)
	s.TB.Cleanup(s.Client.CloseIdleConnections)
	s.checkAgainstDocument(r.Addr)
	return r
}

// Cmd is the base URL of the command API, Query of the query API.
func (s *System) Cmd() string   { return "http://" + s.CommandAPI.Addr }
func (s *System) Query() string { return "http://" + s.QueryAPI.Addr }

// Response is an HTTP answer read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it cannot.
func (r Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Seq is the X-Event-Seq of a write answer.
func (r Response) Seq() uint64 {
	n, _ := strconv.ParseUint(r.Header.Get("X-Event-Seq"), 10, 64)
	return n
}

// Do sends a request; headers come in pairs (name, value). A body that is a
// string or []byte is sent as is, anything else as JSON. Content-Type
// defaults to application/json when there is a body. A request to the
// APIs of a system of this kit carries an editor's token unless headers
// name an Authorization (As(token); Anonymous for none).
func (s *System) Do(method, url string, body any, headers ...string) Response {
	s.TB.Helper()
	r, err := Do(s.Client, method, url, body, headers...)
	if err != nil {
		s.TB.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// Do is System.Do for callers without a System; it returns errors.
func Do(c *http.Client, method, url string, body any, headers ...string) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	authorize(req, headers)
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// StreamMsgs counts the messages in stream ARTICLES.
func (s *System) StreamMsgs() uint64 {
	s.TB.Helper()
	info, err := s.Res.Stream.Info(natstest.Context(s.TB))
	if err != nil {
		s.TB.Fatal(err)
	}
	return info.State.Msgs
}

// Store is an event store on the system's connection.
func (s *System) Store() *natsx.EventStore {
	return natsx.NewEventStore(s.Conn.JS)
}

// WaitProjected waits until the projector consumer has acknowledged every
// message in the stream.
func (s *System) WaitProjected(timeout time.Duration) {
	s.TB.Helper()
	natstest.WaitFor(s.TB, timeout, func() error {
		last, err := s.LastSeq()
		if err != nil {
			return err
		}
		ci, err := s.ConsumerInfo()
		if err != nil {
			return err
		}
		if ci.AckFloor.Stream < last || ci.NumAckPending > 0 {
			return fmt.Errorf("projector at %d of %d (%d pending ack)", ci.AckFloor.Stream, last, ci.NumAckPending)
		}
		return nil
	})
}

// StreamEvents reads every event of the stream in order; a message that is
// not an event fails the test.
func (s *System) StreamEvents() []events.Stored {
	s.TB.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []events.Stored
	_, err := natsx.NewLog(s.Conn.JS).ReadAll(ctx, func(m events.Message) error {
		e, err := events.Decode(m.Data)
		if err != nil {
			return fmt.Errorf("seq %d: %w", m.Seq, err)
		}
		out = append(out, events.Stored{Seq: m.Seq, MsgID: m.MsgID, RequestHash: m.RequestHash, Event: e})
		return nil
	})
	if err != nil {
		s.TB.Fatalf("read the stream after %d events: %v", len(out), err)
	}
	return out
}

// History reads an article's whole history.
func (s *System) History(id string) events.History {
	s.TB.Helper()
	h, err := s.Store().History(natstest.Context(s.TB), id, 0)
	if err != nil {
		s.TB.Fatal(err)
	}
	return h
}

// Verify compares the read model with the fold of the stream.
func (s *System) Verify() projector.Report {
	s.TB.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := projector.Verify(ctx, natsx.NewLog(s.Conn.JS), s.Store(), s.Snapshots())
	if err != nil {
		s.TB.Fatal(err)
	}
	return rep
}

// Snapshots is the snapshot bucket on the system's connection.
func (s *System) Snapshots() *natsx.Snapshots { return natsx.NewSnapshots(s.Conn.JS, s.Res.KV) }

// AllSnapshots reads every snapshot in the bucket; an unreadable one fails the test.
func (s *System) AllSnapshots() map[string]readmodel.Snapshot {
	s.TB.Helper()
	entries, err := s.Snapshots().All(natstest.Context(s.TB))
	if err != nil {
		s.TB.Fatal(err)
	}
	out := make(map[string]readmodel.Snapshot, len(entries))
	for _, e := range entries {
		snap, _, err := readmodel.Decode(e.Value)
		if err != nil {
			s.TB.Errorf("snapshot %s unreadable: %v", e.Key, err)
			continue
		}
		out[e.Key] = snap
	}
	return out
}
