package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inkstream/inkstream/pkg/domain"
	"github.com/inkstream/inkstream/pkg/events"
)

var (
	t0  = time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
	cet = time.FixedZone("CET", 3600)
)

// meta returns the meta of the n-th command: event id "evt-n", n minutes after t0.
func meta(n int) domain.Meta {
	return domain.Meta{EventID: "evt-" + strconv.Itoa(n), At: t0.Add(time.Duration(n) * time.Minute)}
}

func intp(v int) *int { return &v }

func str(v string) domain.Value[string] { return domain.Value[string]{Set: true, Value: v} }

func null[T any]() domain.Value[T] { return domain.Value[T]{Set: true, Null: true} }

// decide runs Decide and fails on an error. Every event it returns also
// survives the wire: encoded and decoded, it is the same event.
func decide(tb testing.TB, s domain.State, cmd domain.Command) []domain.Event {
	tb.Helper()
	evs, err := domain.Decide(s, cmd)
	if err != nil {
		tb.Fatalf("Decide(%T): %v", cmd, err)
	}
	for _, e := range evs {
		b, err := events.Encode(e)
		if err != nil {
			tb.Fatalf("Encode: %v", err)
		}
		wire, err := events.Decode(b)
		if err != nil {
			tb.Fatalf("Decode: %v", err)
		}
		if !reflect.DeepEqual(wire, e) {
			tb.Fatalf("event %+v came back from the wire as %+v", e, wire)
		}
	}
	return evs
}

// data is the JSON data of e's change, as its event carries it.
func data(tb testing.TB, e domain.Event) json.RawMessage {
	tb.Helper()
	b, err := events.Data(e.Change)
	if err != nil {
		tb.Fatal(err)
	}
	return json.RawMessage(b)
}

// single requires exactly one event and returns it.
func single(tb testing.TB, evs []domain.Event) domain.Event {
	tb.Helper()
	if len(evs) != 1 {
		tb.Fatalf("got %d events, want 1: %+v", len(evs), evs)
	}
	return evs[0]
}

// fold folds evs and fails on an error.
func fold(tb testing.TB, evs ...domain.Event) domain.State {
	tb.Helper()
	s, err := domain.Fold(evs)
	if err != nil {
		tb.Fatalf("Fold: %v", err)
	}
	return s
}

// created returns the state of an article created from f by a command at meta(1).
func created(tb testing.TB, f domain.Fields) domain.State {
	tb.Helper()
	return fold(tb, single(tb, decide(tb, domain.State{}, domain.CreateArticle{Meta: meta(1), ID: testID, Fields: f})))
}

// atVersion2 returns the state of an article created from validFields and
// then patched once.
func atVersion2(tb testing.TB) domain.State {
	tb.Helper()
	create := single(tb, decide(tb, domain.State{}, domain.CreateArticle{Meta: meta(1), ID: testID, Fields: validFields()}))
	upd := single(tb, decide(tb, fold(tb, create), domain.PatchArticle{Meta: meta(2), ID: testID, Patch: domain.Patch{Content: str("v2")}}))
	s := fold(tb, create, upd)
	if s.Article.Version != 2 {
		tb.Fatalf("setup version = %d, want 2", s.Article.Version)
	}
	return s
}

// deleted returns the state of an article created from validFields and then deleted.
func deleted(tb testing.TB) domain.State {
	tb.Helper()
	create := single(tb, decide(tb, domain.State{}, domain.CreateArticle{Meta: meta(1), ID: testID, Fields: validFields()}))
	del := single(tb, decide(tb, fold(tb, create), domain.DeleteArticle{Meta: meta(2), ID: testID}))
	return fold(tb, create, del)
}

