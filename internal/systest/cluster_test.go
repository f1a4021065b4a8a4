package systest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

// clNodes is a cluster whose nodes a test can kill and start again.
type clNodes interface {
	URL() string
	NodeURL(i int) string
	Len() int
	Name(i int) string
	Kill(tb testing.TB, i int)
	Restart(tb testing.TB, i int)
}

// clInProcess is an in-process cluster; Kill is nats-server's Shutdown,
// which hands the leadership of every raft group the node leads over first.
type clInProcess struct{ *natstest.Cluster }

func (c clInProcess) Len() int             { return len(c.Nodes) }
func (c clInProcess) NodeURL(i int) string { return c.Nodes[i].URL() }
func (c clInProcess) Name(i int) string    { return c.Nodes[i].Name() }
func (c clInProcess) Kill(tb testing.TB, i int) {
	c.Nodes[i].Shutdown()
	c.Nodes[i].WaitForShutdown()
}

// clAck is one write answered with a 2xx.
type clAck struct {
	method  string
	marker  string // the content sent: unique per logical write
	article string
	version int
	seq     uint64
	done    time.Time // when the 2xx arrived
}

// clLoad counts what concurrent writers saw.
type clLoad struct {
	client  *http.Client
	cmd     string
	acked   atomic.Int64
	status5 atomic.Int64 // 503 answers
	reqErrs atomic.Int64 // transport errors (connection reset, timeout)
	retries atomic.Int64
	mu      sync.Mutex
	acks    []clAck
	failed  []string // writes that never got a 2xx, or got an unexpected answer
}

// send sends one logical write, retrying 503s and transport errors with the
// same Idempotency-Key (so a retry can never duplicate it), up to maxTries.
func (l *clLoad) send(tick *time.Ticker, method, path, marker string, body any) (clAck, bool) {
	const maxTries = 30
	for attempt := 0; attempt < maxTries; attempt++ {
		if attempt > 0 {
			l.retries.Add(1)
			<-tick.C
		}
		r, err := systest.Do(l.client, method, l.cmd+path, body, "Idempotency-Key", marker)
		if err != nil {
			l.reqErrs.Add(1)
			continue
		}
		switch {
		case r.Status == http.StatusServiceUnavailable:
			l.status5.Add(1)
			continue
		case r.Status/100 != 2:
			l.fail(fmt.Sprintf("%s %s (%s): %d %s", method, path, marker, r.Status, r.Body))
			return clAck{}, false
		}
		var a struct {
			ID      string `json:"id"`
			Version int    `json:"version"`
		}
		if err := json.Unmarshal(r.Body, &a); err != nil || a.ID == "" || r.Seq() == 0 {
			l.fail(fmt.Sprintf("%s %s (%s): bad 2xx answer %q seq %q: %v", method, path, marker, r.Body, r.Header.Get("X-Event-Seq"), err))
			return clAck{}, false
		}
		w := clAck{method: method, marker: marker, article: a.ID, version: a.Version, seq: r.Seq(), done: time.Now()}
		l.mu.Lock()
		l.acks = append(l.acks, w)
		l.mu.Unlock()
		l.acked.Add(1)
		return w, true
	}
	l.fail(fmt.Sprintf("%s %s (%s): no 2xx after %d tries", method, path, marker, maxTries))
	return clAck{}, false
}

// start runs n writers of perWriter writes each (see writer) until halt:
// halt(true) stops them, halt(false) lets them finish; either waits for them.
func (l *clLoad) start(tb testing.TB, n, perWriter int, pace time.Duration) (halt func(stop bool)) {
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.writer(w, perWriter, pace, stop)
		}()
	}
	halt = func(stopNow bool) {
		if stopNow {
			once.Do(func() { close(stop) })
		}
		wg.Wait()
	}
	tb.Cleanup(func() { halt(true) })
	return halt
}

func (l *clLoad) fail(s string) {
	l.mu.Lock()
	l.failed = append(l.failed, s)
	l.mu.Unlock()
}

