package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func up(ctx context.Context, s settings) error {
	shareMachine()
	if err := prepareDatabase(ctx, s.databaseURL); err != nil {
		return err
	}
	brokers := s.kafkaBrokers
	if brokers == "" {
		c, err := startKafka(ctx, s)
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = strings.Join(c.ListenAddrs(), ",")
		fmt.Printf("embedded Kafka on %s (data in %s)\n", brokers, filepath.Join(s.dataDir, "kafka"))
	} else if err := ensureTopic(ctx, s, strings.Split(brokers, ",")); err != nil {
		return err
	}
	secret, err := demoSecret(s.dataDir)
	if err != nil {
		return err
	}
	key, err := devAPIKey(ctx, s.databaseURL, s.dataDir)
	if err != nil {
		return err
	}
	sealKey, err := secretsKey(s.dataDir)
	if err != nil {
		return err
	}
	sessionKey, err := dashboardSessionKey(s.dataDir)
	if err != nil {
		return err
	}
	receiver, err := startReceiver(s.receiverAddr, secret, os.Stdout)
	if err != nil {
		return err
	}
	defer receiver.Close()
	fmt.Printf("demo receiver on http://%s/webhook\n", s.receiverAddr)

	common := []string{
		"DATABASE_URL=" + s.databaseURL, "KAFKA_BROKERS=" + brokers, "KAFKA_TOPIC=" + s.topic,
		"LOG_FORMAT=text", "SHUTDOWN_TIMEOUT=10s",
		// The demo receiver is local; deliveries to internal addresses are
		// refused unless allowed.
		"DELIVERY_ALLOW_CIDRS=127.0.0.0/8,::1/128",
		"SECRETS_ENCRYPTION_KEY=" + sealKey,
	}
	var procs []*process
	defer func() { stopAll(procs) }()
	api := "http://" + s.apiAddr
	for _, svc := range []struct {
		name, addr string
		env        []string
	}{
		{"ingest-api", s.apiAddr, []string{"PORTAL_URL=http://" + s.dashAddr + "/portal"}},
		{"delivery-worker", s.workerAddr, nil},
		{"retry-scheduler", s.schedAddr, nil},
		{"dashboard", s.dashAddr, []string{"DISPATCH_API_URL=" + api, "DASHBOARD_SESSION_KEY=" + sessionKey}},
	} {
		env := append(append(append([]string{}, common...), svc.env...), "ADDR="+svc.addr, "INSTANCE_ID="+svc.name+"-1", procsEnv(svc.name))
		p, err := startProcess(filepath.Join(s.binDir, svc.name), svc.name, env)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	for _, svc := range []struct{ name, base string }{
		{"ingest-api", api}, {"delivery-worker", "http://" + s.workerAddr},
		{"retry-scheduler", "http://" + s.schedAddr}, {"dashboard", "http://" + s.dashAddr},
	} {
		if err := waitReady(ctx, svc.base); err != nil {
			return err
		}
		fmt.Printf("%s is up on %s\n", svc.name, svc.base)
	}
	if err := ensureDemoSubscription(ctx, api, key, "http://"+s.receiverAddr+"/webhook", secret); err != nil {
		return err
	}
	sampleID := fmt.Sprintf("evt_sample_%d", time.Now().Unix())
	if _, _, err := callJSON(ctx, http.MethodPost, api+"/events", key, map[string]any{"id": sampleID, "type": "order.created", "source": "devstack", "data": map[string]any{"order_id": 1, "note": "sample event sent by the dev stack"}}); err != nil {
		return err
	}
	fmt.Printf(`
Dispatch is running. Ctrl-C stops everything.
  API            %[1]s   (interactive docs: %[1]s/docs, OpenAPI: %[1]s/openapi.json)
  dashboard      http://%[7]s   (sign in with the key in %[6]s)
  worker         http://%[2]s/metrics
  scheduler      http://%[5]s/metrics
  demo receiver  http://%[3]s/webhook   (subscription "demo", all event types)
A sample event %[4]s was sent; its delivery is printed by [receiver] above or below.
Every API call needs a key; an admin key is in %[6]s:
  export DISPATCH_API_KEY=$(cat %[6]s)
Send your own:
  curl -sS -X POST %[1]s/events -H "Authorization: Bearer $DISPATCH_API_KEY" -H 'Content-Type: application/json' \
    -d '{"id":"evt_1","type":"order.created","source":"shop","data":{"order_id":42}}'
  curl -sS -H "Authorization: Bearer $DISPATCH_API_KEY" %[1]s/events/evt_1
  curl -sS -H "Authorization: Bearer $DISPATCH_API_KEY" %[1]s/events/evt_1/attempts
A customer portal link (single use, an hour) for the default tenant; open its url:
  curl -sS -X POST %[1]s/tenants/default/portal-links -H "Authorization: Bearer $DISPATCH_API_KEY"

`, api, s.workerAddr, s.receiverAddr, sampleID, s.schedAddr, filepath.Join(s.dataDir, "dev-api-key"), s.dashAddr)

	exited := make(chan string, len(procs))
	for _, p := range procs {
		go func() { <-p.done; exited <- p.name }()
	}
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping…")
		return nil
	case name := <-exited:
		return fmt.Errorf("%s exited; see its output above", name)
	}
}

