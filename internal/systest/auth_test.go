package systest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/inkstream/inkstream/internal/auth"
	"github.com/inkstream/inkstream/internal/auth/authtest"
	"github.com/inkstream/inkstream/internal/natstest"
	"github.com/inkstream/inkstream/internal/systest"
	"github.com/inkstream/inkstream/pkg/domain"
)

// auArticle is a valid body of an article by author.
func auArticle(title, author string, tags ...string) map[string]any {
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{"title": title, "content": "Text of " + title, "author_id": author, "tags": tags}
}

// auRawToken signs an admin's claims with alg and key, as the kit's
// Signer never would.
func auRawToken(tb testing.TB, alg jwa.SignatureAlgorithm, key any) string {
	tb.Helper()
	tok, err := jwt.NewBuilder().Subject("mallory").Claim("roles", []string{"admin"}).
		IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Build()
	if err != nil {
		tb.Fatal(err)
	}
	var b []byte
	if key == nil {
		b, err = jwt.Sign(tok, jwt.WithInsecureNoSignature())
	} else {
		b, err = jwt.Sign(tok, jwt.WithKey(alg, key))
	}
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// auRequire401 fails unless r is a 401 problem that asks for a bearer token.
func auRequire401(tb testing.TB, r systest.Response, what string) {
	tb.Helper()
	if r.Status != http.StatusUnauthorized {
		tb.Fatalf("%s: status %d, want 401; body %s", what, r.Status, r.Body)
	}
	r.RequireProblem(tb, http.StatusUnauthorized, "")
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		tb.Fatalf("%s: WWW-Authenticate %q, want Bearer", what, h)
	}
}

