package systest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/inkstream/inkstream/pkg/domain"
)

// FeedEvent is one event of the live feed (GET /api/changes).
type FeedEvent struct {
	ID    uint64 // the SSE id: the stream sequence
	Event string // created, updated, deleted or erased
	Data  FeedData
	Raw   string // the data line as sent
}

// FeedData is the data of a feed event.
type FeedData struct {
	Seq     uint64          `json:"seq"`
	ID      string          `json:"id"`
	Version int             `json:"version"`
	Article *domain.Article `json:"article"`
}

// FeedClient reads the live feed of a query API.
type FeedClient struct {
	tb       testing.TB
	events   chan FeedEvent
	comments chan string
	done     chan error // the stream's end
	cancel   context.CancelFunc
	Status   int
	Header   http.Header
}

// OpenFeed connects to the live feed of the query API at base with the
// query string q (without "?"); headers come in pairs, as for Do (so the
// default editor token, unless As says otherwise). It fails the test
// unless the answer is a 200 event stream. Every event's data is checked
// against the Change schema of the document the API serves. Close it, or
// it closes when the test ends.
func (s *System) OpenFeed(base, q string, headers ...string) *FeedClient {
	s.TB.Helper()
	f, resp := s.openFeed(base, q, headers...)
	if f == nil {
		s.TB.Fatalf("GET %s/api/changes?%s: %d %s", base, q, resp.Status, resp.Body)
	}
	return f
}

// TryFeed is OpenFeed that returns the answer instead of failing when it
// is not a stream (a 400, a 503).
func (s *System) TryFeed(base, q string, headers ...string) (*FeedClient, Response) {
	s.TB.Helper()
	return s.openFeed(base, q, headers...)
}

func (s *System) openFeed(base, q string, headers ...string) (*FeedClient, Response) {
	s.TB.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/changes?"+q, nil)
	if err != nil {
		s.TB.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	authorize(req, headers)
	resp, err := (&http.Client{Transport: s.Client.Transport}).Do(req) // no timeout: a stream
	if err != nil {
		cancel()
		s.TB.Fatalf("GET %s: %v", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		defer cancel()
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return nil, Response{Status: resp.StatusCode, Header: resp.Header, Body: []byte(b.String())}
	}
	var change *openapi3.Schema
	if d := s.Document(base); d.Components != nil && d.Components.Schemas["Change"] != nil {
		change = d.Components.Schemas["Change"].Value
	}
	f := &FeedClient{tb: s.TB, events: make(chan FeedEvent, 10_000), comments: make(chan string, 1000), done: make(chan error, 1),
		cancel: cancel, Status: resp.StatusCode, Header: resp.Header}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev FeedEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event == "" && ev.Raw == "" {
					continue
				}
				if err := json.Unmarshal([]byte(ev.Raw), &ev.Data); err != nil {
					f.tb.Errorf("feed event %d: data %q: %v", ev.ID, ev.Raw, err)
				}
				if change != nil {
					var v any
					_ = json.Unmarshal([]byte(ev.Raw), &v)
					if err := change.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
						f.tb.Errorf("OpenAPI: feed event %d: data %s does not match the Change schema: %v", ev.ID, ev.Raw, err)
					}
				}
				f.events <- ev
				ev = FeedEvent{}
			case strings.HasPrefix(line, ":"):
				select {
				case f.comments <- line:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.ID, _ = strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Raw = strings.TrimPrefix(line, "data: ")
			default:
				f.tb.Errorf("feed: unexpected line %q", line)
			}
		}
		f.done <- sc.Err()
		close(f.events)
	}()
	s.TB.Cleanup(f.Close)
	return f, Response{Status: resp.StatusCode, Header: resp.Header}
}

// Close disconnects.
func (f *FeedClient) Close() { f.cancel() }

// Next returns the next event, failing the test if none comes within
// timeout or the stream ends.
func (f *FeedClient) Next(timeout time.Duration) FeedEvent {
	f.tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ev, ok := <-f.events:
		if !ok {
			f.tb.Fatalf("feed: the stream ended while an event was awaited")
		}
		return ev
	case <-t.C:
		f.tb.Fatalf("feed: no event within %v", timeout)
	}
	return FeedEvent{}
}

// Take returns the next n events.
func (f *FeedClient) Take(n int, timeout time.Duration) []FeedEvent {
	f.tb.Helper()
	out := make([]FeedEvent, 0, n)
	for len(out) < n {
		out = append(out, f.Next(timeout))
	}
	return out
}

// Quiet fails the test if an event comes within d.
func (f *FeedClient) Quiet(d time.Duration) {
	f.tb.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev, ok := <-f.events:
		if ok {
			f.tb.Fatalf("feed: unexpected event %d %s %s", ev.ID, ev.Event, ev.Raw)
		}
	case <-t.C:
	}
}

// Comment returns the next comment line, failing the test if none comes
// within timeout.
func (f *FeedClient) Comment(timeout time.Duration) string {
	f.tb.Helper()
	select {
	case c := <-f.comments:
		return c
	case <-time.After(timeout):
		f.tb.Fatalf("feed: no comment line within %v", timeout)
	}
	return ""
}

// Ended waits up to timeout for the server to end the stream, and
// reports whether it did.
func (f *FeedClient) Ended(timeout time.Duration) bool {
	f.tb.Helper()
	select {
	case <-f.done:
		return true
	case <-time.After(timeout):
		return false
	}
}
