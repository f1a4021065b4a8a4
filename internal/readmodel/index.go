package readmodel

import (
	"fmt"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/inkstream/inkstream/pkg/domain"
)

// HeaderIndex carries a snapshot's Index in the headers of its KV message,
// so that a reader can load every article's index without their bodies (a
// headers-only consumer).
const HeaderIndex = "Inkstream-Index"

// Index is what lists, filters, visibility and conditional reads need of
// an article: everything but its content.
type Index struct {
	ID        string        `json:"id"`
	Version   int           `json:"v"`
	Seq       uint64        `json:"seq"`
	Deleted   bool          `json:"d,omitempty"`
	Title     string        `json:"t"`
	Slug      string        `json:"sl"`
	AuthorID  string        `json:"a"`
	Status    domain.Status `json:"st"`
	Tags      []string      `json:"tg,omitempty"`
	CreatedAt time.Time     `json:"c"`
	UpdatedAt time.Time     `json:"u"`
}

// IndexOf is the index of a snapshot.
func IndexOf(s Snapshot) Index {
	a := s.Article
	return Index{ID: a.ID, Version: a.Version, Seq: s.Seq, Deleted: s.Deleted, Title: a.Title, Slug: a.Slug,
		AuthorID: a.AuthorID, Status: a.Status, Tags: a.Tags, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

// EncodeIndex returns the header value of an index.
func EncodeIndex(x Index) (string, error) {
	b, err := json.Marshal(x)
	if err != nil {
		return "", fmt.Errorf("encode index %s: %w", x.ID, err)
	}
	return string(b), nil
}

// DecodeIndex parses a header value.
func DecodeIndex(v string) (Index, error) {
	var x Index
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return Index{}, fmt.Errorf("decode index: %w", err)
	}
	return x, nil
}