// requireJSON fails unless raw is the same JSON value as want.
func requireJSON(tb testing.TB, raw json.RawMessage, want string) {
	tb.Helper()
	var got, exp any
	if err := json.Unmarshal(raw, &got); err != nil {
		tb.Fatalf("data %s is not JSON: %v", raw, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		tb.Fatalf("want %s is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		tb.Fatalf("data = %s, want %s", raw, want)
	}
}

// requireKind fails unless err matches kind and no events were returned.
func requireKind(tb testing.TB, evs []domain.Event, err, kind error) {
	tb.Helper()
	if !errors.Is(err, kind) {
		tb.Fatalf("err = %v, want %v", err, kind)
	}
	if evs != nil {
		tb.Fatalf("got events %+v with an error", evs)
	}
}

// requireEvent checks the envelope fields every decided event has.
func requireEvent(tb testing.TB, e domain.Event, typ events.Type, version int, m domain.Meta) {
	tb.Helper()
	if events.TypeOf(e.Change) != typ || e.Version != version || e.ID != m.EventID || e.ArticleID != testID || e.Actor != m.Actor {
		tb.Fatalf("event = {type %s, version %d, id %s, article %s, actor %s}, want {%s, %d, %s, %s, %s}",
			events.TypeOf(e.Change), e.Version, e.ID, e.ArticleID, e.Actor, typ, version, m.EventID, testID, m.Actor)
	}
	if !e.At.Equal(m.At) || e.At.Location() != time.UTC {
		tb.Fatalf("at = %v, want %v in UTC", e.At, m.At)
	}
}

func TestDecideCreate(t *testing.T) {
	tests := []struct {
		name   string
		fields domain.Fields
		want   string
	}{
		{
			name:   "full fields",
			fields: validFields(),
			want:   `{"title":"Hello World","slug":"hello-world","content":"Some content.","author_id":"author-1","status":"published","tags":["go","nats"]}`,
		},
		{
			name:   "defaults filled",
			fields: domain.Fields{Title: "  Hello, World!  ", Content: "c", AuthorID: "a"},
			want:   `{"title":"Hello, World!","slug":"hello-world","content":"c","author_id":"a","status":"draft","tags":[]}`,
		},
		{
			name:   "slug falls back to a prefix of the id",
			fields: domain.Fields{Title: "🎉", Content: "c", AuthorID: "a", Tags: []string{}},
			want:   `{"title":"🎉","slug":"` + testID[:8] + `","content":"c","author_id":"a","status":"draft","tags":[]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := domain.Meta{EventID: "evt-create", At: t0.In(cet)}
			e := single(t, decide(t, domain.State{}, domain.CreateArticle{Meta: m, ID: testID, Fields: tt.fields}))
			requireEvent(t, e, events.ArticleCreated, 1, m)
			requireJSON(t, data(t, e), tt.want)
			if e.Change.(domain.ArticleCreated).Fields.Tags == nil {
				t.Errorf("tags are nil, want a list")
			}
		})
	}
}

func TestDecideCreateInvalid(t *testing.T) {
	f := validFields()
	f.Title = "   "
	f.Tags = []string{"x", "x"}
	evs, err := domain.Decide(domain.State{}, domain.CreateArticle{Meta: meta(1), ID: testID, Fields: f})
	requireKind(t, evs, err, domain.ErrInvalid)
	requireInvalid(t, err, "title", "tags")
}

func TestDecideCreateExisting(t *testing.T) {
	tests := []struct {
		name  string
		state func(testing.TB) domain.State
	}{
		{name: "live", state: func(tb testing.TB) domain.State { return created(tb, validFields()) }},
		{name: "deleted", state: deleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := domain.Decide(tt.state(t), domain.CreateArticle{Meta: meta(5), ID: testID, Fields: validFields()})
			requireKind(t, evs, err, domain.ErrConflict)
		})
	}
}

func TestDecideNotFound(t *testing.T) {
	commands := []struct {
		name string
		cmd  domain.Command
	}{
		{name: "replace", cmd: domain.ReplaceArticle{Meta: meta(5), ID: testID, Fields: validFields()}},
		{name: "replace if-match", cmd: domain.ReplaceArticle{Meta: meta(5), ID: testID, Fields: validFields(), IfMatch: intp(2)}},
		{name: "patch", cmd: domain.PatchArticle{Meta: meta(5), ID: testID, Patch: domain.Patch{Title: str("x")}}},
		{name: "patch if-match", cmd: domain.PatchArticle{Meta: meta(5), ID: testID, IfMatch: intp(1)}},
		{name: "delete", cmd: domain.DeleteArticle{Meta: meta(5), ID: testID}},
		{name: "delete if-match", cmd: domain.DeleteArticle{Meta: meta(5), ID: testID, IfMatch: intp(2)}},
	}
	states := []struct {
		name  string
		state func(testing.TB) domain.State
	}{
		{name: "missing", state: func(testing.TB) domain.State { return domain.State{} }},
		{name: "deleted", state: deleted},
	}
	for _, st := range states {
		for _, c := range commands {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				evs, err := domain.Decide(st.state(t), c.cmd)
				requireKind(t, evs, err, domain.ErrNotFound)
				if errors.Is(err, domain.ErrPreconditionFailed) || errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("err = %v, want only ErrNotFound", err)
				}
			})
		}
	}
}

func TestDecidePrecondition(t *testing.T) {
	changed := validFields()
	changed.Title = "Changed"
	tests := []struct {
		name    string
		cmd     func(ifMatch *int) domain.Command
		wantTyp events.Type
	}{
		{
			name: "replace",
			cmd: func(m *int) domain.Command {
				return domain.ReplaceArticle{Meta: meta(5), ID: testID, Fields: changed, IfMatch: m}
			},
			wantTyp: events.ArticleUpdated,
		},
		{
			name: "patch",
			cmd: func(m *int) domain.Command {
				return domain.PatchArticle{Meta: meta(5), ID: testID, Patch: domain.Patch{Title: str("Changed")}, IfMatch: m}
			},
			wantTyp: events.ArticleUpdated,
		},
		{
			name:    "delete",
			cmd:     func(m *int) domain.Command { return domain.DeleteArticle{Meta: meta(5), ID: testID, IfMatch: m} },
			wantTyp: events.ArticleDeleted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := atVersion2(t)

			for _, stale := range []int{0, 1, 3, -1} {
				evs, err := domain.Decide(s, tt.cmd(intp(stale)))
				requireKind(t, evs, err, domain.ErrPreconditionFailed)
				var pe *domain.PreconditionError
				if !errors.As(err, &pe) {
					t.Fatalf("errors.As(%v, *PreconditionError) = false", err)
				}
				if pe.Expected != stale || pe.Actual != 2 {
					t.Fatalf("PreconditionError = %+v, want Expected %d Actual 2", pe, stale)
				}
				if !strings.Contains(pe.Error(), "2") {
					t.Errorf("Error() = %q does not name the actual version", pe.Error())
				}
			}

			for _, m := range []*int{intp(2), nil} {
				e := single(t, decide(t, s, tt.cmd(m)))
				requireEvent(t, e, tt.wantTyp, 3, meta(5))
			}
		})
	}
}

func TestDecideReplace(t *testing.T) {
	base := validFields() // slug hello-world, status published, tags go,nats
	tests := []struct {
		name   string
		mutate func(f *domain.Fields)
		want   string // JSON of the changes; empty means no event
	}{
		{name: "identical", mutate: func(*domain.Fields) {}},
		{name: "absent slug derives the same slug", mutate: func(f *domain.Fields) { f.Slug = "" }},
		{name: "padded title trims to the same", mutate: func(f *domain.Fields) { f.Title = "  Hello World \n" }},
		{name: "same tags as a new slice", mutate: func(f *domain.Fields) { f.Tags = []string{"go", "nats"} }},
		{name: "title with explicit slug", mutate: func(f *domain.Fields) { f.Title = "New Title" }, want: `{"title":"New Title"}`},
		{name: "title with derived slug", mutate: func(f *domain.Fields) { f.Title = "New Title"; f.Slug = "" }, want: `{"title":"New Title","slug":"new-title"}`},
		{name: "slug only", mutate: func(f *domain.Fields) { f.Slug = "other" }, want: `{"slug":"other"}`},
		{name: "content only", mutate: func(f *domain.Fields) { f.Content = "new" }, want: `{"content":"new"}`},
		{name: "author only", mutate: func(f *domain.Fields) { f.AuthorID = "someone" }, want: `{"author_id":"someone"}`},
		{name: "status only", mutate: func(f *domain.Fields) { f.Status = domain.StatusUnderReview }, want: `{"status":"under_review"}`},
		{name: "absent status resets to draft", mutate: func(f *domain.Fields) { f.Status = "" }, want: `{"status":"draft"}`},
		{name: "tags reordered", mutate: func(f *domain.Fields) { f.Tags = []string{"nats", "go"} }, want: `{"tags":["nats","go"]}`},
		{name: "absent tags become empty", mutate: func(f *domain.Fields) { f.Tags = nil }, want: `{"tags":[]}`},
		{name: "tags emptied", mutate: func(f *domain.Fields) { f.Tags = []string{} }, want: `{"tags":[]}`},
		{
			name: "everything",
			mutate: func(f *domain.Fields) {
				*f = domain.Fields{Title: "T", Slug: "s", Content: "c", AuthorID: "a", Status: domain.StatusDraft, Tags: []string{"x"}}
			},
			want: `{"title":"T","slug":"s","content":"c","author_id":"a","status":"draft","tags":["x"]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := created(t, base)
			f := validFields()
			tt.mutate(&f)
			m := meta(3)
			evs, err := domain.Decide(s, domain.ReplaceArticle{Meta: m, ID: testID, Fields: f, IfMatch: intp(1)})
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if tt.want == "" {
				if len(evs) != 0 {
					t.Fatalf("no change produced %d events: %+v", len(evs), evs[0])
				}
				return
			}
			e := single(t, evs)
			requireEvent(t, e, events.ArticleUpdated, 2, m)
			requireJSON(t, data(t, e), tt.want)

			// The event applied to the state gives the normalized replacement.
			next, err := domain.Apply(s, e)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			requireFieldsEqual(t, next.Article.Fields, f.Normalize(testID))
		})
	}
}

func TestDecideReplaceInvalid(t *testing.T) {
	s := created(t, validFields())
	f := validFields()
	f.Content = ""
	f.Slug = "a--b"
	evs, err := domain.Decide(s, domain.ReplaceArticle{Meta: meta(3), ID: testID, Fields: f})
	requireKind(t, evs, err, domain.ErrInvalid)
	requireInvalid(t, err, "content", "slug")
}

func TestDecidePatch(t *testing.T) {
	base := domain.Fields{
		Title: "Hello World", Slug: "custom-slug", Content: "body", AuthorID: "author-1",
		Status: domain.StatusPublished, Tags: []string{"go", "nats"},
	}
	tests := []struct {
		name    string
		base    func() domain.Fields
		patch   domain.Patch
		want    string   // JSON of the changes; empty means no event
		invalid []string // invalid field keys
	}{
		{name: "empty patch", patch: domain.Patch{}},
		{name: "same values", patch: domain.Patch{Title: str("Hello World"), Status: domain.Value[domain.Status]{Set: true, Value: domain.StatusPublished}, Tags: domain.Value[[]string]{Set: true, Value: []string{"go", "nats"}}}},
		{name: "absent slug is kept when the title changes", patch: domain.Patch{Title: str("New Title")}, want: `{"title":"New Title"}`},
		{name: "title is trimmed", patch: domain.Patch{Title: str("  Padded  ")}, want: `{"title":"Padded"}`},
		{name: "content", patch: domain.Patch{Content: str("new body")}, want: `{"content":"new body"}`},
		{name: "author", patch: domain.Patch{AuthorID: str("author-2")}, want: `{"author_id":"author-2"}`},
		{name: "status", patch: domain.Patch{Status: domain.Value[domain.Status]{Set: true, Value: domain.StatusUnderReview}}, want: `{"status":"under_review"}`},
		{name: "tags", patch: domain.Patch{Tags: domain.Value[[]string]{Set: true, Value: []string{"a"}}}, want: `{"tags":["a"]}`},
		{name: "tags emptied", patch: domain.Patch{Tags: domain.Value[[]string]{Set: true, Value: []string{}}}, want: `{"tags":[]}`},
		{name: "slug value", patch: domain.Patch{Slug: str("other-slug")}, want: `{"slug":"other-slug"}`},
		{name: "null slug is derived from the title", patch: domain.Patch{Slug: null[string]()}, want: `{"slug":"hello-world"}`},
		{name: "null slug is derived from the new title", patch: domain.Patch{Title: str("New Title"), Slug: null[string]()}, want: `{"title":"New Title","slug":"new-title"}`},
		{name: "null slug falls back to a prefix of the id", base: func() domain.Fields { f := base; f.Title = "🎉"; return f }, patch: domain.Patch{Slug: null[string]()}, want: `{"slug":"` + testID[:8] + `"}`},
		{name: "null slug unchanged when already derived", base: func() domain.Fields { f := base; f.Slug = "hello-world"; return f }, patch: domain.Patch{Slug: null[string]()}},
		{name: "null status resets to draft", patch: domain.Patch{Status: null[domain.Status]()}, want: `{"status":"draft"}`},
		{name: "null status on a draft", base: func() domain.Fields { f := base; f.Status = domain.StatusDraft; return f }, patch: domain.Patch{Status: null[domain.Status]()}},
		{name: "null tags reset to empty", patch: domain.Patch{Tags: null[[]string]()}, want: `{"tags":[]}`},
		{name: "null tags when empty", base: func() domain.Fields { f := base; f.Tags = nil; return f }, patch: domain.Patch{Tags: null[[]string]()}},
		{name: "null title", patch: domain.Patch{Title: null[string]()}, invalid: []string{"title"}},
		{name: "null content", patch: domain.Patch{Content: null[string]()}, invalid: []string{"content"}},
		{name: "null author", patch: domain.Patch{AuthorID: null[string]()}, invalid: []string{"author_id"}},
		{name: "blank title", patch: domain.Patch{Title: str(" \t ")}, invalid: []string{"title"}},
		{name: "bad status", patch: domain.Patch{Status: domain.Value[domain.Status]{Set: true, Value: "archived"}}, invalid: []string{"status"}},
		{name: "bad slug", patch: domain.Patch{Slug: str("-a")}, invalid: []string{"slug"}},
		{name: "bad tag", patch: domain.Patch{Tags: domain.Value[[]string]{Set: true, Value: []string{"ok", "NO"}}}, invalid: []string{"tags[1]"}},
		{name: "several broken", patch: domain.Patch{Title: null[string](), AuthorID: str("  "), Tags: domain.Value[[]string]{Set: true, Value: tagList(11)}}, invalid: []string{"title", "author_id", "tags"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base
			if tt.base != nil {
				f = tt.base()
			}
			s := created(t, f)
			before := s.Article.Fields
			before.Tags = slices.Clone(before.Tags)
			m := meta(4)
			evs, err := domain.Decide(s, domain.PatchArticle{Meta: m, ID: testID, Patch: tt.patch})
			requireFieldsEqual(t, s.Article.Fields, before) // Decide does not touch the state
			if tt.invalid != nil {
				requireKind(t, evs, err, domain.ErrInvalid)
				requireInvalid(t, err, tt.invalid...)
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if tt.want == "" {
				if len(evs) != 0 {
					t.Fatalf("no change produced %d events: %+v", len(evs), evs[0])
				}
				return
			}
			e := single(t, evs)
			requireEvent(t, e, events.ArticleUpdated, 2, m)
			requireJSON(t, data(t, e), tt.want)
		})
	}
}

func TestDecideDelete(t *testing.T) {
	s := atVersion2(t)
	m := domain.Meta{EventID: "evt-del", At: t0.Add(time.Hour).In(cet)}
	e := single(t, decide(t, s, domain.DeleteArticle{Meta: m, ID: testID}))
	requireEvent(t, e, events.ArticleDeleted, 3, m)
	if e.Change != (domain.ArticleDeleted{}) {
		t.Fatalf("change = %+v, want a tombstone", e.Change)
	}
}

// otherCommand satisfies Command by embedding but is none of the known commands.
type otherCommand struct{ domain.DeleteArticle }

func TestDecideUnknownCommand(t *testing.T) {
	for _, cmd := range []domain.Command{nil, otherCommand{}} {
		evs, err := domain.Decide(created(t, validFields()), cmd)
		requireKind(t, evs, err, domain.ErrInvalid)
	}
}

func TestDecideIsDeterministic(t *testing.T) {
	s := created(t, validFields())
	cmd := domain.PatchArticle{Meta: meta(3), ID: testID, Patch: domain.Patch{Title: str("Again"), Slug: null[string]()}}
	a, b := decide(t, s, cmd), decide(t, s, cmd)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Decide gave %+v then %+v", a, b)
	}
}

func TestDecideCommandTagsNotAliased(t *testing.T) {
	tags := []string{"go"}
	f := validFields()
	f.Tags = tags
	e := single(t, decide(t, domain.State{}, domain.CreateArticle{Meta: meta(1), ID: testID, Fields: f}))
	tags[0] = "changed"
	s := fold(t, e)
	if !slices.Equal(s.Article.Tags, []string{"go"}) {
		t.Fatalf("tags = %v, want [go]", s.Article.Tags)
	}
}

func TestStateExistsLive(t *testing.T) {
	tests := []struct {
		name         string
		state        func(testing.TB) domain.State
		exists, live bool
	}{
		{name: "empty", state: func(testing.TB) domain.State { return domain.State{} }},
		{name: "created", state: func(tb testing.TB) domain.State { return created(tb, validFields()) }, exists: true, live: true},
		{name: "deleted", state: deleted, exists: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.state(t)
			if s.Exists() != tt.exists || s.Live() != tt.live {
				t.Fatalf("Exists, Live = %v, %v; want %v, %v", s.Exists(), s.Live(), tt.exists, tt.live)
			}
		})
	}
}

// ev builds an event of the test article by hand.
func ev(version int, at time.Time, c domain.Change) domain.Event {
	return domain.Event{ID: "evt-hand", ArticleID: testID, Version: version, At: at, Change: c}
}

func TestFoldLifecycle(t *testing.T) {
	t1, t2, t3, t4 := t0, t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	create := single(t, decide(t, domain.State{}, domain.CreateArticle{Meta: domain.Meta{EventID: "e1", At: t1.In(cet)}, ID: testID, Fields: validFields()}))
	s1 := fold(t, create)
	upd1 := single(t, decide(t, s1, domain.PatchArticle{Meta: domain.Meta{EventID: "e2", At: t2}, ID: testID, Patch: domain.Patch{Title: str("Second"), Slug: null[string]()}}))
	s2 := fold(t, create, upd1)
	upd2 := single(t, decide(t, s2, domain.ReplaceArticle{Meta: domain.Meta{EventID: "e3", At: t3}, ID: testID, Fields: domain.Fields{Title: "Second", Slug: "second", Content: "third", AuthorID: "author-1", Tags: []string{"x"}}}))
	s3 := fold(t, create, upd1, upd2)
	del := single(t, decide(t, s3, domain.DeleteArticle{Meta: domain.Meta{EventID: "e4", At: t4}, ID: testID}))

	steps := []struct {
		name    string
		evs     []domain.Event
		want    domain.Fields
		version int
		updated time.Time
		deleted bool
	}{
		{name: "created", evs: []domain.Event{create}, want: validFields(), version: 1, updated: t1},
		{
			name: "updated", evs: []domain.Event{create, upd1}, version: 2, updated: t2,
			want: domain.Fields{Title: "Second", Slug: "second", Content: "Some content.", AuthorID: "author-1", Status: domain.StatusPublished, Tags: []string{"go", "nats"}},
		},
		{
			name: "replaced", evs: []domain.Event{create, upd1, upd2}, version: 3, updated: t3,
			want: domain.Fields{Title: "Second", Slug: "second", Content: "third", AuthorID: "author-1", Status: domain.StatusDraft, Tags: []string{"x"}},
		},
		{
			name: "deleted", evs: []domain.Event{create, upd1, upd2, del}, version: 4, updated: t4, deleted: true,
			want: domain.Fields{Title: "Second", Slug: "second", Content: "third", AuthorID: "author-1", Status: domain.StatusDraft, Tags: []string{"x"}},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			s := fold(t, st.evs...)
			a := s.Article
			if a.ID != testID || a.Version != st.version || s.Deleted != st.deleted {
				t.Fatalf("id, version, deleted = %s, %d, %v; want %s, %d, %v", a.ID, a.Version, s.Deleted, testID, st.version, st.deleted)
			}
			requireFieldsEqual(t, a.Fields, st.want)
			if !a.CreatedAt.Equal(t1) || a.CreatedAt.Location() != time.UTC {
				t.Errorf("created_at = %v, want %v UTC", a.CreatedAt, t1)
			}
			if !a.UpdatedAt.Equal(st.updated) || a.UpdatedAt.Location() != time.UTC {
				t.Errorf("updated_at = %v, want %v UTC", a.UpdatedAt, st.updated)
			}
		})
	}
}

