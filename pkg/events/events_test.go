package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/pkg/events"
)

const articleID = "0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a"

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)

func TestSubject(t *testing.T) {
	tests := []struct {
		typ  events.Type
		want string
	}{
		{typ: events.ArticleCreated, want: "articles." + articleID + ".created"},
		{typ: events.ArticleUpdated, want: "articles." + articleID + ".updated"},
		{typ: events.ArticleDeleted, want: "articles." + articleID + ".deleted"},
		{typ: "ArticleArchived", want: "articles." + articleID + ".unknown"},
		{typ: "", want: "articles." + articleID + ".unknown"},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			if got := events.Subject(articleID, tt.typ); got != tt.want {
				t.Fatalf("Subject(%s) = %q, want %q", tt.typ, got, tt.want)
			}
		})
	}
}

func TestStreamConstants(t *testing.T) {
	if events.StreamName != "ARTICLES" || events.StreamSubjects != "articles.>" || events.SubjectPrefix != "articles" {
		t.Fatalf("stream %q subjects %q prefix %q", events.StreamName, events.StreamSubjects, events.SubjectPrefix)
	}
}

func TestArticleSubjects(t *testing.T) {
	if got, want := events.ArticleSubjects(articleID), "articles."+articleID+".>"; got != want {
		t.Fatalf("ArticleSubjects = %q, want %q", got, want)
	}
	// Every event subject of the article is matched by the filter's prefix.
	filter := strings.TrimSuffix(events.ArticleSubjects(articleID), ">")
	for _, typ := range []events.Type{events.ArticleCreated, events.ArticleUpdated, events.ArticleDeleted} {
		if s := events.Subject(articleID, typ); !strings.HasPrefix(s, filter) {
			t.Errorf("subject %q is outside filter %q", s, events.ArticleSubjects(articleID))
		}
	}
}

func TestArticleIDFromSubject(t *testing.T) {
	tests := []struct {
		subject string
		wantID  string
		wantOK  bool
	}{
		{subject: "articles." + articleID + ".created", wantID: articleID, wantOK: true},
		{subject: "articles." + articleID + ".updated", wantID: articleID, wantOK: true},
		{subject: "articles." + articleID + ".deleted", wantID: articleID, wantOK: true},
		{subject: "articles.abc.unknown", wantID: "abc", wantOK: true},
		{subject: "articles.abc.>", wantID: "abc", wantOK: true},
		{subject: "articles.abc.created.extra", wantID: "abc", wantOK: true},
		{subject: "articles.abc"},
		{subject: "articles..created"},
		{subject: "articles."},
		{subject: "articles"},
		{subject: ""},
		{subject: "comments.abc.created"},
		{subject: "articlesx.abc.created"},
		{subject: "Articles.abc.created"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			id, ok := events.ArticleIDFromSubject(tt.subject)
			if ok != tt.wantOK {
				t.Fatalf("ArticleIDFromSubject(%q) ok = %v, want %v", tt.subject, ok, tt.wantOK)
			}
			if ok && id != tt.wantID {
				t.Fatalf("ArticleIDFromSubject(%q) = %q, want %q", tt.subject, id, tt.wantID)
			}
		})
	}
}

func TestSubjectRoundTrip(t *testing.T) {
	for _, id := range []string{articleID, "a", "x-y_z"} {
		for _, typ := range []events.Type{events.ArticleCreated, events.ArticleUpdated, events.ArticleDeleted} {
			got, ok := events.ArticleIDFromSubject(events.Subject(id, typ))
			if !ok || got != id {
				t.Errorf("ArticleIDFromSubject(Subject(%q, %s)) = %q, %v", id, typ, got, ok)
			}
		}
	}
}

// newEnvelope builds an envelope and fails on an error.
func newEnvelope(tb testing.TB, t events.Type, version int, at time.Time, data any) events.Envelope {
	tb.Helper()
	e, err := events.NewEnvelope("evt-1", t, articleID, version, at, data)
	if err != nil {
		tb.Fatalf("NewEnvelope: %v", err)
	}
	return e
}

