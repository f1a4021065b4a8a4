package systest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/inkstream/inkstream/internal/app"
	"github.com/inkstream/inkstream/internal/cmdtest"
	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/natsx"
	"github.com/inkstream/inkstream/internal/readmodel"
	"github.com/inkstream/inkstream/pkg/domain"
)

// Body is the body of the i-th write of a test: every field distinct per i.
func Body(i int) map[string]any {
	return map[string]any{
		"title":     fmt.Sprintf("Title %04d", i),
		"content":   fmt.Sprintf("content of write %d", i),
		"author_id": "author-1",
		"tags":      []string{"go", fmt.Sprintf("t%d", i)},
	}
}

// MediaType is the media type of a response, without parameters.
func (r Response) MediaType() string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt
}

// Require fails the test unless r has status want.
func (r Response) Require(tb testing.TB, want int) {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status %d, want %d; body %.500s", r.Status, want, r.Body)
	}
}

// RequireProblem fails unless r is an RFC 9457 problem with status want (any
// 4xx when want is 0) and, when field is not empty, an errors member naming
// field (or an element of it, such as tags[0]). A 503 or 429 must say when
// to retry.
func (r Response) RequireProblem(tb testing.TB, want int, field string) httpx.Problem {
	tb.Helper()
	if want == 0 && (r.Status < 400 || r.Status > 499) || want != 0 && r.Status != want {
		tb.Fatalf("status %d, want %d (0: any 4xx); body %.500s", r.Status, want, r.Body)
	}
	if mt := r.MediaType(); mt != httpx.ContentTypeProblem {
		tb.Fatalf("Content-Type %q, want %s; body %.500s", r.Header.Get("Content-Type"), httpx.ContentTypeProblem, r.Body)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &members); err != nil {
		tb.Fatalf("problem body is not a JSON object: %v: %.500s", err, r.Body)
	}
	for _, m := range []string{"type", "title", "status"} {
		if _, ok := members[m]; !ok {
			tb.Fatalf("problem body lacks %q: %s", m, r.Body)
		}
	}
	var p httpx.Problem
	r.JSON(tb, &p)
	if p.Type == "" || p.Title == "" || p.Status != r.Status {
		tb.Fatalf("problem type %q title %q status %d (HTTP status %d)", p.Type, p.Title, p.Status, r.Status)
	}
	if (r.Status == http.StatusServiceUnavailable || r.Status == http.StatusTooManyRequests) && r.Header.Get("Retry-After") == "" {
		tb.Fatalf("a %d without Retry-After: %s", r.Status, r.Body)
	}
	if field != "" {
		found := false
		for k, msg := range p.Errors {
			if (k == field || strings.HasPrefix(k, field+"[")) && msg != "" {
				found = true
			}
		}
		if !found {
			tb.Fatalf("problem errors %v do not name %q; body %s", p.Errors, field, r.Body)
		}
	}
	return p
}

