package systest_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
)

// replicasOf reads how many replicas the stream, the bucket and the
// projector consumer have: the peers that hold each, leader included.
func replicasOf(tb testing.TB, s *systest.System) (stream, bucket, consumer int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	peers := func(what string, replicas int, err error) int {
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		return replicas
	}
	si, err := s.Res.Stream.Info(ctx)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	stream = peers("stream", si.Config.Replicas, err)
	kvs, err := s.Conn.JS.Stream(ctx, natsx.BucketStream)
	if err != nil {
		tb.Fatalf("bucket: %v", err)
	}
	ki, err := kvs.Info(ctx)
	bucket = peers("bucket", ki.Config.Replicas, err)
	cons, err := s.Conn.JS.Consumer(ctx, natsx.Stream, natsx.ConsumerName)
	if err == nil && cons.CachedInfo().Cluster == nil {
		err = fmt.Errorf("consumer %s has no cluster information", natsx.ConsumerName)
	}
	if err != nil {
		tb.Fatalf("consumer: %v", err)
	}
	consumer = len(cons.CachedInfo().Cluster.Replicas) + 1
	return stream, bucket, consumer
}

// TestNothingLowersTheReplicasOfACluster provisions stream, bucket and
// consumer at 3 replicas on a 3-node cluster, then runs, each with the
// default replica flags (1): verify, rebuild, provision, and every
// service. Each leaves all three at 3 replicas and logs a warning that
// names both numbers.
func TestNothingLowersTheReplicasOfACluster(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	s := systest.Start(t, c.URL(), 3, 1)
	a, _ := s.Create(systest.Body(1))
	s.WaitArticle(a.ID, 1)
	s.WaitProjected(30 * time.Second)
	ctx := natstest.Context(t)
	requireThree := func(after string) {
		t.Helper()
		if st, kv, cons := replicasOf(t, s); st != 3 || kv != 3 || cons != 3 {
			t.Fatalf("after %s: stream %d, bucket %d, consumer %d replicas; want 3, 3, 3", after, st, kv, cons)
		}
	}
	requireThree("provisioning")
	streamKept := regexp.MustCompile(`stream ARTICLES has 3 replicas[;,] -stream-replicas (is )?1`)
	bucketKept := regexp.MustCompile(`bucket articles has 3 replicas[;,] -kv-replicas (is )?1`)
	warned := func(what, log string) {
		t.Helper()
		if !streamKept.MatchString(log) || !bucketKept.MatchString(log) {
			t.Fatalf("%s logged no warning naming 3 and 1 replicas:\n%s", what, log)
		}
	}

	defaults := []string{"-nats-url", s.URL} // the admin's credentials, default replicas
	for _, cmd := range []struct {
		name string
		run  func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr *cmdtest.SyncBuffer) error
	}{
		{"verify", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr *cmdtest.SyncBuffer) error {
			return app.Verify(ctx, args, getenv, stdout, stderr)
		}},
		{"rebuild", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr *cmdtest.SyncBuffer) error {
			return app.Rebuild(ctx, args, getenv, stdout, stderr)
		}},
		{"provision", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr *cmdtest.SyncBuffer) error {
			return app.Provision(ctx, args, getenv, stdout, stderr)
		}},
	} {
		var out, log cmdtest.SyncBuffer
		if err := cmd.run(ctx, defaults, cmdtest.Env(), &out, &log); err != nil {
			t.Fatalf("%s: %v\n%s%s", cmd.name, err, out.String(), log.String())
		}
		warned(cmd.name, log.String())
		requireThree(cmd.name)
	}

	// Every service, as its own user, with the default replica flags.
	starts := map[string]func(*slog.Logger) (*app.Running, error){
		"command-api": func(l *slog.Logger) (*app.Running, error) {
			return app.StartCommandAPI(ctx, systest.CommandConfig(s.URL, 1), l)
		},
		"query-api": func(l *slog.Logger) (*app.Running, error) {
			return app.StartQueryAPI(ctx, systest.QueryConfig(s.URL, 1), l)
		},
		"projector": func(l *slog.Logger) (*app.Running, error) {
			return app.StartProjector(ctx, systest.ProjectorConfig(s.URL, 1), l)
		},
		// A projector with the admin's user and -provision, too.
		"projector -provision": func(l *slog.Logger) (*app.Running, error) {
			cfg := systest.ProjectorConfig(s.URL, 1)
			cfg.NATS = systest.Common(s.URL, 1).NATS
			return app.StartProjector(ctx, cfg, l)
		},
	}
	for name, start := range starts {
		var log cmdtest.SyncBuffer
		r, err := start(slog.New(slog.NewTextHandler(&log, nil)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { _ = r.Stop() })
		warned(name, log.String())
		requireThree(name)
	}
	if b, _ := s.Create(systest.Body(2)); !strings.HasPrefix(b.Title, "Title") {
		t.Fatalf("the system no longer writes: %+v", b)
	}
}
