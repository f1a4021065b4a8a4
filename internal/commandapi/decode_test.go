package commandapi

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	json "github.com/go-json-experiment/json/v1"
)

// TestStrictFastPathAgreesWithDecoder checks that decodeStrict's fast path
// accepts exactly what encoding/json's strict Decoder accepts, with the
// same result, so that the Decoder is needed only for error messages.
func TestStrictFastPathAgreesWithDecoder(t *testing.T) {
	bodies := []string{
		`{"title":"Hello","content":"World","author_id":"a","tags":["x","y"]}`,
		`{"Title":"case-insensitive names, as encoding/json"}`,
		`{"title":"a","title":"duplicate names: the last wins"}`,
		"{\"title\":\"invalid UTF-8 \xff is replaced\"}",
		` {"tags":null} `,
		`{"status":"published","slug":"s"}`,
		`{"id":"read-only fields decode; decodeArticle rejects them"}`,
		`{"bogus":1}`,
		`{"title":"a"} {"title":"b"}`,
		`{"title":"a"} x`,
		`{"title":1}`,
		`{"tags":[1]}`,
		`{"title":"a",}`,
		`[]`,
		`null`,
		`{"title":"a"`,
	}
	for _, body := range bodies {
		agree(t, body, func() any { return new(articleRequest) })
		agree(t, body, func() any { return new(map[string]json.RawMessage) }) // PATCH
	}
}

func agree(t *testing.T, body string, mk func() any) {
	t.Helper()
	fast, slow := mk(), mk()
	fastErr := jsonv2.Unmarshal([]byte(body), fast, strictV1)
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	slowErr := dec.Decode(slow)
	if slowErr == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			slowErr = errors.New("more than one JSON value")
		}
	}
	if (fastErr == nil) != (slowErr == nil) {
		t.Errorf("%s into %T: fast path error %v, Decoder error %v", body, fast, fastErr, slowErr)
		return
	}
	if fastErr == nil && !reflect.DeepEqual(fast, slow) {
		t.Errorf("%s into %T: fast path %+v, Decoder %+v", body, fast, fast, slow)
	}
}
