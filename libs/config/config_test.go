package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

func TestEnv(t *testing.T) {
	t.Parallel()
	env := config.FromMap(map[string]string{
		"A": "x", "N": "12", "D": "5s", "L": "a, b,,c", "BAD_N": "many", "LOW_N": "0", "BAD_D": "-1s", "MODE": "json", "BAD_MODE": "xml",
	})
	if got := env.String("A", "d"); got != "x" {
		t.Errorf("String = %q", got)
	}
	if got := env.String("UNSET", "d"); got != "d" {
		t.Errorf("String default = %q", got)
	}
	if got := env.Int("N", 1, 1); got != 12 {
		t.Errorf("Int = %d", got)
	}
	if got := env.Duration("D", time.Second); got != 5*time.Second {
		t.Errorf("Duration = %v", got)
	}
	if got := strings.Join(env.List("L", nil), "|"); got != "a|b|c" {
		t.Errorf("List = %q", got)
	}
	if got := env.OneOf("MODE", "text", "json", "text"); got != "json" {
		t.Errorf("OneOf = %q", got)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("no error expected yet: %v", err)
	}
	env.Int("BAD_N", 1, 1)
	env.Int("LOW_N", 1, 1)
	env.Duration("BAD_D", time.Second)
	env.OneOf("BAD_MODE", "text", "json", "text")
	env.Required("MISSING")
	err := env.Err()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"BAD_N", "LOW_N", "BAD_D", "BAD_MODE", "MISSING"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