// TestWritesWithoutAValidTokenAre401: no token, a malformed one, an
// expired one, one of an unknown key, alg none, HS256: every write route
// answers 401 with WWW-Authenticate: Bearer, and nothing is written.
func TestWritesWithoutAValidTokenAre401(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	a, _ := s.Create(auArticle("Existing", "ada"))
	stranger := authtest.NewSigner(t)
	unknown, err := stranger.Token(auth.Claims{Subject: "ada", Roles: []string{"admin"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name   string
		header []string
	}{
		{"no token", systest.Anonymous},
		{"malformed", systest.As("not-a-jwt")},
		{"three garbage parts", systest.As("eyJhbGciOiJFZERTQSJ9.e30.AAAA")},
		{"not the Bearer scheme", []string{"Authorization", "Basic YWRhOnNlY3JldA=="}},
		{"Bearer without a token", []string{"Authorization", "Bearer "}},
		{"expired", systest.As(s.TokenWith(auth.Claims{Subject: "ada", Roles: []string{"admin"}, TTL: time.Hour, IssuedAt: time.Now().Add(-2 * time.Hour)}))},
		{"not valid yet", systest.As(s.TokenWith(auth.Claims{Subject: "ada", Roles: []string{"admin"}, TTL: time.Hour, IssuedAt: time.Now().Add(time.Hour)}))},
		{"unknown key", systest.As(unknown)},
		{"alg none", systest.As(auRawToken(t, jwa.NoSignature(), nil))},
		{"HS256", systest.As(auRawToken(t, jwa.HS256(), []byte("a secret that an attacker chose freely")))},
	}
	before := s.StreamMsgs()
	body := auArticle("Intruder", "ada")
	for _, b := range bad {
		for _, w := range []struct {
			method, path string
			body         any
			headers      []string
		}{
			{http.MethodPost, "/api/articles", body, nil},
			{http.MethodPut, "/api/articles/" + a.ID, body, nil},
			{http.MethodPatch, "/api/articles/" + a.ID, `{"status":"published"}`, []string{"Content-Type", systest.MergePatch}},
			{http.MethodDelete, "/api/articles/" + a.ID, nil, nil},
			{http.MethodDelete, "/api/articles/" + uuid.NewString(), nil, nil}, // 401 before any look at the article
		} {
			r := s.Do(w.method, s.Cmd()+w.path, w.body, append(w.headers, b.header...)...)
			auRequire401(t, r, b.name+": "+w.method+" "+w.path)
		}
	}
	if after := s.StreamMsgs(); after != before {
		t.Fatalf("the stream went from %d to %d messages on refused writes", before, after)
	}
	// A bad token is refused on reads too (no token is fine there).
	auRequire401(t, s.Do(http.MethodGet, s.Query()+"/api/articles", nil, systest.As("not-a-jwt")...), "GET with a malformed token")
	s.Do(http.MethodGet, s.Query()+"/api/articles", nil, systest.Anonymous...).Require(t, http.StatusOK)
}

// TestWhoMayWriteWhat: authors write as themselves, change and delete
// only their own articles, move them between draft and review and cannot
// publish; an editor publishes and changes anything.
func TestWhoMayWriteWhat(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	ada, bob := systest.As(s.Token("ada", "author")), systest.As(s.Token("bob", "author"))
	editor, reader := systest.As(s.Token("eve", "editor")), systest.As(s.Token("zed"))
	patch := func(id, body string, as []string) systest.Response {
		return s.Do(http.MethodPatch, s.Cmd()+"/api/articles/"+id, body, append([]string{"Content-Type", systest.MergePatch}, as...)...)
	}

	// Creating: as oneself, never published; a token without roles cannot write.
	s.Do(http.MethodPost, s.Cmd()+"/api/articles", auArticle("As bob", "bob"), ada...).RequireProblem(t, http.StatusForbidden, "")
	pub := auArticle("Published at once", "ada")
	pub["status"] = "published"
	s.Do(http.MethodPost, s.Cmd()+"/api/articles", pub, ada...).RequireProblem(t, http.StatusForbidden, "")
	s.Do(http.MethodPost, s.Cmd()+"/api/articles", auArticle("Reader", "zed"), reader...).RequireProblem(t, http.StatusForbidden, "")
	a, _ := s.Create(auArticle("Ada's draft", "ada"), ada...)
	bobs, _ := s.Create(auArticle("Bob's draft", "bob"), bob...)
	if a.Status != domain.StatusDraft {
		t.Fatalf("created as %s", a.Status)
	}

	// Bob cannot see ada's draft, so for him it does not exist.
	notFound := s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+uuid.NewString(), nil, bob...)
	notFound.RequireProblem(t, http.StatusNotFound, "")
	for _, r := range []systest.Response{
		s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+a.ID, auArticle("Taken", "bob"), bob...),
		patch(a.ID, `{"title":"Taken"}`, bob),
		patch(a.ID, `{"status":"published"}`, bob),
		s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID, nil, bob...),
		s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID, nil, append([]string{"If-Match", `"99"`}, bob...)...), // not 412
	} {
		r.RequireProblem(t, http.StatusNotFound, "")
		auSameNotFound(t, r, notFound, a.ID)
	}

	// Ada moves her draft to review and back; she cannot publish, give it
	// away, or change bob's.
	a, _ = s.Write(http.MethodPatch, a.ID, `{"status":"under_review"}`, append([]string{"Content-Type", systest.MergePatch}, ada...)...)
	a, _ = s.Write(http.MethodPatch, a.ID, `{"status":"draft","title":"Ada's draft, again"}`, append([]string{"Content-Type", systest.MergePatch}, ada...)...)
	a, _ = s.Write(http.MethodPut, a.ID, map[string]any{"title": "Ada's article", "content": "Ready.", "author_id": "ada", "status": "under_review"}, ada...)
	patch(a.ID, `{"status":"published"}`, ada).RequireProblem(t, http.StatusForbidden, "")
	patch(a.ID, `{"author_id":"bob"}`, ada).RequireProblem(t, http.StatusForbidden, "")
	s.Do(http.MethodPut, s.Cmd()+"/api/articles/"+a.ID, map[string]any{"title": "T", "content": "C", "author_id": "ada", "status": "published"}, ada...).
		RequireProblem(t, http.StatusForbidden, "")
	patch(bobs.ID, `{"title":"Mine now"}`, ada).RequireProblem(t, http.StatusNotFound, "")
	patch(a.ID, `{"title":"x"}`, reader).RequireProblem(t, http.StatusForbidden, "")

	// The editor publishes it; now bob sees it, and may still not touch it.
	a, _ = s.Write(http.MethodPatch, a.ID, `{"status":"published"}`, append([]string{"Content-Type", systest.MergePatch}, editor...)...)
	if a.Status != domain.StatusPublished || a.AuthorID != "ada" {
		t.Fatalf("after the editor's patch: %+v", a)
	}
	patch(a.ID, `{"title":"Bob's now"}`, bob).RequireProblem(t, http.StatusForbidden, "")
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID, nil, bob...).RequireProblem(t, http.StatusForbidden, "")
	// A published article is the editors': ada may not change it, only delete it.
	patch(a.ID, `{"title":"Quietly changed"}`, ada).RequireProblem(t, http.StatusForbidden, "")
	// The editor changes anything: the author too.
	e, _ := s.Write(http.MethodPatch, bobs.ID, `{"author_id":"ada","status":"under_review"}`, append([]string{"Content-Type", systest.MergePatch}, editor...)...)
	if e.AuthorID != "ada" {
		t.Fatalf("editor's change of author: %+v", e)
	}
	// Ada deletes her own; bob's former draft is hers now, and gone for him.
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+a.ID, nil, ada...).Require(t, http.StatusNoContent)
	patch(bobs.ID, `{"title":"Mine"}`, bob).RequireProblem(t, http.StatusNotFound, "")
	s.Do(http.MethodDelete, s.Cmd()+"/api/articles/"+bobs.ID, nil, ada...).Require(t, http.StatusNoContent)

	// Who wrote what: the actor of every event is its writer's sub.
	var actors []string
	for _, se := range s.History(a.ID).Events {
		actors = append(actors, se.Event.Actor)
	}
	if want := []string{"ada", "ada", "ada", "ada", "eve", "ada"}; !slices.Equal(actors, want) {
		t.Fatalf("actors %v, want %v", actors, want)
	}
}

