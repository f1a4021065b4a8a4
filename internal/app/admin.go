package app

import (
	"context"
	"errors"
	"io"
)

// Rebuild rebuilds the read model from the stream. See rebuild.go.
func Rebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("rebuild: not available yet")
}

// Verify compares the read model with the fold of the stream.
func Verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("verify: not available yet")
}
