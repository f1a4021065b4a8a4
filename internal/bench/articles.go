package bench

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/inkstream/inkstream/pkg/domain"
)

// The articles the benchmark writes: a title, about 1 KB of content, an
// author, three tags. Every POST, PUT and event has this shape.

// content is the article body: about 1 000 characters.
var content = strings.Repeat("Event sourcing keeps every change as an immutable fact; the read side folds them. ", 12)

var tags = []string{"bench", "nats", "go"}

func title(kind string, n int) string { return "Benchmark " + kind + " article " + strconv.Itoa(n) }

// articleRequest is the body of a POST or PUT; the slug is left to the
// server to derive from the title.
type articleRequest struct {
	Title    string   `json:"title"`
	Content  string   `json:"content"`
	AuthorID string   `json:"author_id"`
	Status   string   `json:"status"`
	Tags     []string `json:"tags"`
}

// articleBody is the JSON body of a POST or PUT.
func articleBody(titleText string, author int) []byte {
	b, _ := json.Marshal(articleRequest{
		Title: titleText, Content: content, AuthorID: "author-" + strconv.Itoa(author%16),
		Status: string(domain.StatusPublished), Tags: tags,
	})
	return b
}

// articleFields are the fields of the ArticleCreated event the command API
// writes for articleBody(titleText, author).
func articleFields(titleText string, author int) domain.Fields {
	return domain.Fields{
		Title: titleText, Slug: domain.Slugify(titleText), Content: content,
		AuthorID: "author-" + strconv.Itoa(author%16), Status: domain.StatusPublished, Tags: tags,
	}
}

// createdEvent is the ArticleCreated event of a new article.
func createdEvent(articleID string, n int) (domain.Event, error) {
	return newEvent(articleID, 1, domain.ArticleCreated{Fields: articleFields(title("replayed", n), n)})
}

// actor is the subject of the harness's token: the actor of every event
// the services write for it, and of the events it publishes itself.
const actor = "inkbench"

// newEvent is an event of the article at version v, now, by actor.
func newEvent(articleID string, v int, c domain.Change) (domain.Event, error) {
	evID, err := uuid.NewV7()
	if err != nil {
		return domain.Event{}, err
	}
	return domain.Event{ID: evID.String(), ArticleID: articleID, Version: v, At: time.Now().UTC().Truncate(time.Microsecond), Actor: actor, Change: c}, nil
}

var statuses = []domain.Status{domain.StatusUnderReview, domain.StatusPublished, domain.StatusDraft}

// updatedEvent is version v (≥ 2) of an article: in turn a new title (and
// so slug), a new status, new content — what the command API writes for a
// PUT or PATCH that changes those fields.
func updatedEvent(articleID string, n, v int) (domain.Event, error) {
	var c domain.Changes
	switch v % 3 {
	case 2:
		t := fmt.Sprintf("%s, revision %d", title("replayed", n), v)
		s := domain.Slugify(t)
		c.Title, c.Slug = &t, &s
	case 0:
		s := statuses[(v/3)%len(statuses)]
		c.Status = &s
	case 1:
		s := fmt.Sprintf("Revision %d. %s", v, content)
		c.Content = &s
	}
	return newEvent(articleID, v, domain.ArticleUpdated{Changes: c})
}
