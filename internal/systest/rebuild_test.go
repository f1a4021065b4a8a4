package systest_test

import (
	"bytes"
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
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// gtAppendMany creates n articles by publishing their ArticleCreated events
// the way the command API appends them (expected last subject sequence 0, a
// message id each), pipelined, and returns their ids: thousands of articles
// in a few seconds even under the race detector.
func gtAppendMany(tb testing.TB, s *systest.System, n int) []string {
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

// gtSignalWriter is a buffer that closes a channel once its text holds match.
type gtSignalWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	match  string
	signal chan struct{}
}

func (w *gtSignalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.signal != nil && strings.Contains(w.buf.String(), w.match) {
		close(w.signal)
		w.signal = nil
	}
	return n, err
}

func (w *gtSignalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// gtNoEnv keeps the admin commands from reading INKSTREAM_* of the test's environment.
func gtNoEnv(string) string { return "" }

// TestRebuildWhileServingReads rebuilds the read model of 5 000 articles
// from the stream while readers keep asking for articles and lists: no read
// fails, not even on a query API that starts cold while the bucket is
// empty. Verify then finds no difference, and finds a tampered and a
// missing snapshot by article id.
func TestRebuildWhileServingReads(t *testing.T) {
	s := gtStart(t, 1)
	ctx := natstest.Context(t)
	const n = 5000
	setup := time.Now()
	ids := gtAppendMany(t, s, n)
	t.Logf("created %d articles in %v", n, time.Since(setup))
	s.WaitProjected(45 * time.Second)
	t.Logf("projected after %v", time.Since(setup))
	natstest.WaitFor(t, 20*time.Second, func() error {
		// The query API's view has followed the bucket.
		if got := gtMetric(t, s, s.Query(), "inkstream_query_articles"); got != n {
			return fmt.Errorf("view holds %v articles, want %d", got, n)
		}
		return nil
	})
	kvBefore := gtKVState(t, s)
	lastSeq := s.StreamMsgs()

	// Readers: GET an article at random and, every few reads, a list, on
	// the system's query API and, once it is up, on one started cold.
	var cold atomic.Pointer[string]
	var reads, coldReads atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
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
				r, err := systest.Do(gtClient, http.MethodGet, url, nil)
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
				if err != nil {
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("GET %s: %v", url, err))
					failMu.Unlock()
				}
			}
		}()
	}
	stopReaders := func() {
		if stop != nil {
			close(stop)
			wg.Wait()
			stop = nil
		}
	}
	defer stopReaders()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if reads.Load() < 10 {
			return errors.New("readers have not started")
		}
		return nil
	})

	args := []string{"-nats-url", s.URL, "-log-level", "error"}
	purged := make(chan struct{})
	out := &gtSignalWriter{match: "bucket purged", signal: purged}
	var errOut gtSignalWriter
	readsBefore := reads.Load()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- app.Rebuild(ctx, args, gtNoEnv, out, &errOut) }()
	select {
	case <-purged:
		c := "http://" + s.StartQueryAPI(systest.QueryConfig(s.URL, 1)).Addr
		cold.Store(&c)
	case err := <-done:
		t.Fatalf("rebuild ended before it purged: %v\n%s%s", err, out, &errOut)
	}
	if err := <-done; err != nil {
		t.Fatalf("rebuild: %v\n%s%s", err, out, &errOut)
	}
	took := time.Since(start)
	readsDuring := reads.Load() - readsBefore
	stopReaders()
	t.Logf("rebuild of %d events took %v with %d reads meanwhile (%d on the cold query API):\n%s", lastSeq, took, readsDuring, coldReads.Load(), out)

	failMu.Lock()
	failed := failures
	failMu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d of %d reads failed during the rebuild, first: %s", len(failed), reads.Load(), failed[0])
	}
	if readsDuring == 0 {
		t.Fatal("no read ran during the rebuild")
	}
	progress := regexp.MustCompile(`rebuild: (\d+)/(\d+) \(100%\)`).FindStringSubmatch(out.String())
	if progress == nil || progress[1] != strconv.FormatUint(lastSeq, 10) || progress[2] != progress[1] ||
		!strings.Contains(out.String(), "bucket purged") || !strings.HasSuffix(out.String(), "rebuild: done\n") {
		t.Fatalf("rebuild printed no progress to %d and done:\n%s", lastSeq, out)
	}
	// Every snapshot was written anew after the purge.
	kvAfter := gtKVState(t, s)
	if kvAfter.Msgs != n || kvAfter.FirstSeq <= kvBefore.LastSeq {
		t.Fatalf("bucket before %+v, after %+v: want %d snapshots all written after the purge", kvBefore, kvAfter, n)
	}

	var vout, verr bytes.Buffer
	if err := app.Verify(ctx, args, gtNoEnv, &vout, &verr); err != nil {
		t.Fatalf("verify after rebuild: %v\n%s%s", err, &vout, &verr)
	}
	if want := fmt.Sprintf("verify: %d articles, 0 differences", n); !strings.Contains(vout.String(), want) {
		t.Fatalf("verify printed %q, want %q", &vout, want)
	}

	// Tamper with one snapshot and lose another: Verify names both.
	tampered, lost := ids[7], ids[4242]
	kve, err := s.Res.KV.Get(ctx, tampered)
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := readmodel.Decode(kve.Value())
	if err != nil {
		t.Fatal(err)
	}
	snap.Article.Title = "Tampered"
	b, err := readmodel.Encode(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Res.KV.Put(ctx, tampered, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Res.KV.Delete(ctx, lost); err != nil {
		t.Fatal(err)
	}
	vout.Reset()
	verr.Reset()
	err = app.Verify(ctx, args, gtNoEnv, &vout, &verr)
	if err == nil {
		t.Fatalf("verify passed a tampered read model:\n%s", &vout)
	}
	for _, want := range []string{"verify: " + tampered + ": differs", "verify: " + lost + ": missing", "2 differences"} {
		if !strings.Contains(vout.String(), want) {
			t.Fatalf("verify printed\n%s\nwithout %q", &vout, want)
		}
	}
}

// gtKVStateOf is the part of the bucket's stream state the rebuild test checks.
type gtKVStateOf struct{ Msgs, FirstSeq, LastSeq uint64 }

func gtKVState(tb testing.TB, s *systest.System) gtKVStateOf {
	tb.Helper()
	ctx := natstest.Context(tb)
	st, err := s.Conn.JS.Stream(ctx, "KV_"+natsx.Bucket)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return gtKVStateOf{Msgs: info.State.Msgs, FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq}
}
