package httpx

import (
	"bytes"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"
)

// What fasthttp v1.51 and Fiber v2.52 leave to the application of RFC 9110
// and RFC 9112, and how a refused request is answered so that any client
// can read the answer:
//
//   - fasthttp takes the last of several Content-Length values, lets
//     Transfer-Encoding win over Content-Length, and reads any
//     Transfer-Encoding but identity as chunked. Each makes the end of the
//     body ambiguous: a proxy in front that read it the other way would
//     pass the rest off as a request of its own (request smuggling). Such a
//     request is a 400 and the connection is closed (RFC 9112 §6.1, §6.3);
//     a transfer coding besides chunked is a 501.
//   - Fiber answers a method it does not know with a text/plain 400. It is
//     a 501 problem (RFC 9110 §9.1).
//   - fasthttp answers a body over the limit, and any request it cannot
//     parse, and closes the connection without reading the rest of the
//     request. Closing a socket with unread data makes the kernel reset the
//     connection, and a client still sending its body (Go's net/http does)
//     then loses the answer. The connection is closed in stages instead
//     (RFC 9112 §9.6): the answer, then a half-close, then what the client
//     still sends is read and discarded, within bounds.
//
// fasthttp's HeaderReceived hook screens every request once its header is
// read, before its body is: a refused one gets no body read and is marked
// Connection: close; the handler in front of Fiber answers the marked ones.
// Requests that pass cost one look at the method and, for those that have
// a body, one pass over the raw header lines.

const (
	// lingerTime bounds how long a closing connection is drained.
	lingerTime = 5 * time.Second
	// lingerIdle ends the draining once the client has sent nothing for it.
	lingerIdle = time.Second
	// lingerBodies times the body limit is the most a closing connection
	// drains; a client that sends more is reset.
	lingerBodies = 16
)

// guard installs the screening on app's server: it must run before the
// server starts.
func guard(app *fiber.App) {
	srv := app.Server()
	srv.HeaderReceived = screenHeader
	route := srv.Handler
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		// Only a request that asks for Connection: close can have been refused.
		if ctx.Request.Header.ConnectionClose() {
			if status, detail := screen(&ctx.Request.Header); status != 0 {
				lingerOnClose(ctx)
				setRequestID(ctx)
				c := app.AcquireCtx(ctx)
				defer app.ReleaseCtx(c)
				_ = WriteProblem(c, NewProblem(status, detail))
				return
			}
		}
		route(ctx)
	}
	answerError := srv.ErrorHandler
	srv.ErrorHandler = func(ctx *fasthttp.RequestCtx, err error) {
		// fasthttp closes the connection after this answer, often with
		// the rest of the request unread.
		lingerOnClose(ctx)
		setRequestID(ctx)
		answerError(ctx, err)
	}
}

// setRequestID gives an answer that Fiber's handlers do not make its
// X-Request-Id, as the requestid middleware does for the others.
func setRequestID(ctx *fasthttp.RequestCtx) {
	id := ctx.Request.Header.Peek(fiber.HeaderXRequestID)
	if len(id) == 0 || !saneRequestID(id) {
		ctx.Response.Header.Set(fiber.HeaderXRequestID, utils.UUID())
		return
	}
	ctx.Response.Header.SetBytesV(fiber.HeaderXRequestID, id)
}

// screenHeader is the server's HeaderReceived hook: a request that screen
// refuses has none of its body read and its connection closes after the
// answer.
func screenHeader(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if status, _ := screen(h); status != 0 {
		h.SetContentLength(0)
		h.Del(fasthttp.HeaderExpect) // no 100 Continue: the body is not wanted
		h.SetConnectionClose()
	}
	return fasthttp.RequestConfig{} // the server's own limits
}