// auSameNotFound fails unless r is the 404 of an id that never existed,
// word for word but the id.
func auSameNotFound(tb testing.TB, r, never systest.Response, id string) {
	tb.Helper()
	var neverID string
	if _, err := fmt.Sscanf(string(never.Body[bytes.Index(never.Body, []byte("article "))+len("article "):]), "%36s", &neverID); err != nil {
		tb.Fatalf("cannot find the id in %s", never.Body)
	}
	want := strings.ReplaceAll(string(never.Body), neverID, id)
	if r.Status != never.Status || string(r.Body) != want {
		tb.Fatalf("not found answered\n%d %s\nbut for an id that never existed\n%d %s", r.Status, r.Body, never.Status, want)
	}
}

// TestDraftsAreInvisibleToReaders: a draft does not exist for anonymous
// readers, by id, in any list (any filter, sort and page), in /versions or
// /events; once published it is there, with only its published versions.
func TestDraftsAreInvisibleToReaders(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	ada, bob := systest.As(s.Token("ada", "author")), systest.As(s.Token("bob", "author"))
	editor := systest.As(s.Token("eve", "editor"))
	anon := systest.Anonymous
	mp := func(as []string) []string { return append([]string{"Content-Type", systest.MergePatch}, as...) }

	// Published articles around the draft, in every order, with its tag.
	var visible []string
	var draft string
	for i := range 7 {
		body := auArticle(fmt.Sprintf("Public %d", i), []string{"ada", "bob"}[i%2], "go", fmt.Sprintf("p%d", i))
		body["status"] = "published"
		p, _ := s.Create(body, editor...)
		visible = append(visible, p.ID)
		if i == 3 {
			d, _ := s.Create(auArticle("Public 3b secret draft", "ada", "go", "secret"), ada...)
			draft = d.ID
		}
	}
	s.Write(http.MethodPatch, draft, `{"content":"second draft"}`, mp(ada)...)
	d, _ := s.Write(http.MethodPatch, draft, `{"status":"under_review"}`, mp(ada)...)
	s.WaitArticle(draft, d.Version)

	never := s.Do(http.MethodGet, s.Query()+"/api/articles/"+uuid.NewString(), nil, anon...)
	never.RequireProblem(t, http.StatusNotFound, "")
	hidden := func(what string) {
		t.Helper()
		for _, path := range []string{"", "/versions", "/versions/1", "/versions/3", "/events"} {
			r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+path, nil, anon...)
			r.RequireProblem(t, http.StatusNotFound, "")
			if path == "" || path == "/versions" || path == "/events" {
				auSameNotFound(t, r, never, draft)
			}
			if path == "/events" || path == "" {
				// bob, an author, sees no more than anonymous readers.
				auSameNotFound(t, s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+path, nil, bob...), never, draft)
			}
		}
		// Not even a 304 tells it is there.
		s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft, nil, append([]string{"If-None-Match", "*"}, anon...)...).RequireProblem(t, http.StatusNotFound, "")
		auListsHold(t, s, anon, visible, draft, what)
	}
	hidden("an anonymous reader, draft under review")

	// Its author and editors see it, every version, and the audit trail.
	for _, as := range [][]string{ada, editor} {
		s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft, nil, as...).Require(t, http.StatusOK)
		var vs struct{ Items []domain.Article }
		s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+"/versions", nil, as...).JSON(t, &vs)
		if len(vs.Items) != 3 {
			t.Fatalf("the author sees %d versions, want 3", len(vs.Items))
		}
	}
	auListsHold(t, s, ada, append(slices.Clone(visible), draft), "", "its author")

	// Published by the editor: now everyone sees it, but only the versions
	// that were published.
	p, _ := s.Write(http.MethodPatch, draft, `{"status":"published"}`, mp(editor)...)
	s.WaitArticle(draft, p.Version)
	got := s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft, nil, anon...)
	got.Require(t, http.StatusOK)
	if a := got.Article(t); a.Version != 4 || a.Status != domain.StatusPublished {
		t.Fatalf("anonymous reader got %+v", a)
	}
	var vs struct{ Items []domain.Article }
	s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+"/versions", nil, anon...).JSON(t, &vs)
	if len(vs.Items) != 1 || vs.Items[0].Version != 4 {
		t.Fatalf("anonymous /versions: %+v, want only v4", vs.Items)
	}
	for v := 1; v <= 3; v++ {
		s.Do(http.MethodGet, s.Query()+fmt.Sprintf("/api/articles/%s/versions/%d", draft, v), nil, anon...).RequireProblem(t, http.StatusNotFound, "")
	}
	s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+"/versions/4", nil, anon...).Require(t, http.StatusOK)
	auListsHold(t, s, anon, append(slices.Clone(visible), draft), "", "an anonymous reader, once published")

	// The audit trail: for its author and editors, naming who did what;
	// anonymous readers are asked for a token, other authors refused.
	auRequire401(t, s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+"/events", nil, anon...), "anonymous /events")
	s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+"/events", nil, bob...).RequireProblem(t, http.StatusForbidden, "")
	for _, as := range [][]string{ada, editor} {
		var evs struct {
			Items []struct {
				Type, Actor string
				Version     int
			}
		}
		s.Do(http.MethodGet, s.Query()+"/api/articles/"+draft+"/events", nil, as...).JSON(t, &evs)
		var actors []string
		for _, e := range evs.Items {
			actors = append(actors, e.Actor)
		}
		if want := []string{"ada", "ada", "ada", "eve"}; !slices.Equal(actors, want) {
			t.Fatalf("/events actors %v, want %v", actors, want)
		}
	}

	// Unpublished again: gone for readers once more.
	u, _ := s.Write(http.MethodPatch, draft, `{"status":"draft"}`, mp(editor)...)
	s.WaitArticle(draft, u.Version)
	hidden("an anonymous reader, unpublished")
}

