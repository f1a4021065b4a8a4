package systest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that keeps what Errorf says.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

const tinyDoc = `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{
 "/things/{id}":{"get":{"parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"integer"}}],
  "responses":{"200":{"description":"a thing","headers":{"X-Request-Id":{"required":true,"schema":{"type":"string"}}},
    "content":{"application/json":{"schema":{"type":"object","additionalProperties":false,"required":["name"],"properties":{"name":{"type":"string"}}}}}},
   "400":{"description":"bad","content":{"application/problem+json":{"schema":{"type":"object"}}}}}}}}}`

// TestValidatorCatchesDrift shows that the check of the kit's client fails
// a test on every kind of mismatch between an API and its document, and on
// none when they agree.
func TestValidatorCatchesDrift(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openapi.json" {
			w.Write([]byte(tinyDoc))
			return
		}
		w.Header().Set("X-Request-Id", "r")
		switch r.Method + " " + r.URL.Path {
		case "GET /things/1":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name":"one"}`))
		case "GET /things/2":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"nome":1}`))
		case "GET /things/3":
			w.WriteHeader(http.StatusInternalServerError)
		case "GET /things/x":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name":"x"}`)) // the document says id is an integer: this should have been a 4xx
		case "GET /things/4":
			w.Header().Del("X-Request-Id")
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name":"four"}`))
		default:
			w.WriteHeader(http.StatusOK) // a route the document lacks, answered as if it were one
		}
	}))
	defer srv.Close()
	rec := &recorder{TB: t}
	v := newValidator(rec)
	v.load(strings.TrimPrefix(srv.URL, "http://"))
	c := &http.Client{Transport: v}
	for _, tc := range []struct {
		method, path string
		wantErr      string
	}{
		{"GET", "/things/1", ""},
		{"GET", "/things/2", "nome"},
		{"GET", "/things/3", "status is not supported"},
		{"GET", "/things/x", "calls the request invalid"},
		{"GET", "/things/4", "X-Request-Id"},
		{"POST", "/things/1", "the document has no POST"},
		{"GET", "/nothing", "the document has no GET"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		errs := rec.take()
		switch {
		case tc.wantErr == "" && len(errs) > 0:
			t.Errorf("%s %s: the check complained of an exchange the document allows: %v", tc.method, tc.path, errs)
		case tc.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.wantErr)):
			t.Errorf("%s %s: the check said %q, want one complaint naming %q", tc.method, tc.path, errs, tc.wantErr)
		}
	}
}