// writer sends n writes: creates of its own articles and replacements of
// them (no two writers share an article, so every answer is predictable).
// A pace above zero spaces its writes at least that far apart.
func (l *clLoad) writer(w, n int, pace time.Duration, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var paced <-chan time.Time
	if pace > 0 {
		pt := time.NewTicker(pace)
		defer pt.Stop()
		paced = pt.C
	}
	var mine []string
	for i := 0; i < n; i++ {
		if paced != nil {
			select {
			case <-stop:
				return
			case <-paced:
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		marker := fmt.Sprintf("w%d-%04d", w, i)
		if len(mine) == 0 || i%4 == 0 {
			body := map[string]any{"title": "Article " + marker, "content": marker, "author_id": fmt.Sprintf("writer-%d", w), "tags": []string{"load"}}
			if a, ok := l.send(tick, http.MethodPost, "/api/articles", marker, body); ok {
				mine = append(mine, a.article)
			}
			continue
		}
		id := mine[rng.IntN(len(mine))]
		body := map[string]any{"title": "Updated " + marker, "content": marker, "author_id": fmt.Sprintf("writer-%d", w), "status": "published"}
		l.send(tick, http.MethodPut, "/api/articles/"+id, marker, body)
	}
}

// clContent is the content an event sets ("" when it leaves it alone).
func clContent(e domain.Event) string {
	switch c := e.Change.(type) {
	case domain.ArticleCreated:
		return c.Fields.Content
	case domain.ArticleUpdated:
		if c.Changes.Content != nil {
			return *c.Changes.Content
		}
	}
	return ""
}

// clCheckLog asserts the stream holds no duplicate: no two events with the
// same article and version, no message id twice, versions 1..n per article
// in stream order. It returns the events by sequence and the event count
// of each article.
func clCheckLog(tb testing.TB, evs []events.Stored) (map[uint64]events.Stored, map[string]int) {
	tb.Helper()
	bySeq := make(map[uint64]events.Stored, len(evs))
	msgIDs := make(map[string]uint64, len(evs))
	counts := make(map[string]int)
	for _, se := range evs {
		bySeq[se.Seq] = se
		if se.MsgID == "" {
			tb.Errorf("seq %d has no Nats-Msg-Id", se.Seq)
		} else if prev, dup := msgIDs[se.MsgID]; dup {
			tb.Errorf("Nats-Msg-Id %s at seq %d and %d", se.MsgID, prev, se.Seq)
		}
		msgIDs[se.MsgID] = se.Seq
		id := se.Event.ArticleID
		counts[id]++
		if se.Event.Version != counts[id] {
			tb.Errorf("article %s: event %d of the stream (seq %d) has version %d (a duplicate or a gap)", id, counts[id], se.Seq, se.Event.Version)
		}
	}
	return bySeq, counts
}

// clCheckSnapshots asserts that the bucket equals the fold of the stream and
// that every snapshot has applied each event of its article exactly once.
func clCheckSnapshots(tb testing.TB, s *systest.System, counts map[string]int) {
	tb.Helper()
	rep := s.Verify()
	for _, d := range rep.Differences {
		tb.Errorf("read model: %s", d)
	}
	if rep.Articles != len(counts) {
		tb.Errorf("verify folded %d articles, the stream has %d", rep.Articles, len(counts))
	}
	snaps := s.AllSnapshots()
	if len(snaps) != len(counts) {
		tb.Errorf("%d snapshots for %d articles", len(snaps), len(counts))
	}
	for id, c := range counts {
		if snap, ok := snaps[id]; !ok {
			tb.Errorf("article %s: no snapshot", id)
		} else if snap.Article.Version != c {
			tb.Errorf("article %s: snapshot at version %d, stream has %d events", id, snap.Article.Version, c)
		}
	}
}

// clLedStream is the info of stream name, or an error while it has no leader.
func clLedStream(js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	str, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := str.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", name)
	}
	return info, nil
}

// clLeader is the index in c.Nodes of the leader of stream name.
func clLeader(tb testing.TB, c clNodes, js jetstream.JetStream, name string) int {
	tb.Helper()
	idx := -1
	natstest.WaitFor(tb, 30*time.Second, func() error {
		info, err := clLedStream(js, name)
		if err != nil {
			return err
		}
		for i := 0; i < c.Len(); i++ {
			if c.Name(i) == info.Cluster.Leader {
				idx = i
				return nil
			}
		}
		return fmt.Errorf("stream %s leader %q is not a node of the cluster", name, info.Cluster.Leader)
	})
	return idx
}

// clGatherLeaders moves the leadership of the bucket's stream and of the
// projector consumer to the node that leads stream ARTICLES, so that
// killing that node takes every leader at once.
func clGatherLeaders(tb testing.TB, c clNodes, s *systest.System) {
	tb.Helper()
	js := s.Conn.JS
	natstest.WaitFor(tb, 30*time.Second, func() error {
		leader := c.Name(clLeader(tb, c, js, natsx.Stream))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req := []byte(`{"placement":{"preferred":"` + leader + `"}}`)
		if kv := c.Name(clLeader(tb, c, js, natsx.BucketStream)); kv != leader {
			_, _ = s.Conn.NC.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN.KV_"+natsx.Bucket, req)
			return fmt.Errorf("bucket led by %s, stream by %s", kv, leader)
		}
		ci, err := s.ConsumerInfo()
		if err != nil {
			return err
		}
		if cl := ci.Cluster; cl == nil || cl.Leader != leader {
			_, _ = s.Conn.NC.RequestWithContext(ctx, "$JS.API.CONSUMER.LEADER.STEPDOWN."+natsx.Stream+"."+natsx.ConsumerName, req)
			return fmt.Errorf("consumer not led by %s (%+v)", leader, cl)
		}
		return nil
	})
}

// clWaitCurrent waits until stream name has a leader and want
// current followers with no lag.
func clWaitCurrent(tb testing.TB, js jetstream.JetStream, name string, want int, timeout time.Duration) {
	tb.Helper()
	natstest.WaitFor(tb, timeout, func() error {
		info, err := clLedStream(js, name)
		if err != nil {
			return err
		}
		current := 0
		for _, p := range info.Cluster.Replicas {
			if p.Current && !p.Offline && p.Lag == 0 {
				current++
			}
		}
		if current < want {
			return fmt.Errorf("stream %s: %d of %d followers current (%+v)", name, current, want, info.Cluster.Replicas)
		}
		return nil
	})
}

// clAckFloor is the stream sequence up to which the projector consumer has
// acknowledged everything.
func clAckFloor(s *systest.System) (uint64, error) {
	info, err := s.ConsumerInfo()
	if err != nil {
		return 0, err
	}
	return info.AckFloor.Stream, nil
}

// TestClusterFailoverUnderLoad kills the node that leads stream ARTICLES
// (and, gathered there first, the bucket's stream and the projector
// consumer) in the middle of 2 000+ concurrent writes. Every acknowledged
// write must be in the stream exactly once, nothing may be written twice,
// the writers must resume once a new leader is elected, the killed node
// must catch up when it comes back, and the read model must equal the fold
// of the stream. It logs how long writes were unavailable.
//
// The node goes two ways. "shutdown": nats-server's Shutdown (in process)
// first steps down every raft group the node leads, handing leadership to
// a current follower: a clean stop or rolling restart. "crash": the nodes
// run in child processes and the leader's gets SIGKILL, so nothing is
// handed over and the followers elect a leader once they miss its
// heartbeats (raft election timeout, 4-9s in nats-server).
//
// Most of the time after the writes is the projector consumer's AckWait
// (10s): acks in flight to the consumer leader when it goes are lost, and
// those messages come back only then.
func TestClusterFailoverUnderLoad(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) { clFailover(t, clInProcess{natstest.RunCluster(t, 3)}) })
	t.Run("crash", func(t *testing.T) { clFailover(t, natstest.RunProcs(t, 3)) })
}

