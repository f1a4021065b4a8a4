package queryapi

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Samples of the progress are taken every sampleFast while reads have
// waited less than slowAfter, then every sampleSlow: a write's token is
// usually reached within milliseconds, and a read that waits longer costs
// few requests.
const (
	sampleFast = 5 * time.Millisecond
	sampleSlow = 50 * time.Millisecond
	slowAfter  = 100 * time.Millisecond
)

// The kinds of progress a read can wait for.
const (
	logEnd    = iota // the log's last sequence: was a token issued?
	modelDone        // the projectors' ack floor and the bucket's last write
	nKinds
)

// sample is what one round of requests found.
type sample struct {
	gen        uint64 // the round's number; rounds are numbered as they start
	lastSeq    uint64
	ackFloor   uint64
	bucketLast uint64
	err        error
}

// tracker samples the progress of the log and the read model for reads that
// wait for a token. One goroutine per process takes a sample while anyone
// waits, and every waiter reads it: waiting costs a bounded number of
// requests per process, not per request.
type tracker struct {
	src      Progress
	requests prometheus.Counter

	mu      sync.Mutex
	waiting [nKinds]int
	since   time.Time     // when reads began to wait
	started uint64        // number of the last round started
	last    sample        // the last round finished
	lastSeq uint64        // the highest log sequence seen
	next    chan struct{} // closed when a round finishes
	wake    chan struct{}
}

func newTracker(src Progress, reg prometheus.Registerer) *tracker {
	t := &tracker{src: src, next: make(chan struct{}), wake: make(chan struct{}, 1),
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inkstream_query_progress_requests_total",
			Help: "Requests to JetStream for the progress of the log and the read model (read-your-writes waits).",
		})}
	reg.MustRegister(t.requests)
	return t
}

// run takes samples while anyone waits, until ctx ends.
func (t *tracker) run(ctx context.Context) error {
	for {
		t.mu.Lock()
		for t.waiting[logEnd]+t.waiting[modelDone] == 0 {
			t.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil
			case <-t.wake:
			}
			t.mu.Lock()
		}
		t.started++
		s := sample{gen: t.started}
		every := sampleFast
		if time.Since(t.since) > slowAfter {
			every = sampleSlow
		}
		needLog, needModel := t.waiting[logEnd] > 0, t.waiting[modelDone] > 0
		t.mu.Unlock()

		rctx, cancel := context.WithTimeout(ctx, time.Second)
		if needLog && s.err == nil {
			t.requests.Inc()
			s.lastSeq, s.err = t.src.LastSeq(rctx)
		}
		if needModel && s.err == nil {
			// The ack floor first: every snapshot write of an event up to the
			// floor came before the bucket's last write read after it.
			t.requests.Inc()
			if s.ackFloor, s.err = t.src.AckFloor(rctx); s.err == nil {
				t.requests.Inc()
				s.bucketLast, s.err = t.src.BucketLastSeq(rctx)
			}
		}
		cancel()

		t.mu.Lock()
		t.last = s
		t.lastSeq = max(t.lastSeq, s.lastSeq)
		close(t.next)
		t.next = make(chan struct{})
		t.mu.Unlock()
		if !sleep(ctx, every) {
			return nil
		}
	}
}

// enter counts a read waiting for kind and wakes the sampler; the
// returned func leaves.
func (t *tracker) enter(kind int) (leave func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiting[logEnd]+t.waiting[modelDone] == 0 {
		t.since = time.Now()
	}
	t.waiting[kind]++
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return func() {
		t.mu.Lock()
		t.waiting[kind]--
		t.mu.Unlock()
	}
}

// after returns the first sample that started after the call (so it holds
// what the waiter, who entered before, waits for), or false when ctx ends.
func (t *tracker) after(ctx context.Context) (sample, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	arrival := t.started
	for t.last.gen <= arrival {
		next := t.next
		t.mu.Unlock()
		select {
		case <-next:
		case <-ctx.Done():
			t.mu.Lock()
			return sample{}, false
		}
		t.mu.Lock()
	}
	return t.last, true
}

// issued reports whether a write has had stream sequence token: whether the
// log has reached it.
func (t *tracker) issued(ctx context.Context, token uint64) (bool, error) {
	t.mu.Lock()
	known := t.lastSeq
	t.mu.Unlock()
	if token <= known {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	defer t.enter(logEnd)()
	s, ok := t.after(ctx)
	if !ok {
		return false, ctx.Err()
	}
	if s.err != nil {
		return false, s.err
	}
	return token <= s.lastSeq, nil
}

// reaches waits until the view holds every event up to token: the
// projectors have acknowledged everything up to it, and the view has
// applied every bucket write made before that. It gives up when ctx ends.
func (t *tracker) reaches(ctx context.Context, token uint64, v *view) bool {
	t.mu.Lock()
	s := t.last
	t.mu.Unlock()
	if s.err != nil || s.gen == 0 || s.ackFloor < token {
		defer t.enter(modelDone)()
	}
	for s.err != nil || s.gen == 0 || s.ackFloor < token {
		var ok bool
		if s, ok = t.after(ctx); !ok {
			return false
		}
	}
	for {
		rev, changed := v.revision()
		if rev >= s.bucketLast {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
