package systest_test

import (
	"encoding/json"
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
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	t.Cleanup(client.CloseIdleConnections)
	create := func(title string) string {
		r, err := systest.Do(client, "POST", s.Cmd()+"/api/articles", map[string]any{"title": title, "content": "c", "author_id": "u"})
		if err != nil || r.Status != 201 {
			t.Fatalf("create: %v %d %s", err, r.Status, r.Body)
		}
		var a struct{ ID string }
		r.JSON(t, &a)
		return a.ID
	}
	ids := []string{create("first"), create("second")}
	body := func(i int) map[string]any {
		return map[string]any{"title": fmt.Sprintf("t%d", i), "content": "c", "author_id": "u"}
	}
	for round := 0; round < 20; round++ {
		for i, id := range ids {
			// Every other round repeats the body: no event, the cached state answers.
			r, err := systest.Do(client, "PUT", s.Cmd()+"/api/articles/"+id, body(i*100+round/2))
			if err != nil || r.Status != 200 {
				t.Fatalf("PUT %s: %v %d %s", id, err, r.Status, r.Body)
			}
			var a struct {
				ID    string
				Title string
			}
			if err := json.Unmarshal(r.Body, &a); err != nil {
				t.Fatal(err)
			}
			if a.ID != id || a.Title != fmt.Sprintf("t%d", i*100+round/2) {
				t.Fatalf("round %d: PUT %s answered id %s title %q", round, id, a.ID, a.Title)
			}
		}
	}
}