// auListsHold pages through every list a reader can ask for (each filter,
// each sort, pages of 1, 2 and 100) and fails unless the reader sees
// exactly want among the articles of the test, never hidden, and every
// page but the last is full.
func auListsHold(t *testing.T, s *systest.System, as []string, want []string, hidden, who string) {
	t.Helper()
	filters := []string{"", "author_id=ada", "tag=go", "tag=secret", "status=draft", "status=under_review", "status=published",
		"author_id=ada&status=under_review", "author_id=ada&tag=secret"}
	for _, f := range filters {
		for _, sort := range []string{"created_at", "-created_at", "updated_at", "-updated_at", "title"} {
			for _, limit := range []int{1, 2, 100} {
				var seen []string
				cursor := ""
				for page := 0; ; page++ {
					q := url.Values{"sort": {sort}, "limit": {fmt.Sprint(limit)}}
					if cursor != "" {
						q.Set("cursor", cursor)
					}
					u := s.Query() + "/api/articles?" + q.Encode()
					if f != "" {
						u += "&" + f
					}
					var res struct {
						Items      []domain.Article
						NextCursor string `json:"next_cursor"`
					}
					r := s.Do(http.MethodGet, u, nil, as...)
					r.Require(t, http.StatusOK)
					r.JSON(t, &res)
					for _, a := range res.Items {
						if a.ID == hidden {
							t.Fatalf("%s: %s lists the hidden article: %s", who, u, r.Body)
						}
						seen = append(seen, a.ID)
					}
					if res.NextCursor == "" {
						break
					}
					if len(res.Items) != limit {
						t.Fatalf("%s: %s: a page of %d items before the last, want %d", who, u, len(res.Items), limit)
					}
					cursor = res.NextCursor
				}
				// What the filter lets through of want, checked against the articles themselves.
				var expect []string
				for _, id := range want {
					if auMatches(t, s, id, f) {
						expect = append(expect, id)
					}
				}
				slices.Sort(seen)
				slices.Sort(expect)
				if !slices.Equal(seen, expect) {
					t.Fatalf("%s: filter %q sort %s limit %d listed %v, want %v", who, f, sort, limit, seen, expect)
				}
			}
		}
	}
}

