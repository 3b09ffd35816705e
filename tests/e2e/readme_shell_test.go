package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shellCommand is one command of the README's shell examples (its
// continuation lines joined) and the HTTP status each curl in it must get.
type shellCommand struct {
	text   string
	curls  int
	status int // 0: any 2xx
}

// readmeShell is the README's shell examples that call the API: the
// script, in the README's order, and its commands.
type readmeShell struct {
	script   string
	commands []shellCommand
}

// curlCall matches each curl a command runs.
var curlCall = regexp.MustCompile(`(^|[\s($|])curl\s`)

// expectedStatus matches the "# → 422 …" line after a command that
// answers other than 2xx.
var expectedStatus = regexp.MustCompile(`^#\s*→\s*(\d{3})\b`)

// parseReadmeShell takes every ```sh block with a curl in it from the
// README, in order.
func parseReadmeShell(readme string) (readmeShell, error) {
	var (
		out     readmeShell
		script  strings.Builder
		inBlock bool
		block   []string
	)
	sc := bufio.NewScanner(strings.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !inBlock && line == "```sh":
			inBlock, block = true, nil
		case inBlock && line == "```":
			inBlock = false
			text := strings.Join(block, "\n")
			if !curlCall.MatchString(text) {
				continue
			}
			script.WriteString(text + "\n")
			out.commands = append(out.commands, shellCommands(block)...)
		case inBlock:
			block = append(block, line)
		}
	}
	if inBlock {
		return out, fmt.Errorf("a ```sh block is not closed")
	}
	out.script = script.String()
	return out, sc.Err()
}

// shellCommands splits a block into its commands with curl, each with the
// status a "# → NNN" line right after it names.
func shellCommands(lines []string) []shellCommand {
	var cmds []shellCommand
	var cur []string
	last := -1 // the index in cmds of the command just ended, if it has curl
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		if len(cur) == 0 {
			if m := expectedStatus.FindStringSubmatch(trimmed); m != nil && last >= 0 {
				cmds[last].status, _ = strconv.Atoi(m[1])
			}
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				if trimmed == "" {
					last = -1
				}
				continue
			}
		}
		cur = append(cur, strings.TrimSuffix(line, `\`))
		if strings.HasSuffix(line, `\`) {
			continue
		}
		text := strings.Join(cur, " ")
		cur = nil
		last = -1
		if n := len(curlCall.FindAllString(text, -1)); n > 0 {
			cmds = append(cmds, shellCommand{text: text, curls: n})
			last = len(cmds) - 1
		}
	}
	return cmds
}

func TestParseReadmeShell(t *testing.T) {
	t.Parallel()
	readme := "intro\n```sh\ngo tool task dev\n```\n```sh\nexport K=1\n\n# create\ncurl -sS -X POST localhost:8080/a \\\n  -d '{}'\n# → {\"ok\":true}\nID=$(curl -sS localhost:8080/a | jq -r .id)\n\n# bad\ncurl -sS localhost:8080/b\n# → 422 on body.url\n```\n```go\ncurl := 1\n```\n"
	got, err := parseReadmeShell(readme)
	if err != nil {
		t.Fatal(err)
	}
	want := []shellCommand{
		{text: "curl -sS -X POST localhost:8080/a    -d '{}'", curls: 1},
		{text: "ID=$(curl -sS localhost:8080/a | jq -r .id)", curls: 1},
		{text: "curl -sS localhost:8080/b", curls: 1, status: 422},
	}
	if fmt.Sprint(got.commands) != fmt.Sprint(want) {
		t.Errorf("commands = %+v\nwant %+v", got.commands, want)
	}
	if strings.Contains(got.script, "task dev") || strings.Contains(got.script, "curl := 1") || !strings.HasPrefix(got.script, "export K=1\n") {
		t.Errorf("script = %q: want only the sh blocks with curl", got.script)
	}
}

// TestReadmeShellExamples runs the README's shell examples in order,
// as written, against a dev stack: only its addresses differ from the
// defaults. Each curl must get a 2xx, or the status the "# →" line after it
// names, and every delivery they cause must reach the demo receiver,
// verified.
func TestReadmeShellExamples(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's examples need %s (apt-get install %s): %v", tool, tool, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := parseReadmeShell(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.commands) < 20 {
		t.Fatalf("found only %d commands with curl in the README", len(sh.commands))
	}

	d := newDevStack(t)
	d.start()
	script := strings.NewReplacer(
		"localhost:8080", d.addrs["API_ADDR"],
		"127.0.0.1:9000", d.addrs["RECEIVER_ADDR"],
	).Replace(sh.script)
	// Each curl reports its status on stderr, leaving its output as the
	// README shows it (and as jq reads it).
	prelude := "set -euo pipefail\ncurl() { command curl -w '%{stderr}@@status %{http_code}\\n' \"$@\"; }\n"
	cmd := exec.Command("bash", "-c", prelude+script)
	cmd.Dir = d.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's examples stopped: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}

	var statuses []int
	for line := range strings.Lines(stderr.String()) {
		if code, ok := strings.CutPrefix(strings.TrimSpace(line), "@@status "); ok {
			n, _ := strconv.Atoi(code)
			statuses = append(statuses, n)
		}
	}
	i := 0
	for _, c := range sh.commands {
		for range c.curls {
			if i >= len(statuses) {
				t.Fatalf("%d curls ran, fewer than the README's; the first missing: %s", len(statuses), c.text)
			}
			got := statuses[i]
			i++
			if c.status == 0 && (got < 200 || got > 299) {
				t.Errorf("%s\n  answered %d, want a 2xx (or a \"# → %d\" line after it)", c.text, got, got)
			}
			if c.status != 0 && got != c.status {
				t.Errorf("%s\n  answered %d, want %d as its \"# →\" line says", c.text, got, c.status)
			}
		}
	}
	if i != len(statuses) {
		t.Errorf("%d curls ran, the README has %d", len(statuses), i)
	}
	if t.Failed() {
		t.Logf("output:\n%s", stdout.String())
	}

	// Every delivery the examples caused reaches the demo receiver, which
	// verifies it: nothing is left retrying, failed or with an open circuit.
	eventually(t, time.Minute, func() bool {
		_, subs := d.call("GET", "/subscriptions?limit=250", nil)
		list, _ := subs["data"].([]any)
		for _, s := range list {
			id := s.(map[string]any)["id"].(string)
			_, ds := d.call("GET", "/subscriptions/"+id+"/deliveries?limit=250", nil)
			items, _ := ds["data"].([]any)
			for _, del := range items {
				if del.(map[string]any)["status"] != "delivered" {
					return false
				}
			}
		}
		return true
	}, "deliveries caused by the README's examples did not all arrive: %s", d.out)
	if out := d.out.String(); strings.Contains(out, "REJECTED") {
		t.Errorf("the demo receiver refused a delivery:\n%s", out)
	}
	_, subs := d.call("GET", "/subscriptions?limit=250", nil)
	for _, s := range subs["data"].([]any) {
		id := s.(map[string]any)["id"].(string)
		if code, sub := d.call("GET", "/subscriptions/"+id, nil); code != http.StatusOK || sub["circuit_state"] == "open" {
			t.Errorf("GET /subscriptions/%s = %d %v", id, code, sub)
		}
	}
}