func TestFoldEmpty(t *testing.T) {
	s := fold(t)
	if !reflect.DeepEqual(s, domain.State{}) {
		t.Fatalf("Fold(nil) = %+v, want the zero state", s)
	}
}

func TestFoldStopsAtFirstError(t *testing.T) {
	data := domain.ArticleCreated{Fields: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "draft"}}
	evs := []domain.Event{
		ev(1, t0, data),
		ev(3, t0, domain.ArticleUpdated{}),
		ev(2, t0, domain.ArticleUpdated{}),
	}
	s, err := domain.Fold(evs)
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if s.Article.Version != 1 {
		t.Fatalf("state version = %d, want 1 (the last good one)", s.Article.Version)
	}
}

func TestApplyErrors(t *testing.T) {
	data := domain.ArticleCreated{Fields: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "draft", Tags: []string{"x"}}}
	change := domain.ArticleUpdated{Changes: domain.Changes{Title: new("changed")}}
	createdV1 := func(tb testing.TB) domain.State {
		return fold(tb, ev(1, t0, data))
	}
	deletedV2 := func(tb testing.TB) domain.State {
		return fold(tb, ev(1, t0, data), ev(2, t0, domain.ArticleDeleted{}))
	}
	empty := func(testing.TB) domain.State { return domain.State{} }

	tests := []struct {
		name  string
		state func(testing.TB) domain.State
		event func(testing.TB) domain.Event
		want  error
	}{
		{name: "create at version 2 on empty", state: empty, event: func(tb testing.TB) domain.Event { return ev(2, t0, data) }, want: domain.ErrConflict},
		{name: "create at version 0 on empty", state: empty, event: func(tb testing.TB) domain.Event { return ev(0, t0, data) }, want: domain.ErrConflict},
		{name: "create repeated", state: createdV1, event: func(tb testing.TB) domain.Event { return ev(1, t0, data) }, want: domain.ErrConflict},
		{name: "create as next version", state: createdV1, event: func(tb testing.TB) domain.Event { return ev(2, t0, data) }, want: domain.ErrConflict},
		{name: "create after delete", state: deletedV2, event: func(tb testing.TB) domain.Event { return ev(3, t0, data) }, want: domain.ErrConflict},
		{name: "update repeated", state: createdV1, event: func(tb testing.TB) domain.Event { return ev(1, t0, change) }, want: domain.ErrConflict},
		{name: "update gap", state: createdV1, event: func(tb testing.TB) domain.Event { return ev(3, t0, change) }, want: domain.ErrConflict},
		{name: "delete gap", state: createdV1, event: func(tb testing.TB) domain.Event { return ev(5, t0, domain.ArticleDeleted{}) }, want: domain.ErrConflict},
		{name: "delete repeated", state: deletedV2, event: func(tb testing.TB) domain.Event { return ev(2, t0, domain.ArticleDeleted{}) }, want: domain.ErrConflict},
		{
			name: "other article", state: createdV1,
			event: func(tb testing.TB) domain.Event {
				e := ev(2, t0, change)
				e.ArticleID = "someone-else"
				return e
			},
			want: domain.ErrConflict,
		},
		{
			name: "unknown type", state: createdV1,
			event: func(tb testing.TB) domain.Event { return ev(2, t0, archived{}) },
			want:  domain.ErrConflict,
		},
		{name: "update before create", state: empty, event: func(tb testing.TB) domain.Event { return ev(1, t0, change) }, want: domain.ErrNotFound},
		{name: "delete before create", state: empty, event: func(tb testing.TB) domain.Event { return ev(1, t0, domain.ArticleDeleted{}) }, want: domain.ErrNotFound},
		{name: "update after delete", state: deletedV2, event: func(tb testing.TB) domain.Event { return ev(3, t0, change) }, want: domain.ErrNotFound},
		{name: "delete after delete", state: deletedV2, event: func(tb testing.TB) domain.Event { return ev(3, t0, domain.ArticleDeleted{}) }, want: domain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.state(t)
			next, err := domain.Apply(s, tt.event(t))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(next, s) {
				t.Fatalf("Apply changed the state on error: %+v, was %+v", next, s)
			}
		})
	}
}