// requireSameEnvelope fails unless got and want are the same event: equal
// fields, the same instant and offset, and the same JSON data.
func requireSameEnvelope(tb testing.TB, got, want events.Envelope) {
	tb.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.ArticleID != want.ArticleID || got.Version != want.Version {
		tb.Fatalf("envelope = %+v, want %+v", got, want)
	}
	_, gotOff := got.OccurredAt.Zone()
	_, wantOff := want.OccurredAt.Zone()
	if !got.OccurredAt.Equal(want.OccurredAt) || gotOff != wantOff {
		tb.Fatalf("occurred_at = %v, want %v", got.OccurredAt, want.OccurredAt)
	}
	if !sameJSON(got.Data, want.Data) {
		tb.Fatalf("data = %s, want %s", got.Data, want.Data)
	}
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b []byte) bool {
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	title, tags := "New", []string{"a", "b"}
	tests := []struct {
		name string
		env  events.Envelope
	}{
		{
			name: "created",
			env: newEnvelope(t, events.ArticleCreated, 1, t0, events.ArticleData{
				Title: "Hello <World> & \"friends\" 日本語 😀", Slug: "hello-world", Content: "line\nline\u2028",
				AuthorID: "a", Status: "draft", Tags: []string{"go"},
			}),
		},
		{name: "updated", env: newEnvelope(t, events.ArticleUpdated, 7, t0, events.ArticleChanges{Title: &title, Tags: &tags})},
		{name: "deleted", env: newEnvelope(t, events.ArticleDeleted, 8, t0, struct{}{})},
		{name: "large version", env: newEnvelope(t, events.ArticleUpdated, 1<<40, t0, events.ArticleChanges{})},
		{name: "nanoseconds", env: newEnvelope(t, events.ArticleDeleted, 2, time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), struct{}{})},
		{name: "offset time", env: events.Envelope{ID: "e", Type: events.ArticleDeleted, ArticleID: "x", Version: 3, OccurredAt: t0.In(time.FixedZone("", -7*3600)), Data: json.RawMessage(`{}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := events.Encode(tt.env)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := events.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			requireSameEnvelope(t, got, tt.env)
			if !bytes.Equal(got.Data, tt.env.Data) {
				t.Fatalf("data bytes = %s, want %s", got.Data, tt.env.Data)
			}
		})
	}
}

func TestEncodeShape(t *testing.T) {
	e := newEnvelope(t, events.ArticleCreated, 1, t0.In(time.FixedZone("CET", 3600)),
		events.ArticleData{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "draft", Tags: []string{}})
	b, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt-1","type":"ArticleCreated","article_id":"` + articleID + `","version":1,` +
		`"occurred_at":"2026-11-23T10:00:00.123456Z",` +
		`"data":{"title":"t","slug":"t","content":"c","author_id":"a","status":"draft","tags":[]}}`
	if string(b) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", b, want)
	}
}

func TestEncodeEmptyData(t *testing.T) {
	for _, data := range []json.RawMessage{nil, {}} {
		b, err := events.Encode(events.Envelope{ID: "e", Type: events.ArticleDeleted, ArticleID: "a", Version: 2, OccurredAt: t0, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(b, []byte(`"data":{}}`)) {
			t.Fatalf("Encode with data %q = %s, want data {}", data, b)
		}
	}
}

func TestEncodeInvalidData(t *testing.T) {
	_, err := events.Encode(events.Envelope{ID: "e", Type: events.ArticleDeleted, ArticleID: "a", Version: 2, Data: json.RawMessage(`{not json`)})
	if err == nil {
		t.Fatal("Encode accepted invalid raw data")
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want events.Envelope
	}{
		{
			name: "full",
			in:   `{"id":"e1","type":"ArticleUpdated","article_id":"a1","version":2,"occurred_at":"2026-11-23T10:00:00.123456Z","data":{"title":"x"}}`,
			want: events.Envelope{ID: "e1", Type: events.ArticleUpdated, ArticleID: "a1", Version: 2, OccurredAt: t0, Data: json.RawMessage(`{"title":"x"}`)},
		},
		{
			name: "offset time",
			in:   `{"id":"e1","type":"ArticleDeleted","article_id":"a1","version":3,"occurred_at":"2026-11-23T11:00:00.123456+01:00","data":{}}`,
			want: events.Envelope{ID: "e1", Type: events.ArticleDeleted, ArticleID: "a1", Version: 3, OccurredAt: t0.In(time.FixedZone("", 3600)), Data: json.RawMessage(`{}`)},
		},
		{
			name: "missing data reads as empty",
			in:   `{"id":"e1","type":"ArticleDeleted","article_id":"a1","version":3,"occurred_at":"2026-11-23T10:00:00.123456Z"}`,
			want: events.Envelope{ID: "e1", Type: events.ArticleDeleted, ArticleID: "a1", Version: 3, OccurredAt: t0, Data: json.RawMessage(`{}`)},
		},
		{
			name: "unknown fields are ignored",
			in:   `{"id":"e1","type":"ArticleCreated","article_id":"a1","version":1,"occurred_at":"2026-11-23T10:00:00.123456Z","data":{},"extra":true}`,
			want: events.Envelope{ID: "e1", Type: events.ArticleCreated, ArticleID: "a1", Version: 1, OccurredAt: t0, Data: json.RawMessage(`{}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			requireSameEnvelope(t, got, tt.want)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := map[string]any{
		"id": "e1", "type": "ArticleCreated", "article_id": "a1", "version": 1,
		"occurred_at": "2026-11-23T10:00:00Z", "data": map[string]any{},
	}
	with := func(key string, v any) string {
		m := map[string]any{}
		for k, x := range valid {
			m[k] = x
		}
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name, in string
	}{
		{name: "empty input", in: ""},
		{name: "bad json", in: `{"id":`},
		{name: "not an object", in: `[1,2]`},
		{name: "string", in: `"ArticleCreated"`},
		{name: "null", in: `null`},
		{name: "empty object", in: `{}`},
		{name: "trailing garbage", in: with("id", "e1") + `x`},
		{name: "unknown type", in: with("type", "ArticleArchived")},
		{name: "lower-case type", in: with("type", "articlecreated")},
		{name: "missing type", in: with("type", nil)},
		{name: "missing id", in: with("id", nil)},
		{name: "empty id", in: with("id", "")},
		{name: "missing article_id", in: with("article_id", nil)},
		{name: "empty article_id", in: with("article_id", "")},
		{name: "missing version", in: with("version", nil)},
		{name: "version 0", in: with("version", 0)},
		{name: "negative version", in: with("version", -1)},
		{name: "fractional version", in: with("version", 1.5)},
		{name: "string version", in: with("version", "1")},
		{name: "bad time", in: with("occurred_at", "yesterday")},
		{name: "id not a string", in: with("id", 42)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.Decode([]byte(tt.in))
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode(%s) err = %v, want ErrMalformed", tt.in, err)
			}
			if !reflect.DeepEqual(got, events.Envelope{}) {
				t.Fatalf("Decode returned %+v with an error", got)
			}
		})
	}
}

func TestNewEnvelope(t *testing.T) {
	at := t0.In(time.FixedZone("PST", -8*3600))
	e, err := events.NewEnvelope("id-1", events.ArticleUpdated, articleID, 4, at, map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "id-1" || e.Type != events.ArticleUpdated || e.ArticleID != articleID || e.Version != 4 || string(e.Data) != `{"n":1}` {
		t.Fatalf("NewEnvelope = %+v", e)
	}
	if !e.OccurredAt.Equal(t0) || e.OccurredAt.Location() != time.UTC {
		t.Fatalf("occurred_at = %v, want %v UTC", e.OccurredAt, t0)
	}
	if _, err := events.NewEnvelope("id-2", events.ArticleUpdated, articleID, 4, at, make(chan int)); err == nil {
		t.Fatal("NewEnvelope accepted data that is not JSON")
	}
}

func TestArticleChanges(t *testing.T) {
	s, tags := "x", []string{}
	tests := []struct {
		name      string
		c         events.ArticleChanges
		wantEmpty bool
		wantJSON  string
	}{
		{name: "none", c: events.ArticleChanges{}, wantEmpty: true, wantJSON: `{}`},
		{name: "title", c: events.ArticleChanges{Title: &s}, wantJSON: `{"title":"x"}`},
		{name: "slug", c: events.ArticleChanges{Slug: &s}, wantJSON: `{"slug":"x"}`},
		{name: "content", c: events.ArticleChanges{Content: &s}, wantJSON: `{"content":"x"}`},
		{name: "author", c: events.ArticleChanges{AuthorID: &s}, wantJSON: `{"author_id":"x"}`},
		{name: "status", c: events.ArticleChanges{Status: &s}, wantJSON: `{"status":"x"}`},
		{name: "empty tags is a change", c: events.ArticleChanges{Tags: &tags}, wantJSON: `{"tags":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Empty(); got != tt.wantEmpty {
				t.Fatalf("Empty() = %v, want %v", got, tt.wantEmpty)
			}
			b, err := json.Marshal(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.wantJSON {
				t.Fatalf("JSON = %s, want %s", b, tt.wantJSON)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"id":"e1","type":"ArticleCreated","article_id":"a1","version":1,"occurred_at":"2026-11-23T10:00:00.123456Z","data":{"title":"t","slug":"t","content":"c","author_id":"a","status":"draft","tags":[]}}`,
		`{"id":"e2","type":"ArticleUpdated","article_id":"a1","version":2,"occurred_at":"2026-11-23T11:00:00+01:00","data":{"title":"<b>&</b>"}}`,
		`{"id":"e3","type":"ArticleDeleted","article_id":"a1","version":3,"occurred_at":"2026-11-23T10:00:00Z","data":{}}`,
		`{"id":"e3","type":"ArticleDeleted","article_id":"a1","version":3,"occurred_at":"2026-11-23T10:00:00Z"}`,
		`{"id":"e3","type":"ArticleDeleted","article_id":"a1","version":3,"data":null}`,
		`{ "id" : "e4", "TYPE":"ArticleUpdated","Article_ID":"a\u00e9","version":9007199254740993,"data":{ "x" : [1, 2.50, "\ud83d\ude00"] } }`,
		`{"id":"e5","type":"ArticleUpdated","article_id":"a1","version":0}`,
		`{"id":"e5","type":"Nope","article_id":"a1","version":1}`,
		`{"id":"","type":"ArticleCreated","article_id":"a1","version":1}`,
		`{"id":"e6","type":"ArticleCreated","article_id":"a1","version":1,"occurred_at":"0000-01-01T00:00:00-23:59","data":"s"}`,
		`{"id":"e7","type":"ArticleCreated","article_id":"a1","version":1,"occurred_at":"9999-12-31T23:59:59.999999999+00:00","data":1e999}`,
		"{\"id\":\"\xff\",\"type\":\"ArticleCreated\",\"article_id\":\"a\",\"version\":1,\"data\":{\"k\":\"\xfe\"}}",
		`[]`, `null`, `{`, ``, `"x"`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e1, err := events.Decode(b)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
			return
		}
		if e1.ID == "" || e1.ArticleID == "" || e1.Version < 1 {
			t.Fatalf("Decode accepted %+v", e1)
		}
		switch e1.Type {
		case events.ArticleCreated, events.ArticleUpdated, events.ArticleDeleted:
		default:
			t.Fatalf("Decode accepted type %q", e1.Type)
		}
		b1, err := events.Encode(e1)
		if err != nil {
			t.Fatalf("Encode of decoded %+v: %v", e1, err)
		}
		e2, err := events.Decode(b1)
		if err != nil {
			t.Fatalf("Decode of re-encoded %s: %v", b1, err)
		}
		requireSameEnvelope(t, e2, e1)
		// A second round trip is byte for byte stable.
		b2, err := events.Encode(e2)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encodings differ:\n%s\n%s", b1, b2)
		}
	})
}

func TestEncodeFastPathMatchesEncodingJSON(t *testing.T) {
	for _, e := range []events.Envelope{
		{ID: "0191e7b0-0000-7000-8000-000000000001", Type: events.ArticleCreated, ArticleID: "0191e7b0-0000-7000-8000-000000000002", Version: 1,
			OccurredAt: time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC), Data: json.RawMessage(`{"title":"T","tags":["a"]}`)},
		{ID: "e", Type: events.ArticleDeleted, ArticleID: "a", Version: 12, OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{ID: "e<&>", Type: events.ArticleUpdated, ArticleID: "ä\"", Version: 2, OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 1, time.FixedZone("X", 3600)), Data: json.RawMessage(`{"status":"published"}`)},
	} {
		got, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Data) == 0 {
			e.Data = json.RawMessage("{}")
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("Encode:\n got %s\nwant %s", got, want)
		}
	}
}
