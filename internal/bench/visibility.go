package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/valyala/fasthttp"
)

// Visibility is write → visible in the query API at a fixed write rate.
type Visibility struct {
	Rate        int     `json:"rate"`            // writes/s asked for
	Asked       bool    `json:"asked,omitempty"` // the rate came from -visibility-rate, not the PUT rate
	Achieved    float64 `json:"achieved_rate"`   // writes/s sent
	Writes      int64   `json:"writes"`          // PUTs answered 200
	WriteErrors int64   `json:"write_errors"`
	// Sampled is how many writes were followed by polls; Visible how many of
	// those the query API served: the latency runs from the PUT's response
	// to the first GET /api/articles/{id} whose ETag is that version or later.
	Sampled    int64   `json:"sampled"`
	Visible    int64   `json:"visible"`
	PollErrors int64   `json:"poll_errors"` // failed polls and articles never visible within the timeout
	Polls      int64   `json:"polls"`       // GETs sent in all
	Latency            // write → visible
	WriteP99   float64 `json:"write_p99_ms"` // POST latency at this rate
	// ReplaysOnMiss is how many reads the query API answered by replaying
	// the article from the stream (its view did not have it yet).
	ReplaysOnMiss int64 `json:"replays_on_miss"`
	// CatchUpMS is how long after the last write's response the projector
	// had acknowledged every write.
	CatchUpMS  float64          `json:"projector_catch_up_ms"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
}

// visibilityLoad POSTs articles to the command API at rate per second for
// duration (an open-loop, rate-limited generator: vegeta), and for each
// created article polls GET /api/articles/{id} on the query API back to
// back until it answers 200. Requests are bounded: rate × duration POSTs,
// and polls of one article stop after pollTimeout.
// visibilityLoad PUTs the seeded articles (which the query API's view
// holds) at rate per second for duration (an open-loop, rate-limited
// generator: vegeta); after every sample-th answered write it polls
// GET /api/articles/{id} on the query API, 1 ms apart, until the ETag shows
// that version: the time the projector and the view's KV watch take, since
// a read without a token is served from the view as it is. Requests are
// bounded: rate × duration PUTs, and polls of one write stop after
// pollTimeout.
type visibilityLoad struct {
	authz                  string // of the PUTs
	commandAddr, queryAddr string
	ids                    []string
	sample                 int
	rate                   int
	duration               time.Duration
	pollTimeout            time.Duration
	js                     jetstream.JetStream
	projector              *proc
}

// maxWriters bounds the POSTs in flight: past it the rate is not kept.
const maxWriters = 512

func (v visibilityLoad) run(ctx context.Context) (Visibility, error) {
	out := Visibility{Rate: v.rate}
	var n atomic.Int64
	hdr := http.Header{"Content-Type": []string{"application/json"}, "Authorization": []string{v.authz}}
	targeter := func(t *vegeta.Target) error {
		i := int(n.Add(1))
		t.Method, t.URL, t.Header = http.MethodPut, "http://"+v.commandAddr+"/api/articles/"+v.ids[i%len(v.ids)], hdr
		t.Body = articleBody(title("visibility", i), i)
		return nil
	}
	// Our own client, so its connections can be closed afterwards.
	tr := &http.Transport{MaxIdleConnsPerHost: maxWriters, MaxConnsPerHost: maxWriters}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}),
		vegeta.Workers(64),
		vegeta.MaxWorkers(maxWriters),
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()

	poller := clientFor(v.queryAddr, 1024)
	defer poller.CloseIdleConnections()
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		visible    []time.Duration
		pollErrs   int64
		polls      atomic.Int64
		writeLat   []time.Duration
		kinds      = errorKinds{}
		maxSeq     uint64
		lastWrite  time.Time
		first      time.Time
		last       time.Time
		writeErrs  int64
		writesSent int64
		sampled    int64
	)
	for res := range atk.Attack(vegeta.Targeter(targeter), vegeta.Rate{Freq: v.rate, Per: time.Second}, v.duration, "visibility") {
		writesSent++
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if res.Timestamp.After(last) {
			last = res.Timestamp
		}
		if res.Code != http.StatusOK {
			writeErrs++
			kind := "PUT " + statusKind(int(res.Code))
			if res.Code == 0 {
				kind = "PUT transport: " + res.Error
			}
			mu.Lock()
			kinds.add(kind)
			mu.Unlock()
			continue
		}
		end := res.End()
		writeLat = append(writeLat, res.Latency)
		if end.After(lastWrite) {
			lastWrite = end
		}
		if s, err := strconv.ParseUint(res.Headers.Get("X-Event-Seq"), 10, 64); err == nil && s > maxSeq {
			maxSeq = s
		}
		if len(writeLat)%max(v.sample, 1) != 0 {
			continue
		}
		loc := res.URL
		id := loc[strings.LastIndexByte(loc, '/')+1:]
		version, _ := strconv.Atoi(strings.Trim(res.Headers.Get("ETag"), `"`))
		sampled++
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, np, err := v.poll(ctx, poller, id, version, end)
			polls.Add(np)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				pollErrs++
				kinds.add(err.Error())
				return
			}
			visible = append(visible, d)
		}()
	}
	// Every POST has been answered: time the projector's catch-up while
	// the polls finish.
	var caught time.Time
	var catchErr error
	catchDone := make(chan struct{})
	go func() {
		defer close(catchDone)
		caught, _, catchErr = waitProjected(ctx, v.js, v.projector, maxSeq, 5*time.Millisecond, 2*time.Minute, func(int64) {})
	}()
	wg.Wait()
	<-catchDone
	if err := ctx.Err(); err != nil {
		return out, err
	}
	if catchErr != nil {
		return out, catchErr
	}
	out.CatchUpMS = max(ms(caught.Sub(lastWrite)), 0)
	out.Writes, out.WriteErrors = int64(len(writeLat)), writeErrs
	if writesSent > 1 && last.After(first) {
		out.Achieved = float64(writesSent-1) / last.Sub(first).Seconds()
	}
	out.Sampled, out.Visible, out.PollErrors, out.Polls = sampled, int64(len(visible)), pollErrs, polls.Load()
	out.Latency = latencyOf(visible)
	out.WriteP99 = latencyOf(writeLat).P99
	if len(kinds) > 0 {
		out.ErrorKinds = kinds
	}
	return out, nil
}

