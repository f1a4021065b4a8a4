package auth

import (
	"strings"
	"testing"
)

// FuzzBearerToken: any Authorization header is a token or not, never a
// panic; a token is what follows "Bearer " (any case), without blanks.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer x", "BEARER  y ", "Basic Zm9vOmJhcg==", "Bearer", "Bearer ", "Bearer a b", "", "Bearer\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken([]byte(h))
		if !ok {
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || !strings.EqualFold(h[:7], "bearer ") || !strings.Contains(h, tok) {
			t.Fatalf("%q gave token %q", h, tok)
		}
	})
}
