package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

const articleID = "0196f4a2-7c3e-7d4b-9a10-3f2e1d0c9b8a"

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)

func TestSubject(t *testing.T) {
	tests := []struct {
		change domain.Change
		want   string
	}{
		{change: domain.ArticleCreated{}, want: "articles." + articleID + ".created"},
		{change: domain.ArticleUpdated{}, want: "articles." + articleID + ".updated"},
		{change: domain.ArticleDeleted{}, want: "articles." + articleID + ".deleted"},
		{change: domain.ArticleErased{}, want: "articles." + articleID + ".erased"},
		{change: nil, want: "articles." + articleID + ".unknown"},
	}
	for _, tt := range tests {
		got := events.SubjectOf(domain.Event{ArticleID: articleID, Change: tt.change})
		if got != tt.want {
			t.Errorf("SubjectOf(%T) = %q, want %q", tt.change, got, tt.want)
		}
		if id, ok := events.ArticleIDFromSubject(got); !ok || id != articleID {
			t.Errorf("ArticleIDFromSubject(%q) = %q, %v", got, id, ok)
		}
		filter := events.ArticleSubjects(articleID)
		if !bytes.HasPrefix([]byte(got), []byte(filter[:len(filter)-1])) {
			t.Errorf("subject %q is outside filter %q", got, filter)
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
		{subject: "articles.abc.unknown", wantID: "abc", wantOK: true},
		{subject: "articles.abc.created.extra", wantID: "abc", wantOK: true},
		{subject: "articles.abc"},
		{subject: "articles..created"},
		{subject: "articles."},
		{subject: ""},
		{subject: "comments.abc.created"},
		{subject: "articlesx.abc.created"},
		{subject: "Articles.abc.created"},
	}
	for _, tt := range tests {
		id, ok := events.ArticleIDFromSubject(tt.subject)
		if ok != tt.wantOK || (ok && id != tt.wantID) {
			t.Errorf("ArticleIDFromSubject(%q) = %q, %v; want %q, %v", tt.subject, id, ok, tt.wantID, tt.wantOK)
		}
	}
}

func event(version int, at time.Time, c domain.Change) domain.Event {
	return domain.Event{ID: "evt-1", ArticleID: articleID, Version: version, At: at, Actor: "ada", Change: c}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	title, tags, status := "New", []string{"a", "b"}, domain.StatusPublished
	tests := []struct {
		name string
		e    domain.Event
	}{
		{name: "created", e: event(1, t0, domain.ArticleCreated{Fields: domain.Fields{
			Title: "Hello <World> & \"friends\" 日本語 😀", Slug: "hello-world", Content: "line\nline\u2028",
			AuthorID: "a", Status: domain.StatusDraft, Tags: []string{"go"},
		}})},
		{name: "updated", e: event(7, t0, domain.ArticleUpdated{Changes: domain.Changes{Title: &title, Tags: &tags, Status: &status}})},
		{name: "deleted", e: event(8, t0, domain.ArticleDeleted{})},
		{name: "erased", e: event(9, t0, domain.ArticleErased{})},
		{name: "large version", e: event(1<<40, t0, domain.ArticleUpdated{})},
		{name: "nanoseconds", e: event(2, time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), domain.ArticleDeleted{})},
		{name: "escaped actor", e: domain.Event{ID: "e", ArticleID: "x", Version: 3, At: t0, Actor: `"<ada>"`, Change: domain.ArticleDeleted{}}},
		{name: "no actor", e: domain.Event{ID: "e", ArticleID: "x", Version: 3, At: t0, Change: domain.ArticleDeleted{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := events.Encode(tt.e)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := events.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.e) {
				t.Fatalf("round trip of %s\n got %+v\nwant %+v", b, got, tt.e)
			}
		})
	}
}

func TestEncodeShape(t *testing.T) {
	e := event(1, t0.In(time.FixedZone("CET", 3600)),
		domain.ArticleCreated{Fields: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: domain.StatusDraft, Tags: []string{}}})
	b, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt-1","type":"ArticleCreated","article_id":"` + articleID + `","version":1,` +
		`"occurred_at":"2026-11-23T10:00:00.123456Z","actor":"ada",` +
		`"data":{"title":"t","slug":"t","content":"c","author_id":"a","status":"draft","tags":[]}}`
	if string(b) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", b, want)
	}
}

