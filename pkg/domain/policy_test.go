package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/inkstream/inkstream/pkg/domain"
)

// TestAuthorize is who may do what, as one table: every principal, every
// action, every state an article can be in.
func TestAuthorize(t *testing.T) {
	var (
		anon   = domain.Principal{}
		nobody = domain.Principal{Subject: "zed"} // a valid token without roles
		ada    = domain.Principal{Subject: "ada", Roles: domain.RoleAuthor}
		bob    = domain.Principal{Subject: "bob", Roles: domain.RoleAuthor}
		eve    = domain.Principal{Subject: "eve", Roles: domain.RoleEditor}
		root   = domain.Principal{Subject: "root", Roles: domain.RoleAdmin}
		// ada holds the author role and the editor role: the editor wins.
		adaEd = domain.Principal{Subject: "ada", Roles: domain.RoleAuthor | domain.RoleEditor}
	)
	fields := func(author string, st domain.Status) domain.Fields {
		return domain.Fields{Title: "T", Content: "C", AuthorID: author, Status: st}
	}
	state := func(author string, st domain.Status) domain.State {
		return domain.State{Article: domain.Article{ID: "a1", Fields: fields(author, st), Version: 2}}
	}
	var (
		none      = domain.State{}
		draft     = state("ada", domain.StatusDraft)
		review    = state("ada", domain.StatusUnderReview)
		published = state("ada", domain.StatusPublished)
		deleted   = func() domain.State { s := draft; s.Deleted = true; return s }()
		delPub    = func() domain.State { s := published; s.Deleted = true; return s }()
		erased    = domain.State{Article: domain.Article{ID: "a1", Version: 3}, Deleted: true, Erased: true}
		adaDraft  = fields("ada", domain.StatusDraft)
		adaReview = fields("ada", domain.StatusUnderReview)
		adaPub    = fields("ada", domain.StatusPublished)
		bobDraft  = fields("bob", domain.StatusDraft)
	)
	var (
		ok     error
		unauth = domain.ErrUnauthenticated
		forbid = domain.ErrForbidden
		gone   = domain.ErrNotFound
	)
	type row struct {
		p    domain.Principal
		act  domain.Action
		s    domain.State
		next domain.Fields
		want error
	}
	rows := []row{
		// Create: authors as themselves, unpublished; editors anything.
		{anon, domain.ActCreate, none, adaDraft, unauth},
		{nobody, domain.ActCreate, none, fields("zed", domain.StatusDraft), forbid},
		{ada, domain.ActCreate, none, adaDraft, ok},
		{ada, domain.ActCreate, none, adaReview, ok},
		{ada, domain.ActCreate, none, adaPub, forbid},
		{ada, domain.ActCreate, none, bobDraft, forbid},
		{eve, domain.ActCreate, none, adaPub, ok},
		{root, domain.ActCreate, none, bobDraft, ok},
		{adaEd, domain.ActCreate, none, bobDraft, ok},

		// Change: the owner between draft and review; editors anything.
		{anon, domain.ActChange, draft, adaReview, unauth},
		{anon, domain.ActChange, none, adaReview, unauth}, // 401 before the article is looked at
		{anon, domain.ActChange, published, adaPub, unauth},
		{nobody, domain.ActChange, published, adaPub, forbid},
		{ada, domain.ActChange, draft, adaReview, ok},
		{ada, domain.ActChange, review, adaDraft, ok},
		{ada, domain.ActChange, draft, adaDraft, ok},
		{ada, domain.ActChange, draft, adaPub, forbid},
		{ada, domain.ActChange, review, adaPub, forbid},
		{ada, domain.ActChange, draft, bobDraft, forbid},
		{ada, domain.ActChange, published, adaPub, forbid}, // a published article is the editors'
		{ada, domain.ActChange, published, adaDraft, forbid},
		{ada, domain.ActChange, deleted, adaDraft, gone},
		{ada, domain.ActChange, none, adaDraft, gone},
		{bob, domain.ActChange, draft, adaDraft, gone}, // ada's draft does not exist for bob
		{bob, domain.ActChange, review, adaDraft, gone},
		{bob, domain.ActChange, published, adaPub, forbid}, // bob sees it, may not change it
		{bob, domain.ActChange, published, fields("bob", domain.StatusPublished), forbid},
		{eve, domain.ActChange, draft, adaPub, ok},
		{eve, domain.ActChange, published, adaDraft, ok}, // unpublish
		{eve, domain.ActChange, draft, bobDraft, ok},
		{eve, domain.ActChange, deleted, adaDraft, gone},
		{root, domain.ActChange, review, adaPub, ok},

		// Delete: the owner, or an editor.
		{anon, domain.ActDelete, published, domain.Fields{}, unauth},
		{nobody, domain.ActDelete, draft, domain.Fields{}, forbid},
		{ada, domain.ActDelete, draft, domain.Fields{}, ok},
		{ada, domain.ActDelete, published, domain.Fields{}, ok},
		{ada, domain.ActDelete, deleted, domain.Fields{}, gone},
		{bob, domain.ActDelete, draft, domain.Fields{}, gone},
		{bob, domain.ActDelete, published, domain.Fields{}, forbid},
		{eve, domain.ActDelete, draft, domain.Fields{}, ok},
		{eve, domain.ActDelete, none, domain.Fields{}, gone},

		// Erase: admins only, deleted articles too.
		{anon, domain.ActErase, published, domain.Fields{}, unauth},
		{ada, domain.ActErase, draft, domain.Fields{}, forbid},
		{bob, domain.ActErase, draft, domain.Fields{}, forbid},
		{eve, domain.ActErase, published, domain.Fields{}, forbid},
		{root, domain.ActErase, draft, domain.Fields{}, ok},
		{root, domain.ActErase, deleted, domain.Fields{}, ok},
		{root, domain.ActErase, none, domain.Fields{}, gone},
		{root, domain.ActErase, erased, domain.Fields{}, ok}, // erasing again finishes an erasure

		// Read: published for anyone; unpublished for the owner and editors.
		{anon, domain.ActRead, published, domain.Fields{}, ok},
		{anon, domain.ActRead, draft, domain.Fields{}, gone},
		{anon, domain.ActRead, review, domain.Fields{}, gone},
		{anon, domain.ActRead, delPub, domain.Fields{}, gone},
		{anon, domain.ActRead, none, domain.Fields{}, gone},
		{nobody, domain.ActRead, draft, domain.Fields{}, gone},
		{ada, domain.ActRead, draft, domain.Fields{}, ok},
		{ada, domain.ActRead, deleted, domain.Fields{}, gone},
		{bob, domain.ActRead, draft, domain.Fields{}, gone},
		{bob, domain.ActRead, published, domain.Fields{}, ok},
		{domain.Principal{Subject: "ada"}, domain.ActRead, draft, domain.Fields{}, gone}, // ada without the author role
		{eve, domain.ActRead, review, domain.Fields{}, ok},
		{root, domain.ActRead, draft, domain.Fields{}, ok},
		{eve, domain.ActRead, deleted, domain.Fields{}, gone},
		{eve, domain.ActRead, erased, domain.Fields{}, gone},

		// Versions: anyone the published ones of a published article.
		{anon, domain.ActReadVersion, published, adaPub, ok},
		{anon, domain.ActReadVersion, published, adaDraft, gone},
		{anon, domain.ActReadVersion, draft, adaPub, gone}, // unpublished since
		{bob, domain.ActReadVersion, published, adaReview, gone},
		{ada, domain.ActReadVersion, published, adaDraft, ok},
		{ada, domain.ActReadVersion, draft, adaDraft, ok},
		{eve, domain.ActReadVersion, draft, bobDraft, ok},
		{eve, domain.ActReadVersion, deleted, adaDraft, gone},

		// Audit trail: the owner and editors, deleted articles too.
		{anon, domain.ActReadHistory, published, domain.Fields{}, unauth},
		{anon, domain.ActReadHistory, draft, domain.Fields{}, gone},
		{anon, domain.ActReadHistory, delPub, domain.Fields{}, gone},
		{anon, domain.ActReadHistory, none, domain.Fields{}, gone},
		{nobody, domain.ActReadHistory, published, domain.Fields{}, forbid},
		{bob, domain.ActReadHistory, published, domain.Fields{}, forbid},
		{bob, domain.ActReadHistory, draft, domain.Fields{}, gone},
		{ada, domain.ActReadHistory, draft, domain.Fields{}, ok},
		{ada, domain.ActReadHistory, deleted, domain.Fields{}, ok},
		{eve, domain.ActReadHistory, deleted, domain.Fields{}, ok},
		{eve, domain.ActReadHistory, erased, domain.Fields{}, ok},
		{ada, domain.ActReadHistory, erased, domain.Fields{}, gone},
		{root, domain.ActReadHistory, none, domain.Fields{}, gone},
	}
	name := func(p domain.Principal) string {
		if p.Anonymous() {
			return "anonymous"
		}
		return fmt.Sprintf("%s%v", p.Subject, p.Roles.Names())
	}
	for _, r := range rows {
		err := domain.Authorize(r.p, r.act, r.s, r.next)
		if r.want == nil && err != nil || r.want != nil && !errors.Is(err, r.want) {
			t.Errorf("%s may %s %s/%s (deleted %v) → %s/%s: %v, want %v", name(r.p), r.act,
				r.s.Article.AuthorID, r.s.Article.Status, r.s.Deleted, r.next.AuthorID, r.next.Status, err, r.want)
		}
		// ErrNotFound comes bare, to be worded as for an id never created.
		if r.want == gone && err != domain.ErrNotFound {
			t.Errorf("%s %s: %v is not the bare ErrNotFound", name(r.p), r.act, err)
		}
		// Attempt never refuses what Authorize allows, and never looks at the article.
		if r.want == nil {
			if err := domain.Attempt(r.p, r.act); err != nil {
				t.Errorf("Attempt(%s, %s) = %v, Authorize allows it", name(r.p), r.act, err)
			}
		}
	}
}

