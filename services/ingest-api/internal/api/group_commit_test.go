package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConcurrentPostsAreStoredOnceEach posts 200 events at once, 50 of them
// a second time with the same id: each id is answered 202 exactly once and
// 200 for its repeat, whatever groups the requests were stored in, and
// each event and its deliveries are stored once.
func TestConcurrentPostsAreStoredOnceEach(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"sub_all","url":"https://example.com/h","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", `{"id":"sub_orders","url":"https://example.com/o","event_types":["order.*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)

	const posts, unique = 200, 150
	type answer struct {
		id         string
		status     int
		receivedAt string
		err        error
	}
	answers := make([]answer, posts)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: posts}}
	var wg sync.WaitGroup
	for i := range posts {
		wg.Go(func() {
			id := fmt.Sprintf("evt_%d", i%unique)
			body := fmt.Sprintf(`{"id":%q,"type":"order.created","source":"shop","data":{"n":%d}}`, id, i%unique)
			req, err := http.NewRequest(http.MethodPost, b.url+"/events", strings.NewReader(body))
			if err != nil {
				answers[i] = answer{err: err}
				return
			}
			req.Header.Set("Authorization", "Bearer "+b.key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				answers[i] = answer{err: err}
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			var got struct {
				ID         string `json:"id"`
				ReceivedAt string `json:"received_at"`
			}
			if err == nil {
				err = json.Unmarshal(raw, &got)
			}
			if err == nil && got.ID != id {
				err = fmt.Errorf("answered for %q: %s", got.ID, raw)
			}
			answers[i] = answer{id: id, status: resp.StatusCode, receivedAt: got.ReceivedAt, err: err}
		})
	}
	wg.Wait()

	accepted := map[string]int{}
	receivedAt := map[string]string{}
	var n202, n200 int
	for _, a := range answers {
		require.NoError(t, a.err)
		switch a.status {
		case http.StatusAccepted:
			n202++
			accepted[a.id]++
		case http.StatusOK:
			n200++
		default:
			t.Fatalf("%s: status %d", a.id, a.status)
		}
		require.NotEmpty(t, a.receivedAt, "every answer carries the stored event")
		if prev, ok := receivedAt[a.id]; ok {
			require.Equal(t, prev, a.receivedAt, "both answers for %s show the one stored event", a.id)
		}
		receivedAt[a.id] = a.receivedAt
	}
	require.Equal(t, unique, n202)
	require.Equal(t, posts-unique, n200)
	require.Len(t, accepted, unique, "each id is created exactly once")
	require.Equal(t, unique, b.count(t, "events"))
	require.Equal(t, 2*unique, b.count(t, "deliveries"))
}
