package natsx_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inkstream/inkstream/internal/natsx"
)

// TestIsTooManyRequests reads JetStream's "too many requests" answers as
// nats-server sends them (the JSON of server/errors.json's
// JSStreamTooManyRequests and the batch limits), and nothing else.
func TestIsTooManyRequests(t *testing.T) {
	decode := func(body string) error {
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("publish: %w", resp.Error)
	}
	for body, want := range map[string]bool{
		`{"error":{"code":429,"err_code":10167,"description":"too many requests"}}`:                        true,
		`{"error":{"code":429,"err_code":10210,"description":"atomic publish too many inflight"}}`:         true,
		`{"error":{"code":429,"err_code":10211,"description":"batch publish too many inflight"}}`:          true,
		`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}`:                   false,
		`{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}`: false,
	} {
		if got := natsx.IsTooManyRequests(decode(body)); got != want {
			t.Errorf("%s: %v, want %v", body, got, want)
		}
	}
	if natsx.IsTooManyRequests(errors.New("too many requests")) {
		t.Error("a plain error is no JetStream answer")
	}
}
