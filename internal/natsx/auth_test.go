package natsx_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// roleConn is a connection as one role, with its log, where the server's
// refusals arrive ("permissions violation for publish to ...").
type roleConn struct {
	*natsx.Conn
	log *cmdtest.SyncBuffer
}

func connectAs(tb testing.TB, url string, role natsx.Role) roleConn {
	tb.Helper()
	log := &cmdtest.SyncBuffer{}
	conn, err := natsx.Connect(natstest.Context(tb), natstest.RoleOptions(url, role, 1), slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		tb.Fatalf("connect as %s: %v", role, err)
	}
	tb.Cleanup(conn.NC.Close)
	return roleConn{conn, log}
}

// refused runs op, which must fail, and waits until the server has
// reported that it refused role a publish to subject.
func (c roleConn) refused(tb testing.TB, what, subject string, op func(ctx context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 750*time.Millisecond)
	defer cancel()
	if err := op(ctx); err == nil {
		tb.Fatalf("%s: succeeded", what)
	}
	natstest.WaitFor(tb, 5*time.Second, func() error {
		for line := range strings.Lines(c.log.String()) {
			if strings.Contains(strings.ToLower(line), "permissions violation for publish to") && strings.Contains(line, subject) {
				return nil
			}
		}
		return fmt.Errorf("%s: no permissions violation for %s reported:\n%s", what, subject, c.log.String())
	})
}

// purge purges stream ARTICLES.
func (c roleConn) purge(ctx context.Context) error {
	st, err := c.JS.Stream(ctx, natsx.Stream)
	if err != nil {
		return err
	}
	return st.Purge(ctx)
}