// auMatches reports whether article id (read by an editor) passes filter f.
func auMatches(t *testing.T, s *systest.System, id, f string) bool {
	t.Helper()
	r := s.Do(http.MethodGet, s.Query()+"/api/articles/"+id, nil)
	r.Require(t, http.StatusOK)
	a := r.Article(t)
	q, _ := url.ParseQuery(f)
	return (q.Get("author_id") == "" || a.AuthorID == q.Get("author_id")) &&
		(q.Get("status") == "" || string(a.Status) == q.Get("status")) &&
		(q.Get("tag") == "" || slices.Contains(a.Tags, q.Get("tag")))
}

// TestRateLimit: a writer over -rate-limit is answered 429 with
// Retry-After; other writers are not; after the wait it may write again.
func TestRateLimit(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	cfg := systest.CommandConfig(s.URL, s.Replicas)
	cfg.RateLimit, cfg.RateBurst = 1, 3
	limited := s.StartCommandAPI(cfg)
	base := "http://" + limited.Addr
	ada, bob := systest.As(s.Token("ada", "author")), systest.As(s.Token("bob", "author"))
	create := func(author string, as []string) systest.Response {
		return s.Do(http.MethodPost, base+"/api/articles", auArticle("Limited", author), as...)
	}
	var r systest.Response
	n := 0
	for ; n < 10; n++ {
		if r = create("ada", ada); r.Status != http.StatusCreated {
			break
		}
	}
	if n < 3 || n > 4 {
		t.Fatalf("ada wrote %d times before %d, want the burst of 3 (4 if a second passed)", n, r.Status)
	}
	p := r.RequireProblem(t, http.StatusTooManyRequests, "")
	if ra := r.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q, want 1; %+v", ra, p)
	}
	// Another writer has a bucket of their own.
	create("bob", bob).Require(t, http.StatusCreated)
	// ada recovers once a token has dripped back in.
	natstest.WaitFor(t, 5*time.Second, func() error {
		if r := create("ada", ada); r.Status != http.StatusCreated {
			return fmt.Errorf("still %d %s", r.Status, r.Body)
		}
		return nil
	})
}

// TestIdempotencyKeysAreTheWritersOwn: the same key and body from another
// writer is another write; it never answers the first writer's article.
func TestIdempotencyKeysAreTheWritersOwn(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	eve, maxi := systest.As(s.Token("eve", "editor")), systest.As(s.Token("max", "editor"))
	body := auArticle("Same key", "ada")
	a, _ := s.Create(body, append([]string{"Idempotency-Key", "k-1"}, eve...)...)
	again, _ := s.Create(body, append([]string{"Idempotency-Key", "k-1"}, eve...)...)
	other, _ := s.Create(body, append([]string{"Idempotency-Key", "k-1"}, maxi...)...)
	if again.ID != a.ID || other.ID == a.ID {
		t.Fatalf("eve %s, eve again %s, max %s: want eve's retry to be her article and max's another", a.ID, again.ID, other.ID)
	}
	if h := s.History(other.ID); len(h.Events) != 1 || h.Events[0].Event.Actor != "max" {
		t.Fatalf("max's article: %+v", h.Events)
	}
}
