package systest_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/internal/systest"
)

// raw sends req, its lines joined with \n, as CRLF (systest.Raw).
func raw(tb testing.TB, addr, req string, wait time.Duration) systest.RawAnswer {
	tb.Helper()
	return systest.Raw(tb, addr, wait, []byte(strings.ReplaceAll(req, "\n", "\r\n")))
}

// TestHTTPFramingAndMethodsFollowTheRFCs sends hand-written HTTP/1.1
// requests to the write route of the command API and a read route of the
// query API. A request whose body length is ambiguous (two different
// Content-Length values, or Content-Length with Transfer-Encoding) is a
// 400 problem and the connection is closed, since what follows on it
// cannot be told apart from the body (RFC 9112 §6.3; a proxy that read the
// length the other way would smuggle a request through); so is a
// Transfer-Encoding that does not end in chunked, which fasthttp would read
// as chunked. A method the server does not know is a 501 problem (RFC 9110
// §9.1).
func TestHTTPFramingAndMethodsFollowTheRFCs(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, _ := s.Create(map[string]any{"title": "Raw", "content": "c", "author_id": "alice"})
	body := `{"title":"Smuggled","content":"c","author_id":"alice"}`
	for _, api := range []struct {
		name, addr, line string
		ok               int
	}{
		{"command API", s.CommandAPI.Addr, "POST /api/articles HTTP/1.1", http.StatusCreated},
		{"query API", s.QueryAPI.Addr, "GET /api/articles/" + a.ID + " HTTP/1.1", http.StatusOK},
	} {
		head := api.line + "\nHost: " + api.addr + "\nAuthorization: Bearer " + s.EditorToken() + "\nContent-Type: application/json\n"
		t.Run(api.name, func(t *testing.T) {
			// The hand-written requests are sound: a well-framed one is answered and the connection kept.
			if r := raw(t, api.addr, head+"Content-Length: 54\n\n"+body, 200*time.Millisecond); r.Status != api.ok || r.Closed {
				t.Fatalf("well-framed request: %d (closed %v) %s, want %d on an open connection", r.Status, r.Closed, r.Body, api.ok)
			}
			for _, tc := range []struct{ name, headers string }{
				{"two Content-Length values", "Content-Length: 54\nContent-Length: 2\n"},
				{"two Content-Length values, the longer last", "content-length: 2\nCONTENT-LENGTH: 54\n"},
				{"Content-Length then Transfer-Encoding", "Content-Length: 54\nTransfer-Encoding: chunked\n"},
				{"Transfer-Encoding then Content-Length", "Transfer-Encoding: chunked\nContent-Length: 54\n"},
				{"Content-Length and Transfer-Encoding identity", "Content-Length: 54\nTransfer-Encoding: identity\n"},
				{"a Transfer-Encoding read as chunked", "Transfer-Encoding: xchunked\n"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := raw(t, api.addr, head+tc.headers+"\n"+body, 10*time.Second)
					r.RequireProblem(t, http.StatusBadRequest, "")
					if !r.Closed || !r.CloseAsked {
						t.Fatalf("connection closed %v, Connection: close %v; want both", r.Closed, r.CloseAsked)
					}
				})
			}
			for _, m := range []string{"FOO", "get", "PROPFIND"} {
				t.Run("method "+m, func(t *testing.T) {
					line := m + strings.TrimPrefix(strings.TrimPrefix(api.line, "POST"), "GET")
					r := raw(t, api.addr, line+"\nHost: "+api.addr+"\nContent-Length: 54\n\n"+body, 10*time.Second)
					r.RequireProblem(t, http.StatusNotImplemented, "")
				})
			}
		})
	}
	if n := s.StreamMsgs(); n != 2 {
		t.Fatalf("the stream holds %d events, want 2: the article and the one well-framed POST", n)
	}
}

// TestOversizedBodyIsA413AnyClientReads posts 2 MiB and 8 MiB, two and
// eight times the body limit, with and without a Content-Length, with a
// plain net/http client, which writes the whole body while it reads: it
// gets the 413 problem, not a connection reset. (A server that closes at
// once with the body unread resets the connection, and the client's write
// fails, often before it has taken the answer: most of the 8 MiB posts.)
func TestOversizedBodyIsA413AnyClientReads(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	for _, size := range []int{2 << 20, 8 << 20} {
		big := bytes.Repeat([]byte("x"), size)
		for i := range 10 {
			chunked := i%2 == 1
			var rd io.Reader = bytes.NewReader(big)
			if chunked {
				rd = io.MultiReader(rd) // no length known: Transfer-Encoding chunked
			}
			c := &http.Client{Timeout: 30 * time.Second}
			resp, err := c.Post(s.Cmd()+"/api/articles", "application/json", rd)
			if err != nil {
				t.Fatalf("POST %d of %d MiB (chunked %v): %v", i, size>>20, chunked, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("POST %d of %d MiB (chunked %v): read answer: %v", i, size>>20, chunked, err)
			}
			systest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}.RequireProblem(t, http.StatusRequestEntityTooLarge, "")
			c.CloseIdleConnections()
		}
	}
	if n := s.StreamMsgs(); n != 0 {
		t.Fatalf("oversized bodies wrote %d events", n)
	}
}
