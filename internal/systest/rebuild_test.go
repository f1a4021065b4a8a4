package systest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// appendMany creates n articles by publishing their ArticleCreated events
// the way the command API appends them (expected last subject sequence 0, a
// message id each), pipelined, and returns their ids: thousands of articles
// in a few seconds even under the race detector.
func appendMany(tb testing.TB, s *systest.System, n int) []string {
	tb.Helper()
	ctx := natstest.Context(tb)
	ids := make([]string, n)
	acks := make([]jetstream.PubAckFuture, n)
	for i := range n {
		id, evID := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
		evs, err := domain.Decide(domain.State{}, domain.CreateArticle{
			Meta:   domain.Meta{EventID: evID, At: time.Now().UTC().Truncate(time.Microsecond)},
			ID:     id,
			Fields: domain.Fields{Title: fmt.Sprintf("Article %05d", i), Content: "body", AuthorID: fmt.Sprintf("author-%d", i%7)}.Normalize(id),
		})
		if err != nil {
			tb.Fatal(err)
		}
		msg, err := natsx.EventMsg(evs[0], 0, evID, "")
		if err != nil {
			tb.Fatal(err)
		}
		if acks[i], err = s.Conn.JS.PublishMsgAsync(msg); err != nil {
			tb.Fatal(err)
		}
		ids[i] = id
	}
	for i, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			tb.Fatalf("publish %d: %v", i, err)
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		case <-time.After(30 * time.Second):
			tb.Fatalf("publish %d: no ack", i)
		}
	}
	return ids
}

