package httpx_test

import (
	"testing"

	"github.com/inkstream/inkstream/internal/httpx"
)

func TestNoneMatch(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   bool
	}{
		{`"3"`, true},
		{`W/"3"`, true},
		{`*`, true},
		{`"1", "2", "3"`, true},
		{`"1",W/"3"`, true},
		{` "2" , W/"3" `, true},
		{`"2"`, false},
		{`W/"2", "4"`, false},
		{`"33"`, false},
		{`3`, false},
		{`"3`, false},
		{`W/3`, false},
		{``, false},
		{`,,`, false},
		{`"1", x, "3"`, false}, // malformed: nothing after it is read
	} {
		if got := httpx.NoneMatch(tt.header, `"3"`); got != tt.want {
			t.Errorf("NoneMatch(%q, \"3\") = %v, want %v", tt.header, got, tt.want)
		}
	}
}