// Article decodes an article answer and checks that it is JSON with RFC
// 3339 UTC timestamps.
func (r Response) Article(tb testing.TB) domain.Article {
	tb.Helper()
	if mt := r.MediaType(); mt != "application/json" {
		tb.Fatalf("article Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	var raw map[string]any
	r.JSON(tb, &raw)
	for _, k := range []string{"created_at", "updated_at"} {
		s, _ := raw[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
			tb.Fatalf("%s %q is not RFC 3339 UTC: %s", k, s, r.Body)
		}
	}
	var a domain.Article
	r.JSON(tb, &a)
	return a
}

// ETagVersion is the version the answer's ETag names.
func (r Response) ETagVersion(tb testing.TB) int {
	tb.Helper()
	v, err := strconv.Atoi(strings.Trim(r.Header.Get("ETag"), `"`))
	if err != nil {
		tb.Fatalf("ETag %q: %v", r.Header.Get("ETag"), err)
	}
	return v
}

// ETag is the entity tag of an article version.
func ETag(v int) string { return `"` + strconv.Itoa(v) + `"` }

// SameArticle compares two articles field by field (times as instants, no
// tags as an empty list).
func SameArticle(a, b domain.Article) bool {
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	if a.Tags == nil {
		a.Tags = []string{}
	}
	if b.Tags == nil {
		b.Tags = []string{}
	}
	return reflect.DeepEqual(a, b)
}

// RequireSameArticle fails unless got and want are the same article.
func RequireSameArticle(tb testing.TB, got, want domain.Article) {
	tb.Helper()
	if !SameArticle(got, want) {
		tb.Fatalf("article\n got %+v\nwant %+v", got, want)
	}
}

// Create posts an article and checks the 201 answer: a UUIDv7, version 1,
// its ETag, Location and consistency token.
func (s *System) Create(body any, headers ...string) (domain.Article, Response) {
	s.TB.Helper()
	r := s.Do(http.MethodPost, s.Cmd()+"/api/articles", body, headers...)
	r.Require(s.TB, http.StatusCreated)
	a := r.Article(s.TB)
	if got := r.Header.Get("ETag"); got != ETag(1) || a.Version != 1 {
		s.TB.Fatalf("create: ETag %s version %d, want \"1\" and 1", got, a.Version)
	}
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, "/api/articles/"+a.ID) {
		s.TB.Fatalf("create: Location %q does not name article %s", loc, a.ID)
	}
	if u, err := uuid.Parse(a.ID); err != nil || u.Version() != 7 {
		s.TB.Fatalf("create: id %q is not a UUIDv7", a.ID)
	}
	if r.Seq() == 0 {
		s.TB.Fatalf("create: no X-Event-Seq")
	}
	return a, r
}

// Write sends a PUT or PATCH of article id and checks the 200 answer.
func (s *System) Write(method, id string, body any, headers ...string) (domain.Article, Response) {
	s.TB.Helper()
	r := s.Do(method, s.Cmd()+"/api/articles/"+id, body, headers...)
	r.Require(s.TB, http.StatusOK)
	a := r.Article(s.TB)
	if got := r.Header.Get("ETag"); got != ETag(a.Version) {
		s.TB.Fatalf("%s: ETag %s for version %d", method, got, a.Version)
	}
	if r.Seq() == 0 {
		s.TB.Fatalf("%s: no X-Event-Seq", method)
	}
	return a, r
}

// WaitArticle polls the query API until it serves article id at version
// and returns it.
func (s *System) WaitArticle(id string, version int) domain.Article {
	s.TB.Helper()
	var a domain.Article
	natstest.WaitFor(s.TB, 10*time.Second, func() error {
		r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+id, nil)
		if r.Status != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", id, r.Status, r.Body)
		}
		if got := r.Header.Get("ETag"); got != ETag(version) {
			return fmt.Errorf("GET %s: ETag %s, want %s", id, got, ETag(version))
		}
		a = r.Article(s.TB)
		return nil
	})
	if a.Version != version {
		s.TB.Fatalf("GET %s: body version %d under ETag %s", id, a.Version, ETag(version))
	}
	return a
}

// WaitGone polls the query API until article id answers 404.
func (s *System) WaitGone(id string) Response {
	s.TB.Helper()
	var r Response
	natstest.WaitFor(s.TB, 10*time.Second, func() error {
		r = s.Do(http.MethodGet, s.Query()+"/api/articles/"+id, nil)
		if r.Status != http.StatusNotFound {
			return fmt.Errorf("GET %s: %d, want 404", id, r.Status)
		}
		return nil
	})
	return r
}

// Metric reads an unlabelled sample (the sum of a metric's series) from
// the /metrics of the process at base (http://host:port).
func (s *System) Metric(base, name string) float64 {
	s.TB.Helper()
	r := s.Do(http.MethodGet, base+"/metrics", nil)
	r.Require(s.TB, http.StatusOK)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		s.TB.Fatalf("parse %s/metrics: %v", base, err)
	}
	mf, ok := mfs[name]
	if !ok {
		s.TB.Fatalf("no metric %s at %s/metrics", name, base)
	}
	sum := 0.0
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// Snapshot reads the snapshot of id from the bucket; ok is false when it
// has none.
func (s *System) Snapshot(id string) (readmodel.Snapshot, bool) {
	s.TB.Helper()
	e, err := s.Snapshots().Get(natstest.Context(s.TB), id)
	if errors.Is(err, domain.ErrNotFound) || err == nil && e.Deleted {
		return readmodel.Snapshot{}, false
	}
	if err != nil {
		s.TB.Fatalf("snapshot of %s: %v", id, err)
	}
	snap, body, err := readmodel.Decode(e.Value)
	if err != nil {
		s.TB.Fatalf("snapshot of %s: %v", id, err)
	}
	if snap.Article.ID != id || len(body) == 0 {
		s.TB.Fatalf("snapshot of %s holds article %q", id, snap.Article.ID)
	}
	return snap, true
}

