package domain

import "fmt"

// Roles is a set of the roles inkstream knows. An identity provider grants
// them; a token carries them.
type Roles uint8

// The roles. An author writes and changes their own articles but cannot
// publish; an editor may do anything to any article; an admin may do what
// an editor may, and erase.
const (
	RoleAuthor Roles = 1 << iota
	RoleEditor
	RoleAdmin
)

// ParseRoles returns the set of the roles named; names inkstream does not
// know are ignored.
func ParseRoles(names ...string) Roles {
	var r Roles
	for _, n := range names {
		switch n {
		case "author":
			r |= RoleAuthor
		case "editor":
			r |= RoleEditor
		case "admin":
			r |= RoleAdmin
		}
	}
	return r
}

// Names lists the roles in r: author, editor, admin.
func (r Roles) Names() []string {
	var out []string
	for _, x := range [...]struct {
		role Roles
		name string
	}{{RoleAuthor, "author"}, {RoleEditor, "editor"}, {RoleAdmin, "admin"}} {
		if r&x.role != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

// Principal is who makes a request: the subject of a verified token and
// the roles it grants. The zero Principal is an anonymous caller.
type Principal struct {
	Subject string
	Roles   Roles
}

// Anonymous reports whether p is nobody in particular: no token.
func (p Principal) Anonymous() bool { return p.Subject == "" }

// Editor reports whether p may do anything to any article (an editor or
// an admin).
func (p Principal) Editor() bool { return p.Roles&(RoleEditor|RoleAdmin) != 0 }

// Owns reports whether p is an author and authorID names them.
func (p Principal) Owns(authorID string) bool {
	return p.Roles&RoleAuthor != 0 && p.Subject != "" && p.Subject == authorID
}

// Visible reports whether p may see an article with this status and
// author: anyone a published one, its author and editors any. It is the
// check the query side runs on every read of an article that is not
// published, so it is a few comparisons.
func Visible(p Principal, status Status, authorID string) bool {
	return status == StatusPublished || p.Editor() || p.Owns(authorID)
}

// Action is what a principal asks to do to an article.
type Action uint8

// The actions of the policy.
const (
	ActCreate      Action = iota + 1 // POST: next is the new article's fields
	ActChange                        // PUT, PATCH: next is the fields after the change
	ActDelete                        // DELETE: a tombstone
	ActErase                         // DELETE ?erase=true: the history purged
	ActRead                          // GET the article as it is
	ActReadVersion                   // GET a past version: next is that version's fields
	ActReadHistory                   // GET the audit trail
)

var actionNames = [...]string{"", "create", "change", "delete", "erase", "read", "read a version of", "read the audit trail of"}

// String names the action.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

func forbidden(why string) error { return fmt.Errorf("%s: %w", why, ErrForbidden) }

// Authorize is who may do what: it returns nil when p may do act to the
// article in state s, else an error of kind ErrUnauthenticated (p is
// anonymous where a token is needed), ErrForbidden (p may see the article
// but not do this) or ErrNotFound (the article does not exist, is deleted,
// or p may not see it: a draft's existence never leaks). ErrNotFound is
// returned bare, so that the caller words it exactly as for an id that
// never existed. next is the article's fields as act would leave them
// (ActCreate, ActChange) or the version to read (ActReadVersion), and is
// ignored otherwise. Authorize is pure: the same principal, action and
// state always get the same answer.
func Authorize(p Principal, act Action, s State, next Fields) error {
	if err := Attempt(p, act); err != nil {
		return err
	}
	a := s.Article
	switch act {
	case ActCreate:
		switch {
		case p.Editor():
			return nil
		case next.AuthorID != p.Subject:
			return forbidden(fmt.Sprintf("an author writes as themselves: author_id must be %q", p.Subject))
		case next.Status == StatusPublished:
			return forbidden("an author cannot publish; an editor does")
		}
		return nil
	case ActRead:
		if s.Live() && Visible(p, a.Status, a.AuthorID) {
			return nil
		}
		return ErrNotFound
	case ActReadVersion:
		if !s.Live() || !Visible(p, a.Status, a.AuthorID) {
			return ErrNotFound
		}
		if p.Editor() || p.Owns(a.AuthorID) || next.Status == StatusPublished {
			return nil
		}
		return ErrNotFound
	case ActReadHistory:
		switch {
		case !s.Exists():
			return ErrNotFound
		case p.Editor() || p.Owns(a.AuthorID):
			return nil
		case !s.Live() || !Visible(p, a.Status, a.AuthorID):
			return ErrNotFound
		case p.Anonymous():
			return fmt.Errorf("the audit trail needs a bearer token: %w", ErrUnauthenticated)
		}
		return forbidden("the audit trail is for the article's author and editors")
	case ActErase:
		if !s.Exists() {
			return ErrNotFound
		}
		return nil // Attempt let only admins through; erasing again finishes an erasure
	}
	// Changes and deletions of an existing article.
	if !s.Live() {
		return ErrNotFound
	}
	if p.Editor() {
		return nil
	}
	if !p.Owns(a.AuthorID) {
		if Visible(p, a.Status, a.AuthorID) {
			return forbidden("only the article's author or an editor may " + act.String() + " it")
		}
		return ErrNotFound
	}
	if act == ActDelete {
		return nil
	}
	switch {
	case next.AuthorID != a.AuthorID:
		return forbidden("an author cannot give an article to another author; an editor can")
	case a.Status == StatusPublished:
		return forbidden("a published article is changed by an editor")
	case next.Status == StatusPublished:
		return forbidden("an author cannot publish; an editor does")
	}
	return nil
}

// Attempt is the part of Authorize that needs no article: it refuses an
// anonymous write (ErrUnauthenticated) and a principal whose roles never
// allow act (ErrForbidden), so that a handler can answer before it reads
// the request body or the article. Reads always pass.
func Attempt(p Principal, act Action) error {
	switch act {
	case ActRead, ActReadVersion, ActReadHistory:
		return nil
	}
	if p.Anonymous() {
		return fmt.Errorf("to %s an article needs a bearer token: %w", act, ErrUnauthenticated)
	}
	if act == ActErase {
		if p.Roles&RoleAdmin == 0 {
			return forbidden("erasure is for admins")
		}
		return nil
	}
	if p.Roles&(RoleAuthor|RoleEditor|RoleAdmin) == 0 {
		return forbidden("writing needs the role author, editor or admin")
	}
	return nil
}

// AuthorizeCommand is Authorize for a command on the article in state s:
// the action and the fields after it are the command's, as Decide derives
// them. Call it before Decide, so that what p may not see is ErrNotFound
// before any other answer (a stale If-Match included).
func AuthorizeCommand(p Principal, s State, cmd Command) error {
	switch c := cmd.(type) {
	case CreateArticle:
		return Authorize(p, ActCreate, s, c.Fields.Normalize(c.ID))
	case ReplaceArticle:
		return Authorize(p, ActChange, s, c.Fields.Normalize(c.ID))
	case PatchArticle:
		return Authorize(p, ActChange, s, c.Patch.ApplyTo(s.Article.Fields).Normalize(c.ID))
	case DeleteArticle:
		return Authorize(p, ActDelete, s, Fields{})
	case EraseArticle:
		return Authorize(p, ActErase, s, Fields{})
	default:
		return fmt.Errorf("no policy for command %T: %w", cmd, ErrInvalid)
	}
}
