package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(float64(100 - i)) // 100 ms .. 1 ms, unsorted
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 99, 0},
		{"one p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"one p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"two p50 is the lower", []time.Duration{ms(2), ms(1)}, 50, ms(1)},
		{"two p51 is the upper", []time.Duration{ms(2), ms(1)}, 51, ms(2)},
		{"hundred p50", hundred, 50, ms(50)},
		{"hundred p90", hundred, 90, ms(90)},
		{"hundred p99", hundred, 99, ms(99)},
		{"hundred p99.9", hundred, 99.9, ms(100)},
		{"hundred max", hundred, 100, ms(100)},
		{"tiny p is the minimum", hundred, 0.001, ms(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := newLatencies(tt.in).pct(tt.p); got != tt.want {
				t.Errorf("pct(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestNewLatenciesLeavesItsInputAlone(t *testing.T) {
	t.Parallel()
	in := []time.Duration{3, 1, 2}
	if l := newLatencies(in); !slices.IsSorted(l) || !slices.Equal(in, []time.Duration{3, 1, 2}) {
		t.Errorf("newLatencies sorted %v into %v", in, l)
	}
}

func TestLatencySummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []time.Duration
		ps   []float64
		want string
	}{
		{"none", nil, []float64{50, 99}, "n/a"},
		{"post", []time.Duration{ms(2.4), ms(9), ms(31)}, []float64{50, 99}, "p50 9.0 ms, p99 31 ms, max 31 ms"},
		{"delivery", []time.Duration{ms(5), ms(8), ms(1900), ms(3600)}, []float64{50, 90, 99}, "p50 8.0 ms, p90 3.60 s, p99 3.60 s, max 3.60 s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := newLatencies(tt.in).summary(tt.ps...); got != tt.want {
				t.Errorf("summary = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0.00 ms"},
		{420 * time.Microsecond, "0.42 ms"},
		{ms(2.44), "2.4 ms"},
		{ms(137.4), "137 ms"},
		{ms(1934), "1.93 s"},
		{35200 * time.Millisecond, "35.2 s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := formatDuration(tt.in); got != tt.want {
				t.Errorf("formatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int
		d    time.Duration
		want string
	}{
		{0, 0, "0"},
		{100, 0, "0"},
		{100, -time.Second, "0"},
		{20000, 200 * time.Second, "100"},
		{5000, 6190 * time.Millisecond, "808"},
	}
	for _, tt := range tests {
		if got := rate(tt.n, tt.d); got != tt.want {
			t.Errorf("rate(%d, %v) = %q, want %q", tt.n, tt.d, got, tt.want)
		}
	}
}

// ledgerOf builds the ledger of a finished run of len(events) events.
func ledgerOf(events []ev) *ledger {
	l := newLedger("run", len(events))
	for i, e := range events {
		if e.sent != 0 {
			l.sentAt[i].Store(int64(e.sent))
			l.posted.Add(1)
			if e.accepted {
				l.accepted[i].Store(true)
			} else {
				l.failed.Add(1)
			}
		}
		if e.receipts > 0 {
			l.firstAt[i].Store(int64(e.first))
			l.receipts[i].Store(int32(e.receipts))
			l.distinct.Add(1)
		}
	}
	return l
}

type ev struct {
	sent, first time.Duration
	accepted    bool
	receipts    int
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		name   string
		events []ev
		check  func(t *testing.T, r *report)
	}{
		{"all delivered once", []ev{{s, s + ms(10), true, 1}, {s, s + ms(20), true, 1}, {2 * s, 3 * s, true, 1}}, func(t *testing.T, r *report) {
			want := report{posted: 3, accepted: 3, distinct: 3, receipts: 3, deliverTook: 2 * s}
			if r.posted != want.posted || r.accepted != want.accepted || r.distinct != want.distinct || r.receipts != want.receipts || r.lost != 0 || r.duplicates != 0 || r.deliverTook != want.deliverTook {
				t.Errorf("got %+v", *r)
			}
			if !slices.Equal(r.e2e, latencies{ms(10), ms(20), s}) {
				t.Errorf("e2e = %v", r.e2e)
			}
		}},
		{"lost and duplicated", []ev{{s, 0, true, 0}, {s, 2 * s, true, 3}, {s, 0, true, 0}}, func(t *testing.T, r *report) {
			if r.lost != 2 || r.duplicates != 2 || r.distinct != 1 || r.receipts != 3 {
				t.Errorf("lost %d duplicates %d distinct %d receipts %d; want 2, 2, 1, 3", r.lost, r.duplicates, r.distinct, r.receipts)
			}
		}},
		{"a failed post is not lost, even when delivered", []ev{{s, 0, false, 0}, {s, 2 * s, false, 1}}, func(t *testing.T, r *report) {
			if r.failed != 2 || r.lost != 0 || r.distinct != 1 || r.accepted != 0 {
				t.Errorf("failed %d lost %d distinct %d accepted %d; want 2, 0, 1, 0", r.failed, r.lost, r.distinct, r.accepted)
			}
		}},
		{"nothing posted", []ev{{}, {}}, func(t *testing.T, r *report) {
			if r.posted != 0 || r.lost != 0 || len(r.e2e) != 0 || r.deliverTook != 0 {
				t.Errorf("got %+v", *r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, summarize(ledgerOf(tt.events), posting{started: time.Second, batch: 1}, nil))
		})
	}
}

func TestProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    report
		want int
	}{
		{"clean", report{posted: 10, failed: 3, duplicates: 2}, 0},
		{"lost", report{lost: 1}, 1},
		{"rejected", report{rejected: 1}, 1},
		{"timed out", report{timedOut: true}, 1},
		{"all", report{lost: 1, rejected: 2, timedOut: true}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.r.problems(); len(got) != tt.want {
				t.Errorf("problems() = %q, want %d", got, tt.want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	r := &report{
		settings: "-n 3", posted: 3, accepted: 3, ingestTook: time.Second, batch: 1,
		postLatency: latencies{ms(2), ms(3), ms(9)}, receipts: 4, distinct: 3, deliverTook: 2 * time.Second,
		e2e: latencies{ms(10), ms(20), ms(30)}, duplicates: 1,
		rss: []peak{{name: "ingest-api", bytes: 48.25 * (1 << 20), ok: true}, {name: "delivery-worker"}},
	}
	var b strings.Builder
	r.writeTable(&b)
	want := `| figure                   | value                                               |
|--------------------------|-----------------------------------------------------|
| run                      | -n 3                                                |
| events posted            | 3 (0 failed)                                        |
| ingest rate              | 3 events/s (3 accepted in 1.00 s)                   |
| POST /events latency     | p50 3.0 ms, p99 9.0 ms, max 9.0 ms                  |
| delivered                | 3 distinct (4 requests)                             |
| delivery rate            | 2 deliveries/s (first post to last delivery 2.00 s) |
| post → delivery latency  | p50 20 ms, p90 30 ms, p99 30 ms, max 30 ms          |
| lost                     | 0                                                   |
| duplicates               | 1                                                   |
| rejected signatures      | 0                                                   |
| peak RSS ingest-api      | 48.2 MiB                                            |
| peak RSS delivery-worker | n/a                                                 |
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableAlignsColumns(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	writeTable(&b, [2]string{"a", "b"}, [][2]string{{"post → delivery", "x"}, {"lost", "12345"}})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	width := len([]rune(lines[0]))
	for _, l := range lines {
		if len([]rune(l)) != width || !strings.HasPrefix(l, "|") || !strings.HasSuffix(l, "|") {
			t.Errorf("line %q is not %d characters between pipes", l, width)
		}
	}
}

func TestReportRows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		r     report
		row   string
		value string
	}{
		{"batch latency", report{batch: 100, postLatency: latencies{ms(135)}}, "POST /events/batch latency (100 events a request)", "p50 135 ms, p99 135 ms, max 135 ms"},
		{"no deliveries", report{batch: 1}, "post → delivery latency", "n/a"},
		{"no delivery time", report{batch: 1}, "delivery rate", "0 deliveries/s (first post to last delivery 0.00 ms)"},
		{"unknown ids", report{batch: 1, distinct: 5, receipts: 6, foreign: 2}, "delivered", "5 distinct (6 requests, 2 more of unknown ids)"},
		{"lost", report{batch: 1, lost: 7, timeout: 5 * time.Minute}, "lost", "7 (not delivered within -timeout 5m0s)"},
		{"burst at the default rate", report{batch: 1, distinct: 20000, deliverTook: 200 * time.Second}, "delivery rate", "100 deliveries/s (first post to last delivery 200.0 s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, row := range tt.r.rows() {
				if row[0] == tt.row {
					if row[1] != tt.value {
						t.Errorf("%s = %q, want %q", tt.row, row[1], tt.value)
					}
					return
				}
			}
			t.Errorf("no row %q in %q", tt.row, tt.r.rows())
		})
	}
}