// TestEachUserMayDoItsJobAndNothingElse connects as each service's user
// to a server that lets in inkstream's users: the actions of its job
// succeed, through the same adapters the service uses, and the server
// refuses a representative set of the others. Nobody gets in anonymously.
func TestEachUserMayDoItsJobAndNothingElse(t *testing.T) {
	srv := natstest.RunServer(t)
	admin, res := natstest.Connect(t, srv.URL(), 1)
	ctx := natstest.Context(t)
	id := "0190d6a0-0000-7000-8000-000000000001"
	stream := func() uint64 {
		info, err := res.Stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	t.Run("anonymous", func(t *testing.T) {
		nc, err := nats.Connect(natstest.StripCredentials(srv.URL()))
		if err == nil {
			nc.Close()
			t.Fatal("an anonymous client connected")
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Fatalf("anonymous connect: %v, want an authorization violation", err)
		}
	})

	cmd := connectAs(t, srv.URL(), natsx.RoleCommandAPI)
	t.Run("command-api", func(t *testing.T) {
		es := natsx.NewEventStore(cmd.JS)
		seq, _, err := es.Append(ctx, event(id, 1, create("Hello")), 0, "m1", "")
		if err != nil {
			t.Fatalf("append an event: %v", err)
		}
		if m, err := es.Last(ctx, id); err != nil || m.Seq != seq {
			t.Fatalf("last event: %+v %v", m, err)
		}
		if m, err := es.Get(ctx, seq); err != nil || m.Seq != seq {
			t.Fatalf("get event: %+v %v", m, err)
		}
		if h, err := es.History(ctx, id, 0); err != nil || len(h.Events) != 1 {
			t.Fatalf("history: %+v %v", h, err)
		}
		if _, err := natsx.Lookup(ctx, cmd.JS, natstest.RoleOptions(srv.URL(), natsx.RoleCommandAPI, 1), false, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("look up: %v", err)
		}
		if err := natsx.Ready(ctx, cmd.JS); err != nil {
			t.Fatalf("ready: %v", err)
		}
		cmd.refused(t, "write the bucket", natsx.KeySubject(id), func(ctx context.Context) error {
			_, err := cmd.JS.Publish(ctx, natsx.KeySubject(id), []byte("{}"))
			return err
		})
		cmd.refused(t, "delete the stream", "$JS.API.STREAM.DELETE."+natsx.Stream, func(ctx context.Context) error {
			return cmd.JS.DeleteStream(ctx, natsx.Stream)
		})
		cmd.refused(t, "delete the consumer", "$JS.API.CONSUMER.DELETE."+natsx.Stream+"."+natsx.ConsumerName, func(ctx context.Context) error {
			return cmd.JS.DeleteConsumer(ctx, natsx.Stream, natsx.ConsumerName)
		})
	})

	proj := connectAs(t, srv.URL(), natsx.RoleProjector)
	t.Run("projector", func(t *testing.T) {
		got := make(chan events.Delivery, 1)
		cctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- natsx.NewConsumer(proj.JS, false, slog.New(slog.DiscardHandler)).Consume(cctx, 10, func(d events.Delivery) {
				d.Acker.Ack()
				select {
				case got <- d:
				default:
				}
			})
		}()
		select {
		case d := <-got:
			if d.Message.Subject != "articles."+id+".created" {
				t.Fatalf("consumed %s", d.Message.Subject)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the projector consumer delivered nothing:\n%s", proj.log)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		natstest.WaitFor(t, 5*time.Second, func() error {
			floor, err := natsx.NewLog(admin.JS).AckFloor(ctx)
			if err == nil && floor != stream() {
				err = fmt.Errorf("ack floor %d", floor)
			}
			return err
		})
		kv, err := proj.JS.KeyValue(ctx, natsx.Bucket)
		if err != nil {
			t.Fatalf("look up the bucket: %v", err)
		}
		snaps := natsx.NewSnapshots(proj.JS, kv)
		snap := readmodel.Snapshot{Article: domain.Article{ID: id, Fields: domain.Fields{Title: "Hello"}, Version: 1}, Seq: 1}
		rev, err := snaps.Put(ctx, snap, 0)
		if err != nil {
			t.Fatalf("put a snapshot: %v", err)
		}
		snap.Article.Title = "Hello again"
		if rev, err = snaps.PutAsync(ctx, snap, rev).Wait(ctx); err != nil {
			t.Fatalf("put a snapshot asynchronously: %v", err)
		}
		if e, err := snaps.Get(ctx, id); err != nil || e.Revision != rev {
			t.Fatalf("get a snapshot: %+v %v", e, err)
		}
		if m, err := snaps.GetMany(ctx, []string{id}); err != nil || m[id].Revision != rev {
			t.Fatalf("get snapshots in a batch: %+v %v", m, err)
		}
		if h, err := natsx.NewEventStore(proj.JS).History(ctx, id, 0); err != nil || len(h.Events) != 1 {
			t.Fatalf("history: %+v %v", h, err)
		}
		before := stream()
		proj.refused(t, "publish an event", "articles."+id+".updated", func(ctx context.Context) error {
			_, err := proj.JS.Publish(ctx, "articles."+id+".updated", []byte("{}"))
			return err
		})
		proj.refused(t, "create a consumer", "$JS.API.CONSUMER.CREATE."+natsx.Stream, func(ctx context.Context) error {
			_, err := proj.JS.CreateConsumer(ctx, natsx.Stream, natsx.ConsumerConfig())
			return err
		})
		if stream() != before {
			t.Fatal("the stream changed")
		}
	})

	query := connectAs(t, srv.URL(), natsx.RoleQueryAPI)
	t.Run("query-api", func(t *testing.T) {
		res, err := natsx.Lookup(ctx, query.JS, natstest.RoleOptions(srv.URL(), natsx.RoleQueryAPI, 1), true, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("look up: %v", err)
		}
		snaps := natsx.NewSnapshots(query.JS, res.KV)
		wctx, stop := context.WithCancel(ctx)
		seen := make(chan readmodel.Entry, 16)
		go func() { _ = snaps.Watch(wctx, func(e readmodel.Entry) { seen <- e }) }()
		select {
		case e := <-seen:
			if e.Key != id {
				t.Fatalf("watch: %+v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the bucket's watch delivered nothing:\n%s", query.log)
		}
		stop()
		if _, err := snaps.Get(ctx, id); err != nil {
			t.Fatalf("get a snapshot: %v", err)
		}
		if m, err := snaps.GetMany(ctx, []string{id}); err != nil || len(m) != 1 {
			t.Fatalf("get snapshots in a batch: %+v %v", m, err)
		}
		es := natsx.NewEventStore(query.JS)
		if h, err := es.History(ctx, id, 0); err != nil || len(h.Events) != 1 {
			t.Fatalf("history: %+v %v", h, err)
		}
		if _, err := es.Last(ctx, id); err != nil {
			t.Fatalf("last event: %v", err)
		}
		p := natsx.NewProgress(query.JS, res.KV)
		for name, f := range map[string]func(context.Context) (uint64, error){"last seq": p.LastSeq, "ack floor": p.AckFloor, "bucket seq": p.BucketLastSeq} {
			if n, err := f(ctx); err != nil || n == 0 {
				t.Fatalf("%s: %d %v", name, n, err)
			}
		}
		before := stream()
		query.refused(t, "publish an event", "articles."+id+".deleted", func(ctx context.Context) error {
			_, err := query.JS.Publish(ctx, "articles."+id+".deleted", []byte("{}"))
			return err
		})
		query.refused(t, "purge the stream", "$JS.API.STREAM.PURGE."+natsx.Stream, query.purge)
		query.refused(t, "write the bucket", natsx.KeySubject(id), func(ctx context.Context) error {
			_, err := snaps.Put(ctx, readmodel.Snapshot{Article: domain.Article{ID: id}}, 0)
			return err
		})
		query.refused(t, "pull from the projector consumer", "$JS.API.CONSUMER.MSG.NEXT."+natsx.Stream+"."+natsx.ConsumerName, func(ctx context.Context) error {
			cons, err := query.JS.Consumer(ctx, natsx.Stream, natsx.ConsumerName)
			if err != nil {
				return err
			}
			_, err = cons.Next(jetstream.FetchMaxWait(500 * time.Millisecond))
			return err
		})
		query.refused(t, "delete the projector consumer", "$JS.API.CONSUMER.DELETE."+natsx.Stream+"."+natsx.ConsumerName, func(ctx context.Context) error {
			return query.JS.DeleteConsumer(ctx, natsx.Stream, natsx.ConsumerName)
		})
		query.refused(t, "update the projector consumer", "$JS.API.CONSUMER.CREATE."+natsx.Stream+"."+natsx.ConsumerName, func(ctx context.Context) error {
			_, err := query.JS.CreateOrUpdateConsumer(ctx, natsx.Stream, jetstream.ConsumerConfig{Durable: natsx.ConsumerName, AckPolicy: jetstream.AckNonePolicy})
			return err
		})
		if stream() != before {
			t.Fatal("the stream changed")
		}
		// The live feed follows the stream with an ordered consumer.
		log := natsx.NewLog(query.JS)
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var got []uint64
		if err := log.Follow(fctx, 1, func(m events.Message) error {
			got = append(got, m.Seq)
			cancel()
			return nil
		}); err != nil || len(got) != 1 || got[0] != 1 {
			t.Fatalf("follow the stream: %v %v\n%s", got, err, query.log)
		}
	})

	// What the services were refused, the admin may do.
	if err := res.Stream.Purge(ctx); err != nil || stream() != 0 {
		t.Fatalf("admin purge: %v", err)
	}
}