func clFailover(t *testing.T, c clNodes) {
	const (
		writers   = 8
		perWriter = 260 // 2 080 writes
		killAfter = 1000
	)
	s := systest.Start(t, c.URL(), 3, 0)
	clGatherLeaders(t, c, s)
	// The projector talks to the two other nodes only: its puts in flight
	// to the bucket's leader when it goes are lost, not failed by a
	// reconnect (the harder case).
	doomed := clLeader(t, c, s.Conn.JS, natsx.Stream)
	var others []string
	for i := 0; i < c.Len(); i++ {
		if i != doomed {
			others = append(others, c.NodeURL(i))
		}
	}
	proj, err := app.StartProjector(natstest.Context(t), systest.ProjectorConfig(strings.Join(others, ","), 3), systest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proj.Stop() })
	load := &clLoad{client: s.Client, cmd: s.Cmd()}
	start := time.Now()
	halt := load.start(t, writers, perWriter, 0)

	natstest.WaitFor(t, 60*time.Second, func() error {
		if n := load.acked.Load(); n < killAfter {
			return fmt.Errorf("%d of %d writes acknowledged before the kill", n, killAfter)
		}
		return nil
	})
	victim := clLeader(t, c, s.Conn.JS, natsx.Stream)
	if victim != doomed {
		t.Logf("stream leadership moved from %s to %s during the load", c.Name(doomed), c.Name(victim))
	}
	kvLeader := clLeader(t, c, s.Conn.JS, natsx.BucketStream)
	consLeader := "?"
	if ci, err := s.ConsumerInfo(); err == nil && ci.Cluster != nil {
		consLeader = ci.Cluster.Leader
	}
	ackedAtKill := load.acked.Load()
	killAt := time.Now()
	c.Kill(t, victim)
	killed := time.Now() // the node is gone: later answers come from a new leader
	t.Logf("killed %s, leader of the stream (bucket: %s, consumer: %s), after %d acknowledged writes, %v into the load; took %v",
		c.Name(victim), c.Name(kvLeader), consLeader, ackedAtKill, killAt.Sub(start).Round(time.Millisecond), time.Since(killAt).Round(time.Millisecond))
	newLeader := clLeader(t, c, s.Conn.JS, natsx.Stream)
	t.Logf("new stream leader %s, seen %v after the kill", c.Name(newLeader), time.Since(killAt).Round(time.Millisecond))

	halt(false)
	elapsed := time.Since(start)
	load.mu.Lock()
	acks := slices.Clone(load.acks)
	failed := slices.Clone(load.failed)
	load.mu.Unlock()
	t.Logf("%d writes acknowledged in %v; %d answers 503, %d request errors, %d retries",
		len(acks), elapsed.Round(time.Millisecond), load.status5.Load(), load.reqErrs.Load(), load.retries.Load())
	s.Run(t, "every write is acknowledged", func(t *testing.T) {
		for _, f := range failed {
			t.Errorf("write failed: %s", f)
		}
		if len(acks) < writers*perWriter-len(failed) {
			t.Errorf("%d writes acknowledged, want %d", len(acks), writers*perWriter-len(failed))
		}
	})

	s.Run(t, "writes resume after a leader election", func(t *testing.T) {
		// Unavailability: the largest gap between consecutive 2xx completions
		// from shortly before the kill on.
		slices.SortFunc(acks, func(a, b clAck) int { return a.done.Compare(b.done) })
		var gap time.Duration
		var gapFrom, gapTo time.Time
		after := 0
		for i := 1; i < len(acks); i++ {
			if acks[i].done.After(killed) {
				after++
			}
			if acks[i].done.Before(killAt.Add(-time.Second)) {
				continue
			}
			if d := acks[i].done.Sub(acks[i-1].done); d > gap {
				gap, gapFrom, gapTo = d, acks[i-1].done, acks[i].done
			}
		}
		t.Logf("longest write unavailability around the kill: %v (from %v to %v after the kill); %d writes acknowledged once the node was gone",
			gap.Round(time.Millisecond), gapFrom.Sub(killAt).Round(time.Millisecond), gapTo.Sub(killAt).Round(time.Millisecond), after)
		if after <= writers {
			// Up to one write per writer may have been answered on its way.
			t.Errorf("%d writes acknowledged once the node was gone: writers did not resume", after)
		}
		if gap > 20*time.Second {
			t.Errorf("writes were unavailable for %v; want at most a leader election", gap)
		}
	})

	s.Step(t, "the killed node catches up", func(t *testing.T) {
		c.Restart(t, victim)
		clWaitCurrent(t, s.Conn.JS, natsx.Stream, 2, 60*time.Second)
		clWaitCurrent(t, s.Conn.JS, natsx.BucketStream, 2, 60*time.Second)
		t.Logf("node %s restarted and current %v after the kill", c.Name(victim), time.Since(killAt).Round(time.Millisecond))
	})

	evs := s.StreamEvents()
	bySeq, counts := clCheckLog(t, evs)
	s.Run(t, "every acknowledged write is in the stream once", func(t *testing.T) {
		markers := make(map[string]int)
		for _, se := range evs {
			if m := clContent(se.Event); m != "" {
				markers[m]++
			}
		}
		for m, n := range markers {
			if n > 1 {
				t.Errorf("write %s is in the stream %d times", m, n)
			}
		}
		for _, a := range acks {
			se, ok := bySeq[a.seq]
			switch {
			case !ok:
				t.Errorf("%s %s acknowledged at seq %d: no such event", a.method, a.marker, a.seq)
			case se.Event.ArticleID != a.article || se.Event.Version != a.version:
				t.Errorf("%s %s acknowledged as %s v%d at seq %d; the stream has %s v%d there", a.method, a.marker, a.article, a.version, a.seq, se.Event.ArticleID, se.Event.Version)
			case clContent(se.Event) != a.marker:
				t.Errorf("%s %s acknowledged at seq %d; the event there wrote %q", a.method, a.marker, a.seq, clContent(se.Event))
			case markers[a.marker] != 1:
				t.Errorf("%s %s acknowledged; in the stream %d times", a.method, a.marker, markers[a.marker])
			}
		}
		t.Logf("stream: %d events of %d articles; %d distinct writes", len(evs), len(counts), len(markers))
	})

	s.Run(t, "the read model settles on the fold of the stream", func(t *testing.T) {
		s.WaitProjected(90 * time.Second)
		clCheckSnapshots(t, s, counts)
		t.Logf("read model verified %v after the kill", time.Since(killAt).Round(time.Millisecond))
	})
}

