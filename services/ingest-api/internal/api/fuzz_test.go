package api_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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

// idPattern is what the API takes as an event or subscription id.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

func validID(id string) bool { return idPattern.MatchString(id) && id != "." && id != ".." }

// timeCursor reports whether after is a cursor of a listing by time and
// id, read independently of the API's code: exactly the base64url (no
// padding) of "<unix microseconds>:<id>" in its one spelling, the time
// within what RFC 3339 writes (years 0000–9999), the id one validID takes.
func timeCursor(after string, validID func(string) bool) bool {
	raw, err := base64.RawURLEncoding.DecodeString(after)
	if err != nil || base64.RawURLEncoding.EncodeToString(raw) != after {
		return false
	}
	micros, id, ok := strings.Cut(string(raw), ":")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || strconv.FormatInt(us, 10) != micros || !validID(id) {
		return false
	}
	year := time.UnixMicro(us).UTC().Year()
	return year >= 0 && year <= 9999
}

// cursorListings are the routes that take an after parameter, with what
// each takes as a cursor.
var cursorListings = []struct {
	path  string
	valid func(string) bool
}{
	{"/events?after=", func(s string) bool { return timeCursor(s, validID) }},
	{"/events?type=t&status=pending&subscription_id=s&after=", func(s string) bool { return timeCursor(s, validID) }},
	{"/subscriptions/s/deliveries?after=", func(s string) bool { return timeCursor(s, validID) }},
	{"/subscriptions?after=", validID},
	{"/events/e1/deliveries?after=", validID},
	{"/events/e1/attempts?after=", func(s string) bool { return timeCursor(s, attemptID) }},
	{"/events/e1/attempts?subscription_id=s&order=newest&after=", func(s string) bool { return timeCursor(s, attemptID) }},
}

// attemptID reports whether s is an attempt's id as the API writes it.
func attemptID(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

// cursorSeeds are positions at and beyond the edges of a cursor's range,
// and spellings of a valid one that are not the API's.
var cursorSeeds = []string{
	"1700000000000000:e1", "0:e1", "-62167219200000000:e1", "253402300799999999:e1",
	"-62167219200000001:e1", "253402300800000000:e1", "-300000000000000000:e1",
	"-9223372036854775808:e1", "9223372036854775807:e1", "+1700000000000000:e1",
	"01700000000000000:e1", "-0:e1", "1700000000000000:", ":e1", "1700000000000000:..",
	"1700000000000000:e1:e2", "1.5:e1", "1e6:e1", "1700000000000000:é",
	"1700000000000000:1", "1700000000000000:0", "1700000000000000:-1", "1700000000000000:01",
	"1700000000000000:9223372036854775807", "1700000000000000:9223372036854775808",
}

// FuzzCursors sends fuzzed after parameters to every listing that takes
// one: never a 5xx, and either a page (the cursor reads as a position of
// the listing's form) or a 422 on query.after.
func FuzzCursors(f *testing.F) {
	b := newBundle(f)
	_, err := b.db.Pool.Exec(context.Background(), `
		INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('s', 'https://example.com/', '{*}', 'whsec_x');
		INSERT INTO events (id, type, data) VALUES ('e1', 't', '{}');
		INSERT INTO deliveries (event_id, subscription_id) VALUES ('e1', 's');
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms) SELECT id, 1, now(), 1 FROM deliveries;`)
	require.NoError(f, err)
	for _, s := range cursorSeeds {
		f.Add(base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	for _, s := range hostileStrings {
		f.Add(s)
		f.Add(base64.RawURLEncoding.EncodeToString([]byte("1700000000000000:" + s)))
	}
	f.Add("MTcwMDAwMDAwMDAwMDAwMDplMQ==")
	f.Add("MTcwMDAwMDAwMDAwMDAwMDplMR")
	f.Add(strings.Repeat("A", 400))
	f.Fuzz(func(t *testing.T, after string) {
		for _, l := range cursorListings {
			r := b.do(t, http.MethodGet, l.path+url.QueryEscape(after), "")
			require.Less(t, r.status, 500, "%s: %s", l.path, r.raw)
			if r.status == http.StatusOK {
				require.True(t, after == "" || l.valid(after), "%s took %q, which is not a cursor of its form", l.path, after)
				continue
			}
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", l.path, r.raw)
			require.Contains(t, r.locations(), "query.after", r.raw)
		}
	})
}
