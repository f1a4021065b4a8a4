package systest_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/obs"
	"github.com/inkstream/inkstream/internal/projector"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// pausingSnapshots is the real snapshot store; its first asynchronous put
// stops the server (SIGSTOP) for a second, so every later put of the window
// meets a server that does not answer.
type pausingSnapshots struct {
	*natsx.Snapshots
	once  sync.Once
	pause func()
}

func (p *pausingSnapshots) PutAsync(ctx context.Context, snap readmodel.Snapshot, expect uint64) readmodel.Pending {
	p.once.Do(p.pause)
	return p.Snapshots.PutAsync(ctx, snap, expect)
}

// TestRebuildThroughAServerPause rebuilds 6 000 articles in one window, more
// than the connection lets be unanswered at once (4 096), while the server
// is stopped for a second as the window's writes begin: the rebuild waits
// for the server instead of failing with "too many outstanding async
// published messages", and writes every snapshot.
func TestRebuildThroughAServerPause(t *testing.T) {
	procs := natstest.RunProcs(t, 1)
	conn, res := natstest.Connect(t, procs.URL(), 1)
	ctx := natstest.Context(t)
	const n = 6000
	acks := make([]jetstream.PubAckFuture, n)
	for i := range acks {
		id := uuid.Must(uuid.NewV7()).String()
		evs, err := domain.Decide(domain.State{}, domain.CreateArticle{
			Meta:   domain.Meta{EventID: id, At: time.Now().UTC().Truncate(time.Microsecond)},
			ID:     id,
			Fields: domain.Fields{Title: fmt.Sprintf("Article %05d", i), Content: "body", AuthorID: "author"}.Normalize(id),
		})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := natsx.EventMsg(evs[0], 0, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if acks[i], err = conn.JS.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-conn.JS.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	resumed := make(chan struct{})
	snaps := &pausingSnapshots{Snapshots: natsx.NewSnapshots(conn.JS, res.KV), pause: func() {
		procs.Stall(t, 0)
		go func() {
			defer close(resumed)
			<-time.After(time.Second)
			procs.Resume(t, 0)
		}()
	}}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep, err := projector.Rebuild(rctx, natsx.NewLog(conn.JS), snaps, 1<<30, obs.NewSkips(prometheus.NewRegistry(), slog.New(slog.DiscardHandler)), nil)
	<-resumed
	if err != nil {
		t.Fatal(err)
	}
	if rep.Articles != n || rep.Windows != 1 {
		t.Fatalf("rebuild wrote %d snapshots in %d windows, want %d in 1", rep.Articles, rep.Windows, n)
	}
	keys, err := res.KV.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for range keys.Keys() {
		count++
	}
	if count != n {
		t.Fatalf("the bucket has %d keys, want %d", count, n)
	}
}
