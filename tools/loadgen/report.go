package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// latencies are durations sorted in increasing order.
type latencies []time.Duration

func newLatencies(ds []time.Duration) latencies {
	l := slices.Clone(ds)
	slices.Sort(l)
	return l
}

// pct returns the p-th percentile (0 < p <= 100) by the nearest-rank
// method: the smallest value at least p% of the values are at or below.
// It is 0 for no values.
func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(l))))
	return l[min(max(rank, 1), len(l))-1]
}

// summary formats the given percentiles and the maximum, e.g.
// "p50 2.4 ms, p99 9.0 ms, max 31 ms"; "n/a" for no values.
func (l latencies) summary(ps ...float64) string {
	if len(l) == 0 {
		return "n/a"
	}
	parts := make([]string, 0, len(ps)+1)
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("p%g %s", p, formatDuration(l.pct(p))))
	}
	return strings.Join(append(parts, "max "+formatDuration(l.pct(100))), ", ")
}

// report is what a run measured.
type report struct {
	settings string // the flags that shaped the run

	posted, failed int           // events whose request was answered; those not accepted
	accepted       int           // events the API accepted
	ingestTook     time.Duration // first request to last answer
	batch          int           // events a request
	postLatency    latencies     // per request

	receipts    int           // verified deliveries
	distinct    int           // events delivered at least once
	deliverTook time.Duration // first request to the last first delivery
	e2e         latencies     // post→first delivery, per delivered event
	lost        int           // accepted, never delivered
	duplicates  int           // receipts beyond the first of an event
	rejected    int           // deliveries whose signature did not verify
	foreign     int           // verified deliveries of ids not of this run

	rss      []peak
	timeout  time.Duration // -timeout
	timedOut bool          // -timeout stopped the posting
}

// summarize reads a run's ledger once the run is over.
func summarize(led *ledger, p posting, rss []peak) *report {
	r := &report{
		posted:      int(led.posted.Load()),
		failed:      int(led.failed.Load()),
		ingestTook:  p.took,
		batch:       p.batch,
		postLatency: newLatencies(p.latency),
		rejected:    int(led.rejected.Load()),
		foreign:     int(led.foreign.Load()),
		rss:         rss,
	}
	var e2e []time.Duration
	var last int64
	for i := range led.sentAt {
		receipts := int(led.receipts[i].Load())
		first := led.firstAt[i].Load()
		accepted := led.accepted[i].Load()
		r.receipts += receipts
		if accepted {
			r.accepted++
		}
		if receipts > 1 {
			r.duplicates += receipts - 1
		}
		if first == 0 {
			if accepted {
				r.lost++
			}
			continue
		}
		r.distinct++
		last = max(last, first)
		if sent := led.sentAt[i].Load(); sent != 0 {
			e2e = append(e2e, time.Duration(first-sent))
		}
	}
	if r.distinct > 0 {
		r.deliverTook = time.Duration(last) - p.started
	}
	r.e2e = newLatencies(e2e)
	return r
}

// problems are the reasons the run should exit non-zero.
func (r *report) problems() []string {
	var ps []string
	if r.lost > 0 {
		ps = append(ps, fmt.Sprintf("%d accepted events were not delivered", r.lost))
	}
	if r.rejected > 0 {
		ps = append(ps, fmt.Sprintf("%d deliveries had signatures that did not verify", r.rejected))
	}
	if r.timedOut {
		ps = append(ps, "-timeout stopped the posting")
	}
	return ps
}

// rows are the report's lines as (figure, value) pairs.
func (r *report) rows() [][2]string {
	post := "POST /events latency"
	if r.batch > 1 {
		post = fmt.Sprintf("POST /events/batch latency (%d events a request)", r.batch)
	}
	delivered := fmt.Sprintf("%d distinct (%d requests)", r.distinct, r.receipts)
	if r.foreign > 0 {
		delivered = fmt.Sprintf("%d distinct (%d requests, %d more of unknown ids)", r.distinct, r.receipts, r.foreign)
	}
	rows := [][2]string{
		{"run", r.settings},
		{"events posted", fmt.Sprintf("%d (%d failed)", r.posted, r.failed)},
		{"ingest rate", fmt.Sprintf("%s events/s (%d accepted in %s)", rate(r.accepted, r.ingestTook), r.accepted, formatDuration(r.ingestTook))},
		{post, r.postLatency.summary(50, 99)},
		{"delivered", delivered},
		{"delivery rate", fmt.Sprintf("%s deliveries/s (first post to last delivery %s)", rate(r.distinct, r.deliverTook), formatDuration(r.deliverTook))},
		{"post → delivery latency", r.e2e.summary(50, 90, 99)},
		{"lost", lostText(r)},
		{"duplicates", fmt.Sprint(r.duplicates)},
		{"rejected signatures", fmt.Sprint(r.rejected)},
	}
	for _, p := range r.rss {
		rows = append(rows, [2]string{"peak RSS " + p.name, formatBytes(p)})
	}
	return rows
}

func lostText(r *report) string {
	if r.lost == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (not delivered within -timeout %v)", r.lost, r.timeout)
}

// writeTable writes the report as a Markdown table with aligned columns.
func (r *report) writeTable(w io.Writer) {
	writeTable(w, [2]string{"figure", "value"}, r.rows())
}

func writeTable(w io.Writer, head [2]string, rows [][2]string) {
	width := [2]int{len([]rune(head[0])), len([]rune(head[1]))}
	for _, row := range rows {
		for c := range row {
			width[c] = max(width[c], len([]rune(row[c])))
		}
	}
	line := func(cells [2]string) {
		fmt.Fprintf(w, "| %s | %s |\n", pad(cells[0], width[0]), pad(cells[1], width[1]))
	}
	line(head)
	fmt.Fprintf(w, "|%s|%s|\n", strings.Repeat("-", width[0]+2), strings.Repeat("-", width[1]+2))
	for _, row := range rows {
		line(row)
	}
}

// pad pads s with spaces to width characters (not bytes).
func pad(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-len([]rune(s))))
}

// rate is n over d a second, rounded; "0" when d is not positive.
func rate(n int, d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

// formatDuration writes d with two or three significant digits, in ms
// below a second: 0.42 ms, 2.4 ms, 137 ms, 1.93 s, 35.2 s.
func formatDuration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 1:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.1f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 10000:
		return fmt.Sprintf("%.2f s", ms/1000)
	default:
		return fmt.Sprintf("%.1f s", ms/1000)
	}
}

// formatBytes writes a peak in MiB, or "n/a" if it was never read.
func formatBytes(p peak) string {
	if !p.ok {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", p.bytes/(1<<20))
}