// TestEncodeFastPathMatchesEncodingJSON checks the hand-written envelope
// against encoding/json's encoding of the same envelope.
func TestEncodeFastPathMatchesEncodingJSON(t *testing.T) {
	for _, e := range []domain.Event{
		event(1, t0, domain.ArticleCreated{Fields: domain.Fields{Title: "T", Tags: []string{"a"}}}),
		{ID: "e", ArticleID: "a", Version: 12, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Change: domain.ArticleDeleted{}},
		{ID: "e<&>", ArticleID: "ä\"", Version: 2, At: time.Date(2026, 1, 2, 3, 4, 5, 1, time.FixedZone("X", 3600)), Actor: "&", Change: domain.ArticleUpdated{}},
	} {
		got, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		data, err := events.Data(e.Change)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(events.Envelope{ID: e.ID, Type: events.TypeOf(e.Change), ArticleID: e.ArticleID, Version: e.Version, OccurredAt: e.At.UTC(), Actor: e.Actor, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("Encode:\n got %s\nwant %s", got, want)
		}
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name, in string
		want     domain.Event
	}{
		{
			name: "update",
			in:   `{"id":"e1","type":"ArticleUpdated","article_id":"a1","version":2,"occurred_at":"2026-11-23T10:00:00.123456Z","data":{"title":"x"}}`,
			want: domain.Event{ID: "e1", ArticleID: "a1", Version: 2, At: t0, Change: domain.ArticleUpdated{Changes: domain.Changes{Title: new("x")}}},
		},
		{
			name: "offset time is read as UTC",
			in:   `{"id":"e1","type":"ArticleDeleted","article_id":"a1","version":3,"occurred_at":"2026-11-23T11:00:00.123456+01:00","data":{}}`,
			want: domain.Event{ID: "e1", ArticleID: "a1", Version: 3, At: t0, Change: domain.ArticleDeleted{}},
		},
		{
			name: "a delete without data",
			in:   `{"id":"e1","type":"ArticleDeleted","article_id":"a1","version":3,"occurred_at":"2026-11-23T10:00:00.123456Z"}`,
			want: domain.Event{ID: "e1", ArticleID: "a1", Version: 3, At: t0, Change: domain.ArticleDeleted{}},
		},
		{
			name: "unknown fields are ignored",
			in:   `{"id":"e1","type":"ArticleCreated","article_id":"a1","version":1,"occurred_at":"2026-11-23T10:00:00.123456Z","data":{"tags":null},"extra":true}`,
			want: domain.Event{ID: "e1", ArticleID: "a1", Version: 1, At: t0, Change: domain.ArticleCreated{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %+v, want %+v", got, tt.want)
			}
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
	tests := []struct{ name, in string }{
		{name: "empty input", in: ""},
		{name: "bad json", in: `{"id":`},
		{name: "not an object", in: `[1,2]`},
		{name: "null", in: `null`},
		{name: "empty object", in: `{}`},
		{name: "trailing garbage", in: with("id", "e1") + `x`},
		{name: "unknown type", in: with("type", "ArticleArchived")},
		{name: "lower-case type", in: with("type", "articlecreated")},
		{name: "missing id", in: with("id", nil)},
		{name: "missing article_id", in: with("article_id", nil)},
		{name: "version 0", in: with("version", 0)},
		{name: "fractional version", in: with("version", 1.5)},
		{name: "string version", in: with("version", "1")},
		{name: "bad time", in: with("occurred_at", "yesterday")},
		{name: "create without data", in: with("data", nil)},
		{name: "created data not an object", in: with("data", []int{1})},
		{name: "a field of the wrong type", in: with("data", map[string]any{"title": 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.Decode([]byte(tt.in))
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode(%s) err = %v, want ErrMalformed", tt.in, err)
			}
			if !reflect.DeepEqual(got, domain.Event{}) {
				t.Fatalf("Decode returned %+v with an error", got)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"id":"e1","type":"ArticleCreated","article_id":"a1","version":1,"occurred_at":"2026-11-23T10:00:00.123456Z","actor":"ada","data":{"title":"t","slug":"t","content":"c","author_id":"a","status":"draft","tags":[]}}`,
		`{"id":"e2","type":"ArticleUpdated","article_id":"a1","version":2,"occurred_at":"2026-11-23T11:00:00+01:00","data":{"title":"<b>&</b>"}}`,
		`{"id":"e3","type":"ArticleDeleted","article_id":"a1","version":3,"occurred_at":"2026-11-23T10:00:00Z","data":{}}`,
		`{"id":"e3","type":"ArticleErased","article_id":"a1","version":3,"data":null}`,
		`{ "id" : "e4", "TYPE":"ArticleUpdated","Article_ID":"a\u00e9","version":9007199254740993,"data":{ "x" : [1, 2.50, "\ud83d\ude00"] } }`,
		`{"id":"e5","type":"Nope","article_id":"a1","version":1}`,
		`{"id":"e6","type":"ArticleCreated","article_id":"a1","version":1,"occurred_at":"0000-01-01T00:00:00-23:59","data":"s"}`,
		"{\"id\":\"\xff\",\"type\":\"ArticleCreated\",\"article_id\":\"a\",\"version\":1,\"data\":{\"title\":\"\xfe\"}}",
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
		if e1.ID == "" || e1.ArticleID == "" || e1.Version < 1 || events.TypeOf(e1.Change) == "" {
			t.Fatalf("Decode accepted %+v", e1)
		}
		b1, err := events.Encode(e1)
		if err != nil {
			t.Fatalf("Encode of decoded %+v: %v", e1, err)
		}
		e2, err := events.Decode(b1)
		if err != nil {
			t.Fatalf("Decode of re-encoded %s: %v", b1, err)
		}
		if !reflect.DeepEqual(e1, e2) {
			t.Fatalf("round trip changed %+v into %+v", e1, e2)
		}
		if b2, err := events.Encode(e2); err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("encodings differ:\n%s\n%s (%v)", b1, b2, err)
		}
	})
}
