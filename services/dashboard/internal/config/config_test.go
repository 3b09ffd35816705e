package config

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

const goodKey = "ZTJlLXNlY3JldHMta2V5LTAxMjM0NTY3ODlhYmNkZWY="

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(config.FromMap(map[string]string{"DASHBOARD_SESSION_KEY": goodKey}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8083" || c.APIURL != "http://127.0.0.1:8080" || c.SessionTTL != 12*time.Hour || len(c.SessionKey) != 32 ||
		c.RedisURL != "redis://127.0.0.1:6379/0" || c.RedisKeyPrefix != "dispatch" ||
		c.Portal.Addr != "" || c.Portal.FrameAncestors != nil || c.Portal.Title != "Webhooks" || c.Portal.AccentColor != "" ||
		c.PublicURL != "" || c.HTTPS() {
		t.Fatalf("%+v", c)
	}
}

func TestPublicURLSaysHTTPS(t *testing.T) {
	t.Parallel()
	for url, https := range map[string]bool{"https://dispatch.example.com": true, "http://127.0.0.1:8083": false} {
		c, err := Load(config.FromMap(map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "DASHBOARD_PUBLIC_URL": url}))
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTPS() != https {
			t.Errorf("%s: HTTPS() = %v", url, c.HTTPS())
		}
	}
}

func TestRefuses(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no session key":             {map[string]string{}, "DASHBOARD_SESSION_KEY: is required"},
		"short session key":          {map[string]string{"DASHBOARD_SESSION_KEY": "c2hvcnQ="}, "DASHBOARD_SESSION_KEY: must be"},
		"not base64":                 {map[string]string{"DASHBOARD_SESSION_KEY": "not base64!"}, "DASHBOARD_SESSION_KEY: must be"},
		"bad API URL":                {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "DISPATCH_API_URL": "localhost:8080"}, "DISPATCH_API_URL"},
		"public URL without scheme":  {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "DASHBOARD_PUBLIC_URL": "dispatch.example.com"}, "DASHBOARD_PUBLIC_URL"},
		"bad Redis URL":              {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL: "},
		"frame ancestor with a path": {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "PORTAL_FRAME_ANCESTORS": "https://app.example.com/x"}, "PORTAL_FRAME_ANCESTORS"},
		"frame ancestor wildcard":    {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "PORTAL_FRAME_ANCESTORS": "*"}, "PORTAL_FRAME_ANCESTORS"},
		"accent not a colour":        {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "PORTAL_ACCENT_COLOR": "red;}"}, "PORTAL_ACCENT_COLOR"},
		"logo not a URL":             {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "PORTAL_LOGO_URL": "javascript:x"}, "PORTAL_LOGO_URL"},
		"title with a newline":       {map[string]string{"DASHBOARD_SESSION_KEY": goodKey, "PORTAL_TITLE": "a\nb"}, "PORTAL_TITLE"},
	} {
		_, err := Load(config.FromMap(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
