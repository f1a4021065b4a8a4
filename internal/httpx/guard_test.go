package httpx

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// header parses a hand-written request head (lines joined with \n).
func header(tb testing.TB, head string) *fasthttp.RequestHeader {
	tb.Helper()
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(strings.NewReader(strings.ReplaceAll(head+"\n\n", "\n", "\r\n")))); err != nil {
		tb.Fatalf("parse %q: %v", head, err)
	}
	return &h
}

func TestKnownMethodsAreFibers(t *testing.T) {
	for _, m := range fiber.DefaultMethods {
		if !knownMethod([]byte(m)) {
			t.Errorf("Fiber routes %s, the guard refuses it", m)
		}
	}
	for _, m := range []string{"FOO", "get", "PROPFIND", "QUERY", ""} {
		if knownMethod([]byte(m)) {
			t.Errorf("Fiber does not route %q, the guard lets it through", m)
		}
	}
}

func TestScreen(t *testing.T) {
	post := "POST /api/articles HTTP/1.1\nHost: h\nContent-Type: application/json\n"
	for _, tc := range []struct {
		name, head string
		want       int
	}{
		{"GET", "GET /api/articles HTTP/1.1\nHost: h", 0},
		{"POST with a length", post + "Content-Length: 5", 0},
		{"chunked POST", post + "Transfer-Encoding: chunked", 0},
		{"the same length twice", post + "Content-Length: 5\ncontent-length: 5", 0},
		{"the same decimal value twice", post + "Content-Length: 5\nContent-Length: 005", 0},
		{"two lengths", post + "Content-Length: 5\nContent-Length: 6", http.StatusBadRequest},
		{"two lengths, any case", post + "content-length: 6\nCONTENT-LENGTH: 5", http.StatusBadRequest},
		{"three lengths, the odd one between", post + "Content-Length: 5\nContent-Length: 50\nContent-Length: 5", http.StatusBadRequest},
		{"length then chunked", post + "Content-Length: 5\nTransfer-Encoding: chunked", http.StatusBadRequest},
		{"chunked then length", post + "Transfer-Encoding: chunked\nContent-Length: 5", http.StatusBadRequest},
		{"length and identity", post + "Content-Length: 5\nTransfer-Encoding: identity", http.StatusBadRequest},
		{"GET with two lengths", "GET /api/articles HTTP/1.1\nHost: h\nContent-Length: 0\nContent-Length: 3", http.StatusBadRequest},
		{"chunked, any case", post + "Transfer-Encoding: Chunked", 0},
		{"chunked in two fields", post + "Transfer-Encoding: \nTransfer-Encoding: chunked", 0},
		{"a coding fasthttp would read as chunked", post + "Transfer-Encoding: xchunked", http.StatusBadRequest},
		{"chunked not last", post + "Transfer-Encoding: chunked, gzip", http.StatusBadRequest},
		{"chunked twice", post + "Transfer-Encoding: chunked\nTransfer-Encoding: chunked", http.StatusBadRequest},
		{"gzip then chunked", post + "Transfer-Encoding: gzip, chunked", http.StatusNotImplemented},
		{"HTTP/1.0 chunked", "POST /api/articles HTTP/1.0\nHost: h\nTransfer-Encoding: chunked", http.StatusBadRequest},
		{"unknown method", "FOO /api/articles HTTP/1.1\nHost: h", http.StatusNotImplemented},
		{"lower-case method", "get /api/articles HTTP/1.1\nHost: h", http.StatusNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := header(t, tc.head)
			if got, detail := screen(h); got != tc.want || (got != 0) != (detail != "") {
				t.Fatalf("screen: %d %q, want %d", got, detail, tc.want)
			}
			screenHeader(h)
			if tc.want != 0 && (!h.ConnectionClose() || h.ContentLength() != 0) {
				t.Fatalf("a refused request must read no body and close: Connection: close %v, Content-Length %d", h.ConnectionClose(), h.ContentLength())
			}
			if tc.want == 0 && h.ConnectionClose() {
				t.Fatal("a request that passes must keep its connection")
			}
			if got, _ := screen(h); got != tc.want {
				t.Fatalf("screened again after the hook: %d, want %d", got, tc.want)
			}
		})
	}
}

// BenchmarkScreen is what the guard adds to a request that passes: the
// HeaderReceived hook and the handler's look at Connection: close, for
// the head of a POST like inkbench's and of a GET.
func BenchmarkScreen(b *testing.B) {
	for _, tc := range []struct{ name, head string }{
		{"POST", "POST /api/articles HTTP/1.1\nHost: 127.0.0.1:8080\nUser-Agent: Go-http-client/1.1\nContent-Length: 1128\nContent-Type: application/json\nAccept-Encoding: gzip"},
		{"GET", "GET /api/articles/01a22fd7-0666-7d99-80ef-76de194585ea HTTP/1.1\nHost: 127.0.0.1:8081\nUser-Agent: Go-http-client/1.1\nAccept-Encoding: gzip"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := header(b, tc.head)
			b.ReportAllocs()
			for b.Loop() {
				screenHeader(h)
				if h.ConnectionClose() {
					b.Fatal("refused")
				}
			}
		})
	}
}
