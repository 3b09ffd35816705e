package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServerOutlastsSlowClients opens 300 connections that trickle a byte
// at a time, half of them headers and half a body, and checks that the API
// keeps answering others at once and drops the header tricklers after
// readHeaderTimeout.
func TestServerOutlastsSlowClients(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newServer(ln.Addr().String(), mux)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()

	const slow = 300
	done := make(chan struct{})
	var (
		wg        sync.WaitGroup
		connected sync.WaitGroup
		mu        sync.Mutex
		cut       = map[bool]int{} // by whether the connection trickled headers
	)
	connected.Add(slow)
	for i := range slow {
		headers := i%2 == 0
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				connected.Done()
				t.Error(err)
				return
			}
			defer conn.Close()
			start := "POST / HTTP/1.1\r\nHost: api\r\n"
			if !headers {
				start += "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
			}
			_, err = io.WriteString(conn, start)
			connected.Done()
			for err == nil {
				select {
				case <-done:
					return
				case <-time.After(200 * time.Millisecond):
				}
				_, err = conn.Write([]byte("x"))
			}
			mu.Lock()
			cut[headers]++
			mu.Unlock()
		})
	}
	connected.Wait()

	client := &http.Client{Timeout: 2 * time.Second}
	for range 20 {
		began := time.Now()
		resp, err := client.Post("http://"+addr+"/", "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		require.Less(t, time.Since(began), time.Second, "answers do not wait for the slow clients")
		// Spread over the real second in which the slow clients trickle,
		// which the server's read timeouts (on the real clock) govern.
		time.Sleep(50 * time.Millisecond)
	}

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return cut[true] == slow/2
	}, readHeaderTimeout+5*time.Second, 100*time.Millisecond, "the server closes connections whose headers trickle")
	// Raw check that one more request still works on a fresh connection.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	status, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, status, "204")
	close(done)
	wg.Wait()
}

// TestServerRefusesHugeHeaders pins maxHeaderBytes: 431, not memory.
func TestServerRefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newServer(ln.Addr().String(), http.NotFoundHandler())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("b", 2*maxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}
