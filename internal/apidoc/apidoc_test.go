package apidoc_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/inkstream/inkstream/internal/apidoc"
	"github.com/inkstream/inkstream/internal/httpx"
)

// TestDocumentsAreValid loads each API's document with kin-openapi and
// validates it against OpenAPI 3.1, its examples and its defaults included.
func TestDocumentsAreValid(t *testing.T) {
	for _, api := range []apidoc.API{apidoc.Command, apidoc.Query} {
		t.Run(string(api), func(t *testing.T) {
			b, err := apidoc.Document(api)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := openapi3.NewLoader().LoadFromData(b)
			if err != nil {
				t.Fatal(err)
			}
			if !doc.IsOpenAPI31OrLater() {
				t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
			}
			if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation()); err != nil {
				t.Fatal(err)
			}
			if doc.Components.SecuritySchemes["bearer"] == nil {
				t.Fatal("no bearer security scheme")
			}
			// Every kind of problem has its response and its section.
			for _, k := range httpx.ProblemKinds {
				if doc.Components.Responses["Problem"+itoa(k.Status)] == nil {
					t.Errorf("no response for problems of status %d", k.Status)
				}
			}
		})
	}
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