// TestClusterProjectorKilledMidStream stops projectors while events flow
// and starts others: the read model converges on the fold of the stream,
// every event applied exactly once (each snapshot's version is the number
// of events of its article). Stop is graceful and drains what the client
// has buffered; in a cluster a stopped instance can still leave a few
// messages unacknowledged (the consumer leader had them on the way when the
// subscription went), which the survivors get after AckWait: the path of a
// crash between delivery and ack.
func TestClusterProjectorKilledMidStream(t *testing.T) {
	_, s := systest.StartCluster(t, 1)
	p1 := s.Projectors[0]
	load := &clLoad{client: s.Client, cmd: s.Cmd()}
	halt := load.start(t, 4, 3000, 10*time.Millisecond)

	t0 := time.Now()
	phase := func(what string) {
		t.Helper()
		f, _ := clAckFloor(s)
		l, _ := s.LastSeq()
		t.Logf("%v: %s (ack floor %d, stream %d)", time.Since(t0).Round(time.Millisecond), what, f, l)
	}
	waitSeq := func(what string, f func(*systest.System) (uint64, error), want uint64) {
		t.Helper()
		natstest.WaitFor(t, 60*time.Second, func() error {
			n, err := f(s)
			if err != nil {
				return err
			}
			if n < want {
				return fmt.Errorf("%s at %d, want %d", what, n, want)
			}
			return nil
		})
	}
	// The first projector dies in the middle of the stream.
	waitSeq("projector ack floor", clAckFloor, 200)
	phase("stopping projector 1")
	if err := p1.Stop(); err != nil {
		t.Errorf("stop projector 1: %v", err)
	}
	stopped1 := s.StreamMsgs() // the last sequence: no message is ever removed
	// Events pile up with no projector; then two others take over.
	waitSeq("stream", (*systest.System).LastSeq, stopped1+150)
	phase("starting projectors 2 and 3")
	p2 := s.StartProjector()
	s.StartProjector()
	started := s.StreamMsgs()
	// One of them dies too, while the other keeps going.
	waitSeq("projector ack floor", clAckFloor, started+150)
	phase("stopping projector 2")
	if err := p2.Stop(); err != nil {
		t.Errorf("stop projector 2: %v", err)
	}
	stopped2 := s.StreamMsgs()
	waitSeq("stream", (*systest.System).LastSeq, stopped2+150)
	halt(true)
	phase("writers stopped")
	load.mu.Lock()
	for _, f := range load.failed {
		t.Errorf("write failed: %s", f)
	}
	load.mu.Unlock()

	// Anything the stopped instances left unacknowledged comes back after
	// AckWait (10s): allow for it.
	s.WaitProjected(90 * time.Second)
	phase("projected")
	evs := s.StreamEvents()
	_, counts := clCheckLog(t, evs)
	clCheckSnapshots(t, s, counts)
	t.Logf("%d events of %d articles; projector 1 stopped at seq %d, projector 2 at %d", len(evs), len(counts), stopped1, stopped2)
}

