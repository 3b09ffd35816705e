package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostileStrings are the seeds both fuzz targets start from: what broke
// the API before, and what a hostile client tries first.
var hostileStrings = []string{
	"", ".", "..", "a\x00b", "\xff\xfe", "\xc0\x80", "a\r\nX-Injected: 1", "%00", "%ff",
	`\u0000`, `\ud800`, `\udc00`, `\ud83d\ude00`, "é", "ID", "../../etc/passwd",
}

// snapshot is the whole of tables as text, to tell whether a refused
// request wrote anything.
func (b *bundle) snapshot(t *testing.T, tables ...string) string {
	t.Helper()
	var out string
	for _, table := range tables {
		var s string
		require.NoError(t, b.db.Pool.QueryRow(context.Background(),
			`SELECT coalesce(string_agg(to_jsonb(x)::text, ',' ORDER BY to_jsonb(x)::text), '') FROM `+table+` x`).Scan(&s))
		out += table + ":" + s + "\n"
	}
	return out
}

// checkAnswer fails on a 5xx, and on a refused request that changed the
// database.
func checkAnswer(t *testing.T, r response, before, after string) {
	t.Helper()
	require.Less(t, r.status, 500, "a 5xx: %s", r.raw)
	if r.status >= 400 {
		require.Equal(t, before, after, "a refused request (%d) wrote: %s", r.status, r.raw)
	}
}

// FuzzEvents posts fuzzed event bodies and reads fuzzed event ids through
// the real handler and database.
func FuzzEvents(f *testing.F) {
	b := newBundle(f)
	for _, s := range hostileStrings {
		f.Add(`{"id":"e1","type":"t","source":"`+s+`","data":{"k":"`+s+`"}}`, s)
		f.Add(`{"id":"`+s+`","type":"t","data":{"`+s+`":1}}`, s)
	}
	f.Add(`{"ID":"e2","type":"t","data":{}}`, "e2")
	f.Add(`{"id":"e3","type":"t","data":{"a":{"a":{"a":[[[[[[1]]]]]]}}}}`, "e3")
	f.Add(`{"id":"e4","type":"t","data":{}}`+"\x00", "e4")
	f.Fuzz(func(t *testing.T, body, id string) {
		tables := []string{"events", "deliveries"}
		before := b.snapshot(t, tables...)
		r := b.do(t, http.MethodPost, "/events", body)
		checkAnswer(t, r, before, b.snapshot(t, tables...))
		if r.status == http.StatusAccepted || r.status == http.StatusOK {
			stored := b.do(t, http.MethodGet, "/events/"+url.PathEscape(r.body["id"].(string)), "")
			require.Equal(t, http.StatusOK, stored.status, "an accepted event can be read: %s", stored.raw)
		}
		for _, path := range []string{"/events/" + url.PathEscape(id), "/events/" + url.PathEscape(id) + "/attempts"} {
			before := b.snapshot(t, tables...)
			r := b.do(t, http.MethodGet, path, "")
			checkAnswer(t, r, before, b.snapshot(t, tables...))
		}
	})
}

// FuzzEventsBatch posts batches of two fuzzed events, and fuzzed batch
// bodies, through the real handler and database: never a 5xx, a refused
// batch writes nothing, and an answered one stored exactly the events it
// reports stored, each readable.
func FuzzEventsBatch(f *testing.F) {
	b := newBundle(f)
	for _, s := range hostileStrings {
		f.Add(`{"id":"b1","type":"t","source":"`+s+`","data":{"k":"`+s+`"}}`, `{"id":"`+s+`","type":"t","data":{"`+s+`":1}}`, false)
		f.Add(`{"events":[{"id":"`+s+`","type":"t","data":{}}]}`, s, true)
	}
	f.Add(`{"id":"b2","type":"t","data":{}}`, `{"id":"b2","type":"u","data":{}}`, false)
	f.Add(`{"ID":"b3","type":"t","data":{}}`, `{"id":"b3","type":"t","data":[]}`, false)
	f.Add(`{"id":"b4","type":"t","data":{"a":{"a":{"a":[[[[[[1]]]]]]}}}}`, `null`, false)
	f.Add(`{"events":[{"id":"b5","type":"t","data":{}}],"events":[]}`, "", true)
	f.Add(`{"events":[{"id":"b6","type":"t","data":{}}]}`+"\x00", "", true)
	f.Fuzz(func(t *testing.T, first, second string, whole bool) {
		body := `{"events":[` + first + `,` + second + `]}`
		if whole {
			body = first
		}
		tables := []string{"events", "deliveries"}
		before := b.snapshot(t, tables...)
		stored := b.count(t, "events")
		r := b.do(t, http.MethodPost, "/events/batch", body)
		checkAnswer(t, r, before, b.snapshot(t, tables...))
		if r.status != http.StatusOK {
			return
		}
		n, _ := r.body["stored"].(float64)
		require.Equal(t, stored+int(n), b.count(t, "events"), "stored as many events as reported: %s", r.raw)
		for _, item := range r.body["data"].([]any) {
			res := item.(map[string]any)
			if res["status"] == "invalid" {
				continue
			}
			got := b.do(t, http.MethodGet, "/events/"+url.PathEscape(res["id"].(string)), "")
			require.Equal(t, http.StatusOK, got.status, "a stored or known event can be read: %s", got.raw)
		}
	})
}

// FuzzSubscriptions creates, changes and lists subscriptions with fuzzed
// bodies, ids and cursors through the real handler and database.
func FuzzSubscriptions(f *testing.F) {
	b := newBundle(f)
	for _, s := range hostileStrings {
		f.Add(`{"id":"`+s+`","url":"http://h/","event_types":["*"]}`, `{"state":"paused"}`, s)
		f.Add(`{"url":"http://h/`+s+`","event_types":["`+s+`"],"secret":"`+s+`"}`, `{"url":"http://h/`+s+`"}`, s)
	}
	f.Add(`{"id":"s1","url":"http://h/","event_types":["*"],"retry_base_delay_ms":10000}`, `{"retry_max_delay_ms":5000,"state":"paused"}`, "s1")
	f.Add(`{"id":"s2","url":"http://h/","event_types":["*"]}`, `{"STATE":"paused","Url":"http://x/"}`, "s2")
	f.Add(`{"id":"s3","url":"http://h/","event_types":["*"],"max_attempts":1e99}`, `{"event_types":[]}`, "s3")
	f.Fuzz(func(t *testing.T, create, patch, id string) {
		tables := []string{"subscriptions"}
		before := b.snapshot(t, tables...)
		r := b.do(t, http.MethodPost, "/subscriptions", create)
		checkAnswer(t, r, before, b.snapshot(t, tables...))
		if r.status == http.StatusCreated {
			id = r.body["id"].(string)
		}
		path := "/subscriptions/" + url.PathEscape(id)
		before = b.snapshot(t, tables...)
		r = b.do(t, http.MethodPatch, path, patch)
		checkAnswer(t, r, before, b.snapshot(t, tables...))
		for _, p := range []string{path, "/subscriptions?after=" + url.QueryEscape(id)} {
			before := b.snapshot(t, tables...)
			checkAnswer(t, b.do(t, http.MethodGet, p, ""), before, b.snapshot(t, tables...))
		}
	})
}
