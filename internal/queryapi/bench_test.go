package queryapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// BenchmarkGetArticleCached is the hot path: GET /api/articles/{id} of a
// published article the view holds, anonymous, through the Fiber app.
func BenchmarkGetArticleCached(b *testing.B) {
	h := fuzzService(b)
	var ctx fasthttp.RequestCtx
	uri := "/api/articles/0196b5c2-7d1e-7a3b-8c4d-000000000000"
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(http.MethodGet)
		ctx.Request.SetRequestURI(uri)
		h(&ctx)
		if ctx.Response.StatusCode() != http.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// viewWrites are the writes BenchmarkViewUpdate brings into a view: for
// each of versions rounds, one PUT of each of articles articles that
// changes its title (as inkbench's write → visible load does), as the
// event the stream holds and as the snapshot the projector writes for it.
type viewWrites struct {
	events []events.Message
	snaps  []readmodel.Entry
	index  []string // each snapshot's index header
}

func newViewWrites(b *testing.B, articles, versions int) viewWrites {
	b.Helper()
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	content := strings.Repeat("Event sourcing keeps every change as an immutable fact; the read side folds them. ", 12)
	var w viewWrites
	states := make([]domain.State, articles)
	for v := 1; v <= versions; v++ {
		for i := range articles {
			id := fmt.Sprintf("0196b5c2-7d1e-7a3b-8c4d-%012d", i)
			title := fmt.Sprintf("Benchmark visibility article %d", v*articles+i)
			var c domain.Change = domain.ArticleUpdated{Changes: domain.Changes{Title: &title, Slug: ptr(domain.Slugify(title))}}
			if v == 1 {
				c = domain.ArticleCreated{Fields: domain.Fields{Title: title, Slug: domain.Slugify(title), Content: content,
					AuthorID: "author-1", Status: domain.StatusPublished, Tags: []string{"bench", "nats", "go"}}}
			}
			e := domain.Event{ID: fmt.Sprintf("ev-%d-%d", i, v), ArticleID: id, Version: v, At: at.Add(time.Duration(len(w.events)) * time.Millisecond), Change: c}
			data, err := events.Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			seq := uint64(len(w.events) + 1)
			w.events = append(w.events, events.Message{Seq: seq, Subject: events.SubjectOf(e), Data: data})
			if states[i], err = domain.Apply(states[i], e); err != nil {
				b.Fatal(err)
			}
			snap := readmodel.FromState(states[i], seq)
			value, err := readmodel.Encode(snap)
			if err != nil {
				b.Fatal(err)
			}
			x, err := readmodel.EncodeIndex(readmodel.IndexOf(snap))
			if err != nil {
				b.Fatal(err)
			}
			w.snaps = append(w.snaps, readmodel.Entry{Key: id, Value: value, Revision: seq})
			w.index = append(w.index, x)
		}
	}
	return w
}

func ptr[T any](v T) *T { return &v }

// BenchmarkViewUpdate is the query API's own work to bring one write into
// its view, by source. bucket: the snapshot the projector wrote, as the
// watch hands it over (its index header decoded, its value decoded, the
// entry and body stored). stream: the event, as the hub hands it over
// (decoded, folded onto the article's state at the previous version, which
// the view keeps; the article encoded, the entry, body and state stored),
// plus the snapshot's message that still arrives from the bucket (its
// index header decoded, then left alone), both through the functions the
// watcher and the hub call. Both decode the snapshot's index header, as the
// bucket's watcher does for every message. The writes cycle through 1 000
// articles, 20 versions each (one create, then PUTs), in a fresh service
// per cycle, made with the timer stopped; the caches have the defaults'
// budgets, so every body and state fits. What it leaves out is the same
// for both or outside the query API: receiving the messages (the stream
// view receives two per write: the event and the snapshot), the
// projector's fold and KV put, and the trip through the server that the
// stream view saves (inkbench's write → visible measures that).
func BenchmarkViewUpdate(b *testing.B) {
	w := newViewWrites(b, 1000, 20)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	fresh := func(stream bool) *Service {
		return New(nil, nil, nil, nil, Options{Versions: 10, MinSeqWait: time.Second, ReadTimeout: time.Second, CacheBytes: 64 << 20, FoldStream: stream,
			Feed: FeedOptions{CacheBytes: 16 << 20}}, // the defaults
			prometheus.NewRegistry(), logger)
	}
	// visible fails unless the view shows write k: its entry and its body.
	visible := func(s *Service, k int) {
		m := w.events[k]
		id, _ := events.ArticleIDFromSubject(m.Subject)
		e := s.view.get(id)
		if e == nil || e.seq != m.Seq {
			b.Fatalf("write %d is not in the view: %+v", m.Seq, e)
		}
		if body, ok := s.bodies.Get(id); !ok || body.version != e.version {
			b.Fatalf("write %d is in the view without its body", m.Seq)
		}
	}
	snapshot := func(s *Service, k int) {
		e := w.snaps[k]
		x, err := readmodel.DecodeIndex(w.index[k])
		if err != nil {
			b.Fatal(err)
		}
		e.Index = &x
		if s.opts.FoldStream {
			s.backfill(e)
		} else {
			s.apply(e)
		}
	}
	b.Run("bucket", func(b *testing.B) {
		b.ReportAllocs()
		var s *Service
		for i := 0; i < b.N; i++ {
			k := i % len(w.snaps)
			if k == 0 {
				b.StopTimer()
				s = fresh(false)
				b.StartTimer()
			}
			snapshot(s, k)
		}
		visible(s, (b.N-1)%len(w.snaps))
	})
	b.Run("stream", func(b *testing.B) {
		b.ReportAllocs()
		var s *Service
		var fo *folder
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			k := i % len(w.events)
			if k == 0 {
				b.StopTimer()
				s = fresh(true)
				fo = &folder{shared: s.feed.shared, log: s.log}
				b.StartTimer()
			}
			m := w.events[k]
			if c, settled, err := s.feed.view(ctx, m, fo); err != nil || c == nil || !settled {
				b.Fatalf("fold %d: %v %v", m.Seq, err, settled)
			}
			snapshot(s, k)
		}
		visible(s, (b.N-1)%len(w.events))
	})
}