var errNeverVisible = errors.New("article not visible in the query API within the poll timeout")

// poll GETs the article until the query API serves version (or later) and
// returns the time from since to that answer and the number of GETs sent.
func (v visibilityLoad) poll(ctx context.Context, c *fasthttp.HostClient, id string, version int, since time.Time) (time.Duration, int64, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	url := "http://" + v.queryAddr + "/api/articles/" + id
	deadline := since.Add(v.pollTimeout)
	var n int64
	for ctx.Err() == nil {
		req.Reset()
		resp.Reset()
		req.SetRequestURI(url)
		n++
		err := c.Do(req, resp)
		now := time.Now()
		switch {
		case err != nil:
			return 0, n, fmt.Errorf("GET transport: %w", err)
		case resp.StatusCode() == http.StatusOK:
			if got, _ := strconv.Atoi(strings.Trim(string(resp.Header.Peek("ETag")), `"`)); got >= version {
				return now.Sub(since), n, nil
			}
		case resp.StatusCode() != http.StatusNotFound:
			return 0, n, errors.New("GET " + statusKind(resp.StatusCode()))
		}
		if now.After(deadline) {
			return 0, n, errNeverVisible
		}
		t := time.NewTimer(time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return 0, n, ctx.Err()
}

// rateSource says where the load's rate came from.
func (v Visibility) rateSource() string {
	if v.Asked {
		return "asked with -visibility-rate"
	}
	return "half the PUT rate"
}