func TestApplyCreatedNullTags(t *testing.T) {
	s := fold(t, ev(1, t0, domain.ArticleCreated{Fields: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "draft"}}))
	if s.Article.Tags == nil || len(s.Article.Tags) != 0 {
		t.Fatalf("tags = %#v, want an empty list", s.Article.Tags)
	}
}

func TestApplyUpdatedOnlyNamedFields(t *testing.T) {
	data := domain.ArticleCreated{Fields: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "published", Tags: []string{"x"}}}
	tests := []struct {
		name string
		data string
		want domain.Fields
	}{
		{name: "nothing", data: `{}`, want: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "published", Tags: []string{"x"}}},
		{name: "title", data: `{"title":"T"}`, want: domain.Fields{Title: "T", Slug: "t", Content: "c", AuthorID: "a", Status: "published", Tags: []string{"x"}}},
		{name: "status and tags", data: `{"status":"draft","tags":["a","b"]}`, want: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "draft", Tags: []string{"a", "b"}}},
		{name: "tags emptied", data: `{"tags":[]}`, want: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "published", Tags: []string{}}},
		{name: "all", data: `{"title":"1","slug":"2","content":"3","author_id":"4","status":"under_review","tags":["5"]}`, want: domain.Fields{Title: "1", Slug: "2", Content: "3", AuthorID: "4", Status: "under_review", Tags: []string{"5"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := t0.Add(time.Hour).In(cet)
			upd, err := events.Decode([]byte(`{"id":"e2","type":"ArticleUpdated","article_id":"` + testID + `","version":2,"occurred_at":"` +
				at.Format(time.RFC3339Nano) + `","data":` + tt.data + `}`))
			if err != nil {
				t.Fatal(err)
			}
			s := fold(t, ev(1, t0, data), upd)
			requireFieldsEqual(t, s.Article.Fields, tt.want)
			if s.Article.Tags == nil {
				t.Error("tags are nil, want a list")
			}
			if s.Article.Version != 2 || !s.Article.CreatedAt.Equal(t0) || !s.Article.UpdatedAt.Equal(at) || s.Article.UpdatedAt.Location() != time.UTC {
				t.Fatalf("version %d created %v updated %v", s.Article.Version, s.Article.CreatedAt, s.Article.UpdatedAt)
			}
		})
	}
}

