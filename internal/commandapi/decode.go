package commandapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	json "github.com/go-json-experiment/json/v1"
	"github.com/gofiber/fiber/v2"

	"github.com/inkstream/inkstream/internal/httpx"
	"github.com/inkstream/inkstream/pkg/domain"
)

// articleRequest is the body of POST and PUT. The read-only fields are
// declared only to reject them by name.
type articleRequest struct {
	Title     string          `json:"title"`
	Slug      string          `json:"slug"`
	Content   string          `json:"content"`
	AuthorID  string          `json:"author_id"`
	Status    domain.Status   `json:"status"`
	Tags      []string        `json:"tags"`
	ID        json.RawMessage `json:"id"`
	Version   json.RawMessage `json:"version"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

// strictV1 is encoding/json's decoding (case-insensitive names, duplicate
// names and invalid UTF-8 allowed) with DisallowUnknownFields.
var strictV1 = jsonv2.JoinOptions(json.DefaultOptionsV1(), jsonv2.RejectUnknownMembers(true))

var readOnly = map[string]bool{"id": true, "version": true, "created_at": true, "updated_at": true}

var mutable = map[string]bool{"title": true, "slug": true, "content": true, "author_id": true, "status": true, "tags": true}

func badRequest(detail string) error { return httpx.NewProblem(http.StatusBadRequest, detail) }

func fieldError(field, msg string) error {
	return &domain.ValidationError{Fields: map[string]string{field: msg}}
}

// checkContentType answers 415 unless the request says it sends one of types.
func checkContentType(c *fiber.Ctx, types ...string) error {
	ct := c.Get(fiber.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, t := range types {
			if mt == t {
				return nil
			}
		}
	}
	if ct == "" {
		ct = "none"
	}
	return httpx.NewProblem(http.StatusUnsupportedMediaType,
		fmt.Sprintf("Content-Type must be %s, not %s", strings.Join(types, " or "), ct))
}

// decodeArticle parses a POST or PUT body strictly: one JSON object, no
// unknown or read-only fields.
func decodeArticle(body []byte) (domain.Fields, error) {
	var req articleRequest
	if err := decodeStrict(body, &req); err != nil {
		return domain.Fields{}, err
	}
	for _, ro := range [...]struct {
		name string
		v    json.RawMessage
	}{{"id", req.ID}, {"version", req.Version}, {"created_at", req.CreatedAt}, {"updated_at", req.UpdatedAt}} {
		if ro.v != nil {
			return domain.Fields{}, fieldError(ro.name, "is read-only")
		}
	}
	return domain.Fields{Title: req.Title, Slug: req.Slug, Content: req.Content, AuthorID: req.AuthorID, Status: req.Status, Tags: req.Tags}, nil
}

func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body is empty; send a JSON object")
	}
	// The fast path: one call with encoding/json's semantics, unknown
	// fields and trailing data rejected. The Decoder below refuses exactly
	// the same bodies (TestStrictFastPathAgreesWithDecoder); it runs only
	// to word the error.
	if jsonv2.Unmarshal(body, v, strictV1) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the request body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest(fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("the request body must be a JSON object")
		}
		// An element of a list is named by its path (tags.0): the field
		// is the list.
		if field, _, nested := strings.Cut(typ.Field, "."); nested {
			return fieldError(field, "must be a list of strings")
		}
		return fieldError(typ.Field, "must be a "+jsonKind(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("malformed JSON: the body ends early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return fieldError(name, "is not a field of an article")
	default:
		return badRequest("malformed JSON: " + err.Error())
	}
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "list of strings"
	default:
		return k
	}
}

// decodePatch parses a JSON merge patch (RFC 7396) of the mutable fields.
func decodePatch(body []byte) (domain.Patch, error) {
	var raw map[string]json.RawMessage
	if err := decodeStrict(body, &raw); err != nil {
		return domain.Patch{}, err
	}
	if raw == nil {
		return domain.Patch{}, badRequest("a merge patch must be a JSON object")
	}
	var p domain.Patch
	for k, v := range raw {
		switch {
		case readOnly[k]:
			return p, fieldError(k, "is read-only")
		case !mutable[k]:
			return p, fieldError(k, "is not a field of an article")
		}
		var err error
		switch k {
		case "title":
			p.Title, err = patchValue[string](k, v)
		case "slug":
			p.Slug, err = patchValue[string](k, v)
		case "content":
			p.Content, err = patchValue[string](k, v)
		case "author_id":
			p.AuthorID, err = patchValue[string](k, v)
		case "status":
			p.Status, err = patchValue[domain.Status](k, v)
		case "tags":
			p.Tags, err = patchValue[[]string](k, v)
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

func patchValue[T any](field string, raw json.RawMessage) (domain.Value[T], error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return domain.Value[T]{Set: true, Null: true}, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			if typ.Field != "" { // an element of the list
				return domain.Value[T]{}, fieldError(field, "must be a list of strings")
			}
			return domain.Value[T]{}, fieldError(field, "must be a "+jsonKind(typ.Type.Kind().String()))
		}
		return domain.Value[T]{}, fieldError(field, "is not valid JSON")
	}
	return domain.Value[T]{Set: true, Value: v}, nil
}

// parseIfMatch reads If-Match: "<version>". Absent or * means unconditional
// (a * still needs the article to exist, which every update does).
func parseIfMatch(c *fiber.Ctx) (*int, error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" || h == "*" {
		return nil, nil
	}
	// An entity tag is quoted (RFC 9110 8.8.3): "1 or 1" is not one.
	tag := strings.TrimPrefix(h, "W/")
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return nil, badRequest(`If-Match must be an ETag of this API, such as "3"`)
	}
	v, err := strconv.Atoi(tag[1 : len(tag)-1])
	if err != nil || v < 1 {
		return nil, badRequest(`If-Match must be an ETag of this API, such as "3"`)
	}
	return &v, nil
}
