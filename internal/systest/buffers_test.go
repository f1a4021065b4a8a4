package systest_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/inkstream/inkstream/internal/systest"
)

// TestPathIDsOutliveTheirRequest: Fiber's path values point into a buffer
// the connection's next request reuses. The command API keeps ids in its
// cache and in the states it answers later, so it must keep copies: on one
// keep-alive connection, writes to A and B, then a no-change write to A,
// must still answer A's id and state.
func TestPathIDsOutliveTheirRequest(t *testing.T) {
	_, s := systest.StartSingle(t, 1)
	s.Client = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	t.Cleanup(s.Client.CloseIdleConnections)
	body := func(i int) map[string]any {
		return map[string]any{"title": fmt.Sprintf("t%d", i), "content": "c", "author_id": "u"}
	}
	first, _ := s.Create(body(0))
	second, _ := s.Create(body(100))
	for round := 0; round < 20; round++ {
		for i, id := range []string{first.ID, second.ID} {
			// Every other round repeats the body: no event, the cached state answers.
			a, _ := s.Write(http.MethodPut, id, body(i*100+round/2))
			if a.ID != id || a.Title != fmt.Sprintf("t%d", i*100+round/2) {
				t.Fatalf("round %d: PUT %s answered id %s title %q", round, id, a.ID, a.Title)
			}
		}
	}
}