// RequireSnapshotIsFold fails unless the snapshot of id is the fold of the
// article's events: same fields, version, deletion and sequence.
func (s *System) RequireSnapshotIsFold(id string) readmodel.Snapshot {
	s.TB.Helper()
	h := s.History(id)
	st, seq := h.Fold.State, h.Fold.Seq
	snap, ok := s.Snapshot(id)
	if !ok {
		s.TB.Fatalf("article %s (v%d in the stream) has no snapshot", id, st.Article.Version)
	}
	if !SameArticle(snap.Article, st.Article) || snap.Deleted != st.Deleted || snap.Seq != seq {
		s.TB.Fatalf("snapshot of %s is not the fold of its events:\n  kv:     v%d seq %d deleted=%v %+v\n  stream: v%d seq %d deleted=%v %+v",
			id, snap.Article.Version, snap.Seq, snap.Deleted, snap.Article, st.Article.Version, seq, st.Deleted, st.Article)
	}
	return snap
}

// MergePatch is the media type of a JSON merge patch (RFC 7396).
const MergePatch = "application/merge-patch+json"

// Base is the base URL (http://host:port) of a running role.
func Base(r *app.Running) string { return "http://" + r.Addr }

// Run runs f as the subtest name of t, with the system's helpers failing
// the subtest, and reports whether it passed. What the subtest starts
// through the system (a role, a context) ends with it.
func (s *System) Run(t *testing.T, name string, f func(t *testing.T)) bool {
	t.Helper()
	parent := s.TB
	return t.Run(name, func(t *testing.T) {
		s.TB = t
		defer func() { s.TB = parent }()
		f(t)
	})
}

// Step is Run for the steps of one story, which share their state: when
// the step fails, so does t, at once.
func (s *System) Step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !s.Run(t, name, f) {
		t.FailNow()
	}
}

// ListPage is one answer of GET /api/articles.
type ListPage struct {
	Items      []domain.Article
	NextCursor string
	HasCursor  bool
}

// List decodes a list answer: JSON with items a list and next_cursor, when
// present, a non-empty string.
func (r Response) List(tb testing.TB) ListPage {
	tb.Helper()
	if mt := r.MediaType(); mt != "application/json" {
		tb.Fatalf("list: Content-Type %q", r.Header.Get("Content-Type"))
	}
	var raw map[string]json.RawMessage
	r.JSON(tb, &raw)
	var p ListPage
	items, ok := raw["items"]
	if !ok {
		tb.Fatalf("list: no items member: %s", r.Body)
	}
	if err := json.Unmarshal(items, &p.Items); err != nil || p.Items == nil {
		tb.Fatalf("list: items is not a list (%v): %s", err, r.Body)
	}
	if nc, ok := raw["next_cursor"]; ok {
		p.HasCursor = true
		if err := json.Unmarshal(nc, &p.NextCursor); err != nil || p.NextCursor == "" {
			tb.Fatalf("list: next_cursor %s is not a non-empty string", nc)
		}
	}
	return p
}

// List reads the page of GET /api/articles?q from the query API.
func (s *System) List(q url.Values) ListPage {
	s.TB.Helper()
	r := s.Do(http.MethodGet, s.Query()+"/api/articles?"+q.Encode(), nil)
	r.Require(s.TB, http.StatusOK)
	return r.List(s.TB)
}

