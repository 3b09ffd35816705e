package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

func sealer(t *testing.T, clk clock.Clock) *Sealer {
	t.Helper()
	m, err := NewSealer(bytes.Repeat([]byte{7}, KeySize), clk)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	now := clk.Now()
	m := sealer(t, clk)
	in := Session{ID: Nonce(), Issued: now, APIKey: "dsp_secretkey", KeyID: "key_1", Scopes: []string{"read"}, TenantID: "acme", Expires: now.Add(time.Hour)}
	v, err := m.Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "dsp_") || strings.Contains(v, "secretkey") {
		t.Fatalf("the key is readable in the cookie: %s", v)
	}
	out, err := m.Open(v)
	if err != nil {
		t.Fatal(err)
	}
	if out.APIKey != in.APIKey || out.KeyID != in.KeyID || out.ID != in.ID || !out.Issued.Equal(in.Issued) || !out.Has("read") || out.Has("write") || out.TenantID != "acme" {
		t.Fatalf("opened %+v", out)
	}
	v2, _ := m.Seal(in)
	if v2 == v {
		t.Fatal("two seals of one session are equal: the nonce is not random")
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	now := clk.Now()
	m := sealer(t, clk)
	good := Session{ID: Nonce(), Issued: now, APIKey: "k", Expires: now.Add(time.Hour)}
	v, err := m.Seal(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(v)
	flipped[10] ^= 1
	other, _ := NewSealer(bytes.Repeat([]byte{8}, KeySize), nil)
	// Sessions sealed before they had an id and an issue time could not be
	// ended by signing out.
	noID, noIssued := good, good
	noID.ID, noIssued.Issued = "", time.Time{}
	withoutID, _ := m.Seal(noID)
	withoutIssued, _ := m.Seal(noIssued)
	for name, value := range map[string]string{"altered": string(flipped), "garbage": "!!!", "empty": "", "short": "AAAA",
		"without an id": withoutID, "without an issue time": withoutIssued} {
		if _, err := m.Open(value); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := other.Open(v); !errors.Is(err, ErrInvalid) {
		t.Errorf("another key opened the session: %v", err)
	}
	clk.Advance(time.Hour - time.Nanosecond)
	if _, err := m.Open(v); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
	clk.Advance(time.Nanosecond)
	if _, err := m.Open(v); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v, want ErrExpired", err)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	m := sealer(t, clock.Real())
	tok := m.Token("cookie-a")
	if !m.ValidToken("cookie-a", tok) {
		t.Fatal("own token refused")
	}
	if m.ValidToken("cookie-b", tok) || m.ValidToken("cookie-a", "") || m.ValidToken("", m.Token("")) {
		t.Fatal("token accepted for another session or empty")
	}
}

func TestNewSealerKeySize(t *testing.T) {
	t.Parallel()
	if _, err := NewSealer(make([]byte, 16), nil); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}