// TestRebuildWhileServingReads rebuilds the read model of 5 000 articles
// from the stream while readers keep asking for articles and lists: no read
// fails, not even on a query API that starts cold while the bucket is
// empty. Verify then finds no difference, and finds a tampered and a
// missing snapshot by article id.
func TestRebuildWhileServingReads(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	const n = 5000
	setup := time.Now()
	ids := appendMany(t, s, n)
	t.Logf("created %d articles in %v", n, time.Since(setup))
	s.WaitProjected(45 * time.Second)
	t.Logf("projected after %v", time.Since(setup))
	natstest.WaitFor(t, 20*time.Second, func() error {
		// The query API's view has followed the bucket.
		if got := s.Metric(s.Query(), "inkstream_query_articles"); got != n {
			return fmt.Errorf("view holds %v articles, want %d", got, n)
		}
		return nil
	})

	s.Step(t, "rebuild while serving reads", func(t *testing.T) {
		kvBefore := bucketState(t, s)
		lastSeq := s.StreamMsgs()
		var cold atomic.Pointer[string]
		var reads, coldReads atomic.Int64
		var failed atomic.Int64
		var firstFailure atomic.Pointer[string]
		stop := make(chan struct{})
		var wg sync.WaitGroup
		stopReaders := sync.OnceFunc(func() { close(stop); wg.Wait() })
		defer stopReaders()
		// Readers: GET an article at random and, every few reads, a list, on
		// the system's query API and, once it is up, on one started cold.
		for reader := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(reader), 1))
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					base := s.Query()
					if c := cold.Load(); c != nil && k%2 == 1 {
						base = *c
						coldReads.Add(1)
					}
					id := ids[rnd.IntN(n)]
					url := base + "/api/articles/" + id
					if k%5 == 4 {
						url = base + "/api/articles?limit=" + strconv.Itoa(1+rnd.IntN(100))
					}
					r, err := systest.Do(s.Client, http.MethodGet, url, nil)
					if err == nil && r.Status != http.StatusOK {
						err = fmt.Errorf("%d %s", r.Status, r.Body)
					}
					if err == nil && k%5 != 4 {
						var a domain.Article
						if err = json.Unmarshal(r.Body, &a); err == nil && (a.ID != id || a.Version != 1) {
							err = fmt.Errorf("answered %s", r.Body)
						}
					}
					reads.Add(1)
					if err != nil && failed.Add(1) == 1 {
						f := fmt.Sprintf("GET %s: %v", url, err)
						firstFailure.Store(&f)
					}
				}
			}()
		}
		natstest.WaitFor(t, 10*time.Second, func() error {
			if reads.Load() < 10 {
				return errors.New("readers have not started")
			}
			return nil
		})

		var out, errOut cmdtest.SyncBuffer
		readsBefore := reads.Load()
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			done <- app.Rebuild(natstest.Context(t), []string{"-nats-url", s.URL, "-log-level", "error"}, cmdtest.Env(), &out, &errOut)
		}()
		natstest.WaitFor(t, 60*time.Second, func() error {
			if strings.Contains(out.String(), "bucket purged") {
				return nil
			}
			select {
			case err := <-done:
				t.Fatalf("rebuild ended before it purged: %v\n%s%s", err, out.String(), errOut.String())
			default:
			}
			return errors.New("the bucket is not purged yet")
		})
		c := systest.Base(s.StartQueryAPI(systest.QueryConfig(s.URL, 1)))
		cold.Store(&c)
		if err := <-done; err != nil {
			t.Fatalf("rebuild: %v\n%s%s", err, out.String(), errOut.String())
		}
		took := time.Since(start)
		readsDuring := reads.Load() - readsBefore
		stopReaders()
		t.Logf("rebuild of %d events took %v with %d reads meanwhile (%d on the cold query API):\n%s", lastSeq, took, readsDuring, coldReads.Load(), out.String())

		if n := failed.Load(); n > 0 {
			t.Fatalf("%d of %d reads failed during the rebuild, first: %s", n, reads.Load(), *firstFailure.Load())
		}
		if readsDuring == 0 {
			t.Fatal("no read ran during the rebuild")
		}
		progress := regexp.MustCompile(`rebuild: (\d+)/(\d+) \(100%\)`).FindStringSubmatch(out.String())
		if progress == nil || progress[1] != strconv.FormatUint(lastSeq, 10) || progress[2] != progress[1] ||
			!strings.HasSuffix(out.String(), "rebuild: done\n") {
			t.Fatalf("rebuild printed no progress to %d and done:\n%s", lastSeq, out.String())
		}
		// Every snapshot was written anew after the purge.
		if kvAfter := bucketState(t, s); kvAfter.Msgs != n || kvAfter.FirstSeq <= kvBefore.LastSeq {
			t.Fatalf("bucket before: seq %d to %d; after: %d snapshots, seq %d to %d; want %d snapshots all written after the purge",
				kvBefore.FirstSeq, kvBefore.LastSeq, kvAfter.Msgs, kvAfter.FirstSeq, kvAfter.LastSeq, n)
		}
	})

	s.Step(t, "verify finds no difference", func(t *testing.T) {
		out, err := s.VerifyCLI("-log-level", "error")
		if err != nil {
			t.Fatalf("verify after rebuild: %v\n%s", err, out)
		}
		if want := fmt.Sprintf("verify: %d articles, 0 differences", n); !strings.Contains(out, want) {
			t.Fatalf("verify printed %q, want %q", out, want)
		}
	})

	s.Step(t, "verify names a tampered and a missing snapshot", func(t *testing.T) {
		tampered, lost := ids[7], ids[4242]
		snap, _ := s.Snapshot(tampered)
		snap.Article.Title = "Tampered"
		s.PutSnapshot(snap)
		if err := s.Res.KV.Delete(natstest.Context(t), lost); err != nil {
			t.Fatal(err)
		}
		out, err := s.VerifyCLI("-log-level", "error")
		if err == nil {
			t.Fatalf("verify passed a tampered read model:\n%s", out)
		}
		for _, want := range []string{"verify: " + tampered + ": differs", "verify: " + lost + ": missing", "2 differences"} {
			if !strings.Contains(out, want) {
				t.Fatalf("verify printed\n%s\nwithout %q", out, want)
			}
		}
	})
}

// bucketState is the state of the bucket's stream.
func bucketState(tb testing.TB, s *systest.System) jetstream.StreamState {
	tb.Helper()
	st, err := s.Res.KV.Status(natstest.Context(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return st.(*jetstream.KeyValueBucketStatus).StreamInfo().State
}
