package systest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/inkstream/inkstream/internal/httpx"
)

// Every exchange of a system's client (System.Client, and so System.Do)
// with one of its APIs is checked against the OpenAPI document that API
// serves at /openapi.json, with kin-openapi, so that the document cannot
// drift from the code:
//
//   - the document itself must be a valid OpenAPI 3.1 document;
//   - every answer must be one the document gives for the request's
//     operation: a status it lists, its headers, its media type and body;
//     a 204, 304 or redirect has no body;
//   - a request the document calls invalid (a parameter, a header or a
//     body that breaks its schema, a missing bearer token where one is
//     required) must be answered with a 4xx;
//   - a request for a route or method the document does not have must be
//     answered with a 404, 405 or 501 problem.
//
// Not checked: CORS preflights (OPTIONS with Access-Control-Request-Method,
// the browser's protocol rather than an operation of the API), the body
// of a text/event-stream (its events are checked by the feed's tests
// against the document's Change schema), and requests written by hand on
// raw connections (the HTTP framing tests).

func init() {
	// Bodies the document describes as plain strings.
	for _, mt := range []string{"text/html", "text/javascript", "text/css", "application/atom+xml", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
	}
}

// apiDoc is the served document of one API and its router.
type apiDoc struct {
	doc    *openapi3.T
	router routers.Router
}

// validator is the http.RoundTripper of a system's client.
type validator struct {
	tb   testing.TB
	base http.RoundTripper
	mu   sync.Mutex
	docs map[string]*apiDoc // by host:port
}

func newValidator(tb testing.TB) *validator {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256 // hundreds of concurrent requests do not churn through sockets
	return &validator{tb: tb, base: tr, docs: map[string]*apiDoc{}}
}

// CloseIdleConnections closes the idle connections of the transport
// (http.Client.CloseIdleConnections calls it).
func (v *validator) CloseIdleConnections() {
	v.base.(*http.Transport).CloseIdleConnections()
}

// Document is the OpenAPI document the API at base (http://host:port)
// serves, as the system's client checks its exchanges with.
func (s *System) Document(base string) *openapi3.T {
	s.TB.Helper()
	v := s.Client.Transport.(*validator)
	v.mu.Lock()
	d := v.docs[strings.TrimPrefix(base, "http://")]
	v.mu.Unlock()
	if d == nil {
		s.TB.Fatalf("no OpenAPI document of %s", base)
	}
	return d.doc
}

// load fetches, validates and keeps the document of the API at addr.
func (v *validator) load(addr string) {
	v.tb.Helper()
	resp, err := (&http.Client{Transport: v.base, Timeout: 10 * time.Second}).Get("http://" + addr + "/openapi.json")
	if err != nil {
		v.tb.Fatalf("GET /openapi.json of %s: %v", addr, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		v.tb.Fatalf("GET /openapi.json of %s: %d %v", addr, resp.StatusCode, err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		v.tb.Fatalf("the OpenAPI document of %s does not load: %v", addr, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		v.tb.Fatalf("the OpenAPI document of %s is not valid: %v", addr, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		v.tb.Fatalf("the OpenAPI document of %s is %s, not 3.1", addr, doc.OpenAPI)
	}
	doc.Servers = nil // route on paths, whatever the host
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		v.tb.Fatalf("route the OpenAPI document of %s: %v", addr, err)
	}
	v.mu.Lock()
	v.docs[addr] = &apiDoc{doc: doc, router: router}
	v.mu.Unlock()
}

// forget stops checking the API at addr (it stopped; another may get its port).
func (v *validator) forget(addr string) {
	v.mu.Lock()
	delete(v.docs, addr)
	v.mu.Unlock()
}

// RoundTrip sends req and checks the exchange; a mismatch fails the test
// (with Errorf: requests are sent from other goroutines too).
func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	v.mu.Lock()
	d := v.docs[req.URL.Host]
	v.mu.Unlock()
	if d == nil || req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return v.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	what := req.Method + " " + req.URL.RequestURI()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		// The stream goes on: check the answer without its body.
		if problem := v.check(d, req, body, resp, nil); problem != "" {
			v.tb.Errorf("OpenAPI: %s → %d: %s", what, resp.StatusCode, problem)
		}
		return resp, nil
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if problem := v.check(d, req, body, resp, respBody); problem != "" {
		v.tb.Errorf("OpenAPI: %s → %d: %s\nanswer: %.400s", what, resp.StatusCode, problem, respBody)
	}
	return resp, nil
}

// check returns what is wrong with the exchange, or "".
func (v *validator) check(d *apiDoc, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	// The router and the validator read the request: give them a copy.
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, pathParams, err := d.router.FindRoute(r)
	if err != nil {
		// No such route or method in the document: the API must refuse it.
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		default:
			return fmt.Sprintf("the document has no %s %s (%v), yet the answer is not a 404, 405 or 501", req.Method, req.URL.Path, err)
		}
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != httpx.ContentTypeProblem {
			return "the refusal of a route the document lacks is not a problem"
		}
		return ""
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: pathParams, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent, MultiError: true},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode > 499) {
		return fmt.Sprintf("the document calls the request invalid (%v), yet it was answered %d", reqErr, resp.StatusCode)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: respBody == nil},
	}
	out.SetBodyBytes(respBody)
	// kin-openapi leaves these statuses alone: their headers are checked here.
	switch resp.StatusCode {
	case http.StatusNotModified, http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		documented := route.Operation.Responses.Status(resp.StatusCode)
		if documented == nil {
			return fmt.Sprintf("status %d is not one the document gives for %s", resp.StatusCode, route.Operation.OperationID)
		}
		for name, h := range documented.Value.Headers {
			if h.Value.Required && resp.Header.Get(name) == "" {
				return fmt.Sprintf("a %d without its %s header", resp.StatusCode, name)
			}
		}
		if len(respBody) > 0 && resp.StatusCode == http.StatusNotModified {
			return "a 304 with a body"
		}
		return ""
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err.Error()
	}
	if documented := route.Operation.Responses.Status(resp.StatusCode); documented != nil && len(documented.Value.Content) == 0 && len(respBody) > 0 {
		return fmt.Sprintf("the document gives a %d no body, yet it has one", resp.StatusCode)
	}
	return ""
}

// bearerPresent is the document's security, as far as a request shows it:
// an operation that requires the bearer scheme needs an Authorization
// header of it (whether the token verifies is the API's to say).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return fmt.Errorf("no bearer token")
	}
	return nil
}