func TestApplyDoesNotAliasTags(t *testing.T) {
	data := domain.ArticleCreated{Fields: domain.Fields{Title: "t", Slug: "t", Content: "c", AuthorID: "a", Status: "draft", Tags: []string{"one", "two"}}}
	tests := []struct {
		name  string
		event domain.Event
	}{
		{name: "update without tags", event: ev(2, t0, domain.ArticleUpdated{Changes: domain.Changes{Title: new("T")}})},
		{name: "update with tags", event: ev(2, t0, domain.ArticleUpdated{Changes: domain.Changes{Tags: &[]string{"one", "two", "three"}}})},
		{name: "delete", event: ev(2, t0, domain.ArticleDeleted{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := fold(t, ev(1, t0, data))
			prev.Article.Tags = append(make([]string, 0, 8), prev.Article.Tags...) // spare capacity invites aliasing
			next, err := domain.Apply(prev, tt.event)
			if err != nil {
				t.Fatal(err)
			}
			next.Article.Tags[0] = "mutated"
			_ = append(next.Article.Tags[:1], "appended")
			if !slices.Equal(prev.Article.Tags, []string{"one", "two"}) {
				t.Fatalf("previous tags changed to %v through the next state", prev.Article.Tags)
			}
			prev.Article.Tags[1] = "again"
			if slices.Contains(next.Article.Tags, "again") {
				t.Fatalf("next tags %v changed through the previous state", next.Article.Tags)
			}
		})
	}
}

func TestDecideEncodeDecodeApply(t *testing.T) {
	// The events Decide produces survive the wire and fold to the same state.
	s := domain.State{}
	cmds := []domain.Command{
		domain.CreateArticle{Meta: meta(1), ID: testID, Fields: validFields()},
		domain.PatchArticle{Meta: meta(2), ID: testID, Patch: domain.Patch{Tags: null[[]string](), Slug: str("x-y")}},
		domain.ReplaceArticle{Meta: meta(3), ID: testID, Fields: domain.Fields{Title: "R", Content: "c", AuthorID: "b", Status: domain.StatusUnderReview, Tags: []string{"t"}}},
		domain.DeleteArticle{Meta: meta(4), ID: testID},
	}
	var direct, wire []domain.Event
	for _, c := range cmds {
		e := single(t, decide(t, s, c))
		b, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		d, err := events.Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		direct, wire = append(direct, e), append(wire, d)
		s = fold(t, direct...)
	}
	a, b := fold(t, direct...), fold(t, wire...)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("folded from the wire %+v, directly %+v", b, a)
	}
	if !b.Deleted || b.Article.Version != 4 || b.Article.Title != "R" || b.Article.Slug != "r" {
		t.Fatalf("final state %+v", b)
	}
}