// ensureDemoSubscription makes sure the subscription "demo" sends every
// event to the demo receiver, signed with the secret it holds. It creates
// what is missing and updates what changed, and never deletes: a
// subscription's deliveries and attempts go with it, and a restart of the
// dev stack must keep the history of earlier runs. Its secret cannot be
// read back to compare, so it is set again (with no grace period) on every
// start: a database shared with another checkout, or a lost .data, may
// hold another one. A subscription someone paused stays paused.
func ensureDemoSubscription(ctx context.Context, api, key, url, secret string) error {
	want := map[string]any{"id": "demo", "url": url, "event_types": []string{"*"}, "secret": secret}
	code, body, err := callJSON(ctx, http.MethodGet, api+"/subscriptions/demo", key, nil)
	if err != nil {
		return err
	}
	switch code {
	case http.StatusNotFound:
		code, body, err = callJSON(ctx, http.MethodPost, api+"/subscriptions", key, want)
		if err != nil {
			return err
		}
		if code != http.StatusCreated {
			return fmt.Errorf("create demo subscription: HTTP %d: %s", code, body)
		}
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("read demo subscription: HTTP %d: %s", code, body)
	}
	var have struct {
		URL        string   `json:"url"`
		EventTypes []string `json:"event_types"`
		State      string   `json:"state"`
	}
	if err := json.Unmarshal(body, &have); err != nil {
		return fmt.Errorf("read demo subscription: %w", err)
	}
	if have.URL != url || !slices.Equal(have.EventTypes, []string{"*"}) {
		code, body, err = callJSON(ctx, http.MethodPatch, api+"/subscriptions/demo", key, map[string]any{"url": url, "event_types": []string{"*"}})
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("update demo subscription: HTTP %d: %s", code, body)
		}
		fmt.Printf("subscription demo now sends every event to %s\n", url)
	}
	code, body, err = callJSON(ctx, http.MethodPost, api+"/subscriptions/demo/secret/rotate", key, map[string]any{"secret": secret, "grace_period_ms": 0})
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("set the demo subscription's secret: HTTP %d: %s", code, body)
	}
	if have.State != "active" {
		fmt.Printf("subscription demo is %s; resume it with PATCH /subscriptions/demo {\"state\":\"active\"}\n", have.State)
	}
	return nil
}

// callJSON sends body (if not nil) as JSON with the key and returns the
// answer's status and body.
func callJSON(ctx context.Context, method, url, key string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// waitReady returns once the service at base answers /readyz with 200.
func waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not become ready within 30s", base)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// process is a service started by the dev stack, its output prefixed.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProcess(bin, name string, env []string) (*process, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not built (run `go tool task build`): %w", bin, err)
	}
	// Not CommandContext: that would kill the services when the dev stack
	// is interrupted, and stopAll stops them in order with SIGTERM instead.
	cmd := exec.Command(bin) //nolint:noctx // stopped by stopAll, as said above
	cmd.Env = append(os.Environ(), env...)
	// Its own process group: Ctrl-C reaches the dev stack, which then
	// stops each service in order with SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Printf("[%s] %s\n", name, sc.Text())
		}
	})
	go func() {
		wg.Wait()
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stopAll stops services in reverse start order, each within 20 seconds.
func stopAll(procs []*process) {
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			fmt.Fprintf(os.Stderr, "%s did not stop in time; killing it\n", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}
