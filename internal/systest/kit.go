package systest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/internal/natstest"
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
	if errorsIsNotFound(err) || err == nil && e.Deleted {
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

func errorsIsNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