// TestVisibleIsReadPolicy checks that the query side's quick check agrees
// with Authorize for every principal and status.
func TestVisibleIsReadPolicy(t *testing.T) {
	ps := []domain.Principal{{}, {Subject: "ada"}, {Subject: "ada", Roles: domain.RoleAuthor}, {Subject: "bob", Roles: domain.RoleAuthor},
		{Subject: "eve", Roles: domain.RoleEditor}, {Subject: "root", Roles: domain.RoleAdmin}}
	for _, p := range ps {
		for _, st := range []domain.Status{domain.StatusDraft, domain.StatusUnderReview, domain.StatusPublished} {
			s := domain.State{Article: domain.Article{ID: "a1", Version: 1, Fields: domain.Fields{AuthorID: "ada", Status: st}}}
			if got, want := domain.Visible(p, st, "ada"), domain.Authorize(p, domain.ActRead, s, domain.Fields{}) == nil; got != want {
				t.Errorf("Visible(%+v, %s) = %v, Authorize says %v", p, st, got, want)
			}
		}
	}
}

func TestAuthorizeCommand(t *testing.T) {
	ada := domain.Principal{Subject: "ada", Roles: domain.RoleAuthor}
	s := domain.State{Article: domain.Article{ID: "a1", Version: 1, Fields: domain.Fields{Title: "T", Slug: "t", Content: "C", AuthorID: "ada", Status: domain.StatusDraft}}}
	published := domain.Value[domain.Status]{Set: true, Value: domain.StatusPublished}
	cases := []struct {
		cmd  domain.Command
		want error
	}{
		{domain.CreateArticle{ID: "a2", Fields: domain.Fields{Title: "T", Content: "C", AuthorID: "ada"}}, nil},
		{domain.CreateArticle{ID: "a2", Fields: domain.Fields{Title: "T", Content: "C", AuthorID: "bob"}}, domain.ErrForbidden},
		{domain.ReplaceArticle{ID: "a1", Fields: domain.Fields{Title: "T", Content: "C", AuthorID: "ada", Status: domain.StatusUnderReview}}, nil},
		{domain.ReplaceArticle{ID: "a1", Fields: domain.Fields{Title: "T", Content: "C", AuthorID: "ada", Status: domain.StatusPublished}}, domain.ErrForbidden},
		{domain.PatchArticle{ID: "a1", Patch: domain.Patch{Title: domain.Value[string]{Set: true, Value: "New"}}}, nil},
		{domain.PatchArticle{ID: "a1", Patch: domain.Patch{Status: published}}, domain.ErrForbidden},
		{domain.PatchArticle{ID: "a1", Patch: domain.Patch{AuthorID: domain.Value[string]{Set: true, Null: true}}}, domain.ErrForbidden},
		{domain.DeleteArticle{ID: "a1"}, nil},
	}
	for _, c := range cases {
		if err := domain.AuthorizeCommand(ada, s, c.cmd); c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%T %+v: %v, want %v", c.cmd, c.cmd, err, c.want)
		}
	}
}