// TestClusterTwoQueryAPIsReadYourWrites writes through the command API and
// reads through two query API instances: the write becomes visible in both,
// and with the write's X-Min-Event-Seq neither ever serves an older state,
// from its view or, with the projector stopped, replayed from the stream.
func TestClusterTwoQueryAPIsReadYourWrites(t *testing.T) {
	c, s := systest.StartCluster(t, 1)
	queries := []string{
		systest.Base(s.StartQueryAPI(systest.QueryConfig(c.URL(), 3))),
		systest.Base(s.StartQueryAPI(systest.QueryConfig(c.URL(), 3))),
	}
	get := func(base, id string, headers ...string) (domain.Article, error) {
		r, err := systest.Do(s.Client, http.MethodGet, base+"/api/articles/"+id, nil, headers...)
		if err != nil {
			return domain.Article{}, err
		}
		if r.Status != http.StatusOK {
			return domain.Article{}, fmt.Errorf("GET %s from %s: %d %s", id, base, r.Status, r.Body)
		}
		var a domain.Article
		if err := json.Unmarshal(r.Body, &a); err != nil {
			return a, err
		}
		if etag := r.Header.Get("ETag"); etag != systest.ETag(a.Version) {
			return a, fmt.Errorf("GET %s from %s: ETag %s for version %d", id, base, etag, a.Version)
		}
		return a, nil
	}
	// waitAll waits until both instances serve every article at its version.
	waitAll := func(t *testing.T, ids []string, versions []int) {
		for _, base := range queries {
			for k, id := range ids {
				natstest.WaitFor(t, 10*time.Second, func() error {
					a, err := get(base, id)
					if err == nil && a.Version != versions[k] {
						err = fmt.Errorf("%s: version %d, want %d", base, a.Version, versions[k])
					}
					return err
				})
			}
		}
	}

	const nArticles = 3
	ids := make([]string, nArticles)
	versions := make([]int, nArticles)
	s.Step(t, "a write becomes visible in both without a token", func(t *testing.T) {
		for i := range ids {
			a, _ := s.Create(map[string]any{"title": fmt.Sprintf("Read your writes %d", i), "content": "v1", "author_id": "ryw"})
			ids[i], versions[i] = a.ID, 1
		}
		waitAll(t, ids, versions)
	})

	// rounds writes and reads each write back from both instances with its
	// token: neither may serve an older state.
	round := 0
	rounds := func(t *testing.T, iterations int) {
		exact := 0
		for i := 0; i < iterations; i++ {
			round++
			k := round % nArticles
			content := fmt.Sprintf("round %d", round)
			_, r := s.Write(http.MethodPut, ids[k], map[string]any{"title": fmt.Sprintf("Read your writes %d", k), "content": content, "author_id": "ryw"})
			versions[k]++
			if r.ETagVersion(t) != versions[k] {
				t.Fatalf("update %d: ETag %s, want version %d", round, r.Header.Get("ETag"), versions[k])
			}
			token := r.Header.Get("X-Event-Seq")
			for _, base := range queries {
				a, err := get(base, ids[k], "X-Min-Event-Seq", token)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if a.Version < versions[k] {
					t.Fatalf("round %d: %s served version %d of %s after the write of version %d (token %s)", round, base, a.Version, ids[k], versions[k], token)
				}
				if a.Version == versions[k] {
					exact++
					if a.Content != content {
						t.Fatalf("round %d: %s served version %d with content %q, want %q", round, base, a.Version, a.Content, content)
					}
				}
			}
		}
		if exact != 2*iterations {
			t.Errorf("%d of %d reads served a later version than the one written (no other writer runs)", 2*iterations-exact, 2*iterations)
		}
	}
	s.Step(t, "with the token never an older state", func(t *testing.T) { rounds(t, 150) })
	// Without a projector the query APIs replay the article from the
	// stream (after waiting briefly for their view): still never older.
	if err := s.Projectors[0].Stop(); err != nil {
		t.Errorf("stop projector: %v", err)
	}
	s.Step(t, "without a projector never an older state", func(t *testing.T) { rounds(t, 20) })
	s.StartProjector()
	s.Step(t, "without a token both catch up", func(t *testing.T) { waitAll(t, ids, versions) })
}