// archived is a change that is none of the known ones.
type archived struct{ domain.ArticleDeleted }

func TestDecideErase(t *testing.T) {
	for _, st := range []struct {
		name  string
		state func(testing.TB) domain.State
	}{{"live", atVersion2}, {"deleted", deleted}} {
		t.Run(st.name, func(t *testing.T) {
			s := st.state(t)
			e := single(t, decide(t, s, domain.EraseArticle{Meta: meta(9), ID: testID}))
			requireEvent(t, e, events.ArticleErased, s.Article.Version+1, meta(9))
			erased := fold(t, ev(s.Article.Version+1, t0, domain.ArticleErased{}))
			if !erased.Erased || !erased.Deleted || erased.Article.Title != "" || erased.Article.Version != s.Article.Version+1 {
				t.Fatalf("erased state %+v", erased)
			}
			// Erasing again decides nothing: the rest of an erasure may run again.
			if evs, err := domain.Decide(erased, domain.EraseArticle{Meta: meta(10), ID: testID}); err != nil || len(evs) != 0 {
				t.Fatalf("erase of an erased article: %v %v", evs, err)
			}
			// And nothing else can be done to it.
			evs, err := domain.Decide(erased, domain.PatchArticle{Meta: meta(10), ID: testID, Patch: domain.Patch{Title: str("back")}})
			requireKind(t, evs, err, domain.ErrNotFound)
		})
	}
	evs, err := domain.Decide(domain.State{}, domain.EraseArticle{Meta: meta(1), ID: testID})
	requireKind(t, evs, err, domain.ErrNotFound)
}