// ListAll follows next_cursor from the first page of q to the last, limit
// articles a page, and returns the ids in the order served.
func (s *System) ListAll(q url.Values, limit int) []string {
	s.TB.Helper()
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 200 {
			s.TB.Fatalf("list %s: more than 200 pages", q.Encode())
		}
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("limit", strconv.Itoa(limit))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		p := s.List(v)
		if len(p.Items) > limit {
			s.TB.Fatalf("list %s: %d items on a page of %d", v.Encode(), len(p.Items), limit)
		}
		ids = append(ids, IDs(p.Items)...)
		if !p.HasCursor {
			return ids
		}
		if len(p.Items) != limit {
			s.TB.Fatalf("list %s: next_cursor after a short page of %d", v.Encode(), len(p.Items))
		}
		cursor = p.NextCursor
	}
}

// IDs are the ids of as, in order.
func IDs(as []domain.Article) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// WaitReady polls base/readyz (base: http://host:port) with c until it
// answers 200.
func WaitReady(tb testing.TB, c *http.Client, base string) {
	tb.Helper()
	natstest.WaitFor(tb, 30*time.Second, func() error {
		r, err := Do(c, http.MethodGet, base+"/readyz", nil)
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("%s/readyz: %d %s", base, r.Status, r.Body)
		}
		return err
	})
}

// Concurrently sends n requests at once (released together) and returns
// their answers in the order of i.
func Concurrently(tb testing.TB, n int, req func(i int) (Response, error)) []Response {
	tb.Helper()
	out := make([]Response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = req(i)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// RawAnswer is what a server answered to a hand-written request.
type RawAnswer struct {
	Response
	Closed     bool // the server closed the connection after answering
	CloseAsked bool // the answer said Connection: close
}

// Raw writes the bytes of a hand-written request to addr (host:port) on a
// fresh connection, without waiting for the server to read them, and reads
// one answer. With wait above zero it then waits that long for the server
// to close the connection: EOF is Closed, a connection still open is not.
func Raw(tb testing.TB, addr string, wait time.Duration, req ...[]byte) RawAnswer {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	w := bufio.NewWriter(conn)
	for _, p := range req {
		_, _ = w.Write(p)
	}
	if err := w.Flush(); err != nil {
		tb.Fatalf("write a request to %s: %v", addr, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("read the answer from %s: %v", addr, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("read the body of the answer from %s: %v", addr, err)
	}
	a := RawAnswer{Response: Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, CloseAsked: resp.Close}
	if wait <= 0 {
		return a
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	n, err := br.Read(make([]byte, 1))
	switch {
	case n > 0:
		tb.Fatalf("after its answer %s sent more", addr)
	case errors.Is(err, io.EOF):
		a.Closed = true
	case !errors.Is(err, os.ErrDeadlineExceeded):
		tb.Fatalf("after the answer from %s: %v, want EOF or nothing", addr, err)
	}
	return a
}

// VerifyCLI runs `inkstream verify` against the system, with args after
// its -nats-url, and returns what it printed.
func (s *System) VerifyCLI(args ...string) (string, error) {
	s.TB.Helper()
	var out bytes.Buffer
	err := app.Verify(natstest.Context(s.TB), append([]string{"-nats-url", s.URL}, args...), cmdtest.Env(), &out, &out)
	return out.String(), err
}

// LastSeq is the last sequence of stream ARTICLES.
func (s *System) LastSeq() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := s.Res.Stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// ConsumerInfo is the state of the projector consumer.
func (s *System) ConsumerInfo() (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := s.Conn.JS.Consumer(ctx, natsx.Stream, natsx.ConsumerName)
	if err != nil {
		return nil, err
	}
	return cons.CachedInfo(), nil
}

// PutSnapshot writes snap into the bucket as the snapshot of its article,
// whatever is there: a test's forgery or tampering.
func (s *System) PutSnapshot(snap readmodel.Snapshot) {
	s.TB.Helper()
	v, err := readmodel.Encode(snap)
	if err != nil {
		s.TB.Fatal(err)
	}
	if _, err := s.Res.KV.Put(natstest.Context(s.TB), snap.Article.ID, v); err != nil {
		s.TB.Fatal(err)
	}
}

// StartCluster starts a three-node JetStream cluster and a system on it
// with stream and bucket at three replicas.
func StartCluster(tb testing.TB, projectors int) (*natstest.Cluster, *System) {
	tb.Helper()
	c := natstest.RunCluster(tb, 3)
	return c, Start(tb, c.URL(), 3, projectors)
}
