// Package events is the wire contract of inkstream: the JSON envelope of every
// event, the event types, the subjects they are published on and their codec.
//
// Events are immutable. A change of shape gets a new type or an upcaster,
// never an edit of old data.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	// Marshal and Unmarshal with encoding/json's semantics, about twice as
	// fast (measured by BenchmarkProjectEvent in internal/readmodel).
	jsonx "github.com/go-json-experiment/json/v1"
)

// Type names an event type.
type Type string

// The event types of the Article aggregate.
const (
	// ArticleCreated carries the full article in its data.
	ArticleCreated Type = "ArticleCreated"
	// ArticleUpdated carries only the changed fields; its version is the new version.
	ArticleUpdated Type = "ArticleUpdated"
	// ArticleDeleted is a tombstone; its data is {}.
	ArticleDeleted Type = "ArticleDeleted"
)

// StreamName is the JetStream stream that holds every event.
const StreamName = "ARTICLES"

// SubjectPrefix is the first token of every event subject.
const SubjectPrefix = "articles"

// StreamSubjects is the subject filter of the stream.
const StreamSubjects = SubjectPrefix + ".>"

// Headers that inkstream sets on event messages besides the JetStream ones.
const (
	// HeaderRequestHash is a digest of the request that produced the event,
	// so that an idempotent retry with a different body can be told apart.
	HeaderRequestHash = "Inkstream-Request-Hash"
	// HeaderEventType repeats the envelope type for tools that only read headers.
	HeaderEventType = "Inkstream-Event-Type"
)

// Envelope is one event as stored in the stream.
type Envelope struct {
	ID         string          `json:"id"`
	Type       Type            `json:"type"`
	ArticleID  string          `json:"article_id"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// ArticleData is the data of ArticleCreated: the full article.
type ArticleData struct {
	Title    string   `json:"title"`
	Slug     string   `json:"slug"`
	Content  string   `json:"content"`
	AuthorID string   `json:"author_id"`
	Status   string   `json:"status"`
	Tags     []string `json:"tags"`
}

// ArticleChanges is the data of ArticleUpdated: only the fields that changed.
type ArticleChanges struct {
	Title    *string   `json:"title,omitempty"`
	Slug     *string   `json:"slug,omitempty"`
	Content  *string   `json:"content,omitempty"`
	AuthorID *string   `json:"author_id,omitempty"`
	Status   *string   `json:"status,omitempty"`
	Tags     *[]string `json:"tags,omitempty"`
}

// Empty reports whether no field changed.
func (c ArticleChanges) Empty() bool {
	return c.Title == nil && c.Slug == nil && c.Content == nil && c.AuthorID == nil && c.Status == nil && c.Tags == nil
}

// ErrMalformed is returned when bytes are not a valid event.
var ErrMalformed = errors.New("malformed event")

// Subject returns the subject an event of type t for article id is published on:
// articles.<id>.<created|updated|deleted>.
func Subject(articleID string, t Type) string {
	var verb string
	switch t {
	case ArticleCreated:
		verb = "created"
	case ArticleUpdated:
		verb = "updated"
	case ArticleDeleted:
		verb = "deleted"
	default:
		verb = "unknown"
	}
	return SubjectPrefix + "." + articleID + "." + verb
}

// ArticleSubjects returns the filter that matches every event of one article.
func ArticleSubjects(articleID string) string {
	return SubjectPrefix + "." + articleID + ".>"
}

// ArticleIDFromSubject returns the article id of an event subject.
func ArticleIDFromSubject(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	return id, ok && id != ""
}

// Encode returns the JSON form of e.
func Encode(e Envelope) ([]byte, error) {
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	if !plain(e.ID) || !plain(string(e.Type)) || !plain(e.ArticleID) || e.OccurredAt.Year() < 0 || e.OccurredAt.Year() > 9999 {
		b, err := jsonx.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		return b, nil
	}
	// The hot path of every write: the same bytes encoding/json writes,
	// without reflection or a copy of the data.
	if !jsonx.Valid(e.Data) {
		return nil, fmt.Errorf("encode event %s: %w: data is not valid JSON", e.ID, ErrMalformed)
	}
	b := make([]byte, 0, 160+len(e.Data))
	b = append(b, `{"id":"`...)
	b = append(b, e.ID...)
	b = append(b, `","type":"`...)
	b = append(b, e.Type...)
	b = append(b, `","article_id":"`...)
	b = append(b, e.ArticleID...)
	b = append(b, `","version":`...)
	b = strconv.AppendInt(b, int64(e.Version), 10)
	b = append(b, `,"occurred_at":"`...)
	b = e.OccurredAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, e.Data...)
	b = append(b, '}')
	return b, nil
}

// plain reports whether s needs no escaping in a JSON string (encoding/json
// also escapes <, > and &).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// Decode parses an event and checks its envelope.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if err := jsonx.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch e.Type {
	case ArticleCreated, ArticleUpdated, ArticleDeleted:
	default:
		return Envelope{}, fmt.Errorf("%w: unknown type %q", ErrMalformed, e.Type)
	}
	if e.ID == "" || e.ArticleID == "" || e.Version < 1 {
		return Envelope{}, fmt.Errorf("%w: missing id, article_id or version", ErrMalformed)
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}") // as Encode writes it
	}
	return e, nil
}

// NewEnvelope builds an envelope whose data is the JSON of data.
func NewEnvelope(id string, t Type, articleID string, version int, at time.Time, data any) (Envelope, error) {
	raw, err := jsonx.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s data: %w", t, err)
	}
	return Envelope{ID: id, Type: t, ArticleID: articleID, Version: version, OccurredAt: at.UTC(), Data: raw}, nil
}