// screen returns the status and detail of the problem that answers a
// request before its body is read, or 0 when it may go on.
func screen(h *fasthttp.RequestHeader) (status int, detail string) {
	if !knownMethod(h.Method()) {
		return http.StatusNotImplemented, "this server does not implement the request's method"
	}
	if h.ContentLength() == -2 {
		return 0, "" // neither Content-Length nor Transfer-Encoding: no body
	}
	var lengths, transferEncodings, chunked int
	var length int64
	conflict, lastChunked, otherCoding := false, false, false
	h.VisitAllInOrder(func(k, v []byte) {
		switch {
		case bytes.EqualFold(k, headerContentLength):
			n, ok := parseLength(v)
			conflict = conflict || !ok || lengths > 0 && n != length
			length = n
			lengths++
		case bytes.EqualFold(k, headerTransferEncoding):
			transferEncodings++
			for len(v) > 0 {
				var coding []byte
				coding, v, _ = bytes.Cut(v, comma)
				if coding = bytes.TrimSpace(coding); len(coding) > 0 {
					lastChunked = bytes.EqualFold(coding, codingChunked)
					if lastChunked {
						chunked++
					} else {
						otherCoding = true
					}
				}
			}
		}
	})
	switch {
	case lengths > 0 && transferEncodings > 0:
		return http.StatusBadRequest, "the request has both Content-Length and Transfer-Encoding, so where its body ends is ambiguous (RFC 9112 §6.3)"
	case conflict:
		return http.StatusBadRequest, "the request has Content-Length values that differ, so where its body ends is ambiguous (RFC 9112 §6.3)"
	case transferEncodings > 0 && !h.IsHTTP11():
		return http.StatusBadRequest, "an HTTP/1.0 request cannot have a Transfer-Encoding (RFC 9112 §6.1)"
	case transferEncodings > 0 && (!lastChunked || chunked > 1):
		return http.StatusBadRequest, "the request's Transfer-Encoding does not end in chunked, once, so where its body ends is unknown (RFC 9112 §6.3)"
	case otherCoding:
		return http.StatusNotImplemented, "this server implements no transfer coding but chunked"
	}
	return 0, ""
}

var (
	headerContentLength    = []byte(fasthttp.HeaderContentLength)
	headerTransferEncoding = []byte(fasthttp.HeaderTransferEncoding)
	codingChunked          = []byte("chunked")
	comma                  = []byte(",")
)

// parseLength reads a Content-Length value: digits only (RFC 9110 §8.6).
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// knownMethod reports whether Fiber routes method: its DefaultMethods,
// which are RFC 9110's and PATCH.
func knownMethod(method []byte) bool {
	switch string(method) {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete,
		fiber.MethodConnect, fiber.MethodOptions, fiber.MethodTrace, fiber.MethodPatch:
		return true
	}
	return false
}

// lingerOnClose makes the connection of ctx close in stages.
func lingerOnClose(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*lingerConn); ok {
		c.linger.Store(true)
	}
}

// lingerListener hands out connections that can close in stages.
type lingerListener struct {
	net.Listener
	max int64 // most bytes drained on close
}

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c, max: l.max}, nil
}

// lingerConn is a connection that, once marked, closes in stages.
type lingerConn struct {
	net.Conn
	max    int64
	linger atomic.Bool
}

// Close closes the connection; a marked one is drained first.
func (c *lingerConn) Close() error {
	if c.linger.Swap(false) {
		c.drain()
	}
	return c.Conn.Close()
}

// drain half-closes the connection, so the client reads the answer to its
// end, then reads and discards what the client still sends until it
// closes its side, pauses for lingerIdle, has sent max bytes, or
// lingerTime has passed.
func (c *lingerConn) drain() {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	end := time.Now().Add(lingerTime)
	buf := make([]byte, 32<<10)
	for left := c.max; left > 0; {
		deadline := time.Now().Add(lingerIdle)
		if deadline.After(end) {
			deadline = end
		}
		if c.Conn.SetReadDeadline(deadline) != nil {
			return
		}
		n, err := c.Conn.Read(buf)
		left -= int64(n)
		if err != nil {
			return
		}
	}
}
