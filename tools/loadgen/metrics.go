package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssMetric is the resident memory gauge of the Prometheus Go client's
// process collector.
const rssMetric = "process_resident_memory_bytes"

// target is a service whose /metrics the tool scrapes.
type target struct {
	name string // given with name=URL; empty: from the metric's labels, else the URL
	url  string // base URL; /metrics is appended
}

// parseTargets parses comma-separated [name=]URL entries.
func parseTargets(s string) ([]target, error) {
	var ts []target
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var t target
		if name, u, ok := strings.Cut(entry, "="); ok && !strings.Contains(name, "/") {
			t.name, entry = strings.TrimSpace(name), strings.TrimSpace(u)
		}
		u, err := url.Parse(entry)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("-metrics: %q is not an http(s) base URL", entry)
		}
		t.url = strings.TrimSuffix(entry, "/")
		ts = append(ts, t)
	}
	return ts, nil
}

// peak is the highest resident memory seen of one service.
type peak struct {
	name  string
	bytes float64
	ok    bool // at least one scrape read the metric
}

// rssWatch scrapes targets until its context ends.
type rssWatch struct {
	mu    sync.Mutex
	peaks []peak // by target
	wg    sync.WaitGroup
}

// watchRSS scrapes each target's /metrics every interval until ctx ends,
// keeping the highest process_resident_memory_bytes. The first failure of
// each target is written to log; it does not stop the run.
func watchRSS(ctx context.Context, client *http.Client, targets []target, every time.Duration, log io.Writer) *rssWatch {
	w := &rssWatch{peaks: make([]peak, len(targets))}
	for i, t := range targets {
		w.peaks[i].name = t.name
		if w.peaks[i].name == "" {
			w.peaks[i].name = t.url
		}
		w.wg.Go(func() { w.watch(ctx, client, i, t, every, log) })
	}
	return w
}

func (w *rssWatch) watch(ctx context.Context, client *http.Client, i int, t target, every time.Duration, log io.Writer) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	reported := false
	for {
		v, labels, err := scrapeRSS(ctx, client, t.url+"/metrics")
		switch {
		case err == nil:
			w.record(i, t, v, labels)
		case !reported && ctx.Err() == nil:
			reported = true
			fmt.Fprintf(log, "loadgen: no memory figure from %s: %v (n/a unless a later scrape works)\n", serviceName(t, nil), err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *rssWatch) record(i int, t target, v float64, labels map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := &w.peaks[i]
	p.name = serviceName(t, labels)
	if !p.ok || v > p.bytes {
		p.bytes = v
	}
	p.ok = true
}

// result waits for the scrapers to stop (cancel their context first) and
// returns the peak of each target, in the order given.
func (w *rssWatch) result() []peak {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]peak(nil), w.peaks...)
}

// serviceName names a target: the name given with -metrics, else the
// metric's service label, else its instance label, else the URL.
func serviceName(t target, labels map[string]string) string {
	for _, name := range []string{t.name, labels["service"], labels["instance"]} {
		if name != "" {
			return name
		}
	}
	return t.url
}

// scrapeRSS reads process_resident_memory_bytes from a /metrics URL.
func scrapeRSS(ctx context.Context, client *http.Client, url string) (float64, map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, nil, errors.New(resp.Status)
	}
	return findGauge(resp.Body, rssMetric)
}

// findGauge returns the value and labels of the first sample of metric in
// the Prometheus text exposition format.
func findGauge(r io.Reader, metric string) (float64, map[string]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, value, err := parseSample(line)
		if err != nil || name != metric {
			continue
		}
		return value, labels, nil
	}
	if err := sc.Err(); err != nil {
		return 0, nil, err
	}
	return 0, nil, fmt.Errorf("no %s", metric)
}

// parseSample parses one sample line of the text format:
// name{label="value",...} value [timestamp].
func parseSample(line string) (name string, labels map[string]string, value float64, err error) {
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return "", nil, 0, fmt.Errorf("no value in %q", line)
	}
	name, rest := line[:end], line[end:]
	if rest[0] == '{' {
		labels, rest, err = parseLabels(rest[1:])
		if err != nil {
			return "", nil, 0, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return "", nil, 0, fmt.Errorf("no value in %q", line)
	}
	value, err = strconv.ParseFloat(fields[0], 64)
	return name, labels, value, err
}

// parseLabels parses label="value" pairs up to the closing brace and
// returns them with the text after the brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return nil, "", errors.New("unclosed labels")
		}
		if s[0] == '}' {
			return labels, s[1:], nil
		}
		name, rest, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(strings.TrimSpace(rest), `"`) {
			return nil, "", fmt.Errorf("bad label in %q", s)
		}
		value, rest, err := unquote(strings.TrimSpace(rest)[1:])
		if err != nil {
			return nil, "", err
		}
		labels[strings.TrimSpace(name)] = value
		s = rest
	}
}

// unquote reads a label value up to its closing quote, undoing the text
// format's escapes (\\, \", \n), and returns it with the text after the
// quote.
func unquote(s string) (string, string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", errors.New("unclosed label value")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unclosed label value")
}
