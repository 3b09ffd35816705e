// Package config parses the dashboard's environment once, at start-up.
package config

import (
	"encoding/base64"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/config"
)

// DefaultAddr is where the dashboard listens when ADDR is unset.
const DefaultAddr = ":8083"

// Config is the dashboard's settings.
type Config struct {
	// Redis is where sessions that ended before their expiry are recorded
	// (REDIS_URL, REDIS_KEY_PREFIX).
	config.Redis
	Addr       string        // ADDR
	APIURL     string        // DISPATCH_API_URL
	SessionKey []byte        // DASHBOARD_SESSION_KEY
	SessionTTL time.Duration // DASHBOARD_SESSION_TTL
	// PublicURL is the dashboard's URL as browsers reach it
	// (DASHBOARD_PUBLIC_URL); an https one makes every cookie Secure and
	// sends HSTS, whatever a proxy's headers say.
	PublicURL       string
	InstanceID      string        // INSTANCE_ID
	LogFormat       string        // LOG_FORMAT
	LogLevel        string        // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
	Portal          Portal
}

// Portal is the customer portal's settings (ADR 32).
type Portal struct {
	// Addr, if set, serves the portal on a listener of its own, and only
	// there (PORTAL_ADDR).
	Addr string
	// FrameAncestors are the origins that may show the portal in a frame
	// (PORTAL_FRAME_ANCESTORS); none may when empty.
	FrameAncestors []string
	Title          string // PORTAL_TITLE
	LogoURL        string // PORTAL_LOGO_URL
	AccentColor    string // PORTAL_ACCENT_COLOR
}

// accentColor is a CSS hex colour: #rgb or #rrggbb.
var accentColor = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// HTTPS reports whether browsers reach the dashboard over HTTPS, by
// DASHBOARD_PUBLIC_URL.
func (c Config) HTTPS() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// Load reads the configuration, reporting every bad variable by name.
func Load(env *config.Env) (Config, error) {
	host, _ := os.Hostname()
	c := Config{
		Redis:           env.Redis(),
		Addr:            env.String("ADDR", DefaultAddr),
		APIURL:          env.String("DISPATCH_API_URL", "http://127.0.0.1:8080"),
		SessionTTL:      env.Duration("DASHBOARD_SESSION_TTL", 12*time.Hour),
		PublicURL:       env.String("DASHBOARD_PUBLIC_URL", ""),
		InstanceID:      env.String("INSTANCE_ID", host),
		LogFormat:       env.OneOf("LOG_FORMAT", "json", "json", "text"),
		LogLevel:        env.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		ShutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		Portal: Portal{
			Addr:           env.String("PORTAL_ADDR", ""),
			FrameAncestors: env.List("PORTAL_FRAME_ANCESTORS", nil),
			Title:          env.String("PORTAL_TITLE", "Webhooks"),
			LogoURL:        env.String("PORTAL_LOGO_URL", ""),
			AccentColor:    env.String("PORTAL_ACCENT_COLOR", ""),
		},
	}
	for _, o := range c.Portal.FrameAncestors {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Scheme+"://"+u.Host != o {
			env.Fail("PORTAL_FRAME_ANCESTORS", "%q is not an origin such as https://app.example.com (scheme and host, no path)", o)
		}
	}
	if t := c.Portal.Title; t == "" || len(t) > 100 || strings.ContainsFunc(t, unicode.IsControl) {
		env.Fail("PORTAL_TITLE", "must be 1 to 100 characters without control characters")
	}
	if l := c.Portal.LogoURL; l != "" {
		if u, err := url.Parse(l); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(l, "'\" \n;") {
			env.Fail("PORTAL_LOGO_URL", "%q is not an http or https URL of an image", l)
		}
	}
	if a := c.Portal.AccentColor; a != "" && !accentColor.MatchString(a) {
		env.Fail("PORTAL_ACCENT_COLOR", "%q is not a colour such as #0a7cff or #07f", a)
	}
	if p := c.PublicURL; p != "" {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			env.Fail("DASHBOARD_PUBLIC_URL", "%q is not an http or https URL such as https://dispatch.example.com", p)
		}
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		env.Fail("DISPATCH_API_URL", "%q is not an http or https URL such as http://127.0.0.1:8080", c.APIURL)
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		env.Fail("REDIS_URL", "%q is not a Redis URL such as redis://127.0.0.1:6379/0: %v", c.RedisURL, err)
	}
	if !env.Set("DASHBOARD_SESSION_KEY") {
		env.Fail("DASHBOARD_SESSION_KEY", "is required: it seals the sessions' API keys in their cookies; make one with `openssl rand -base64 32`")
	} else if key, err := base64.StdEncoding.DecodeString(env.String("DASHBOARD_SESSION_KEY", "")); err != nil || len(key) != 32 {
		env.Fail("DASHBOARD_SESSION_KEY", "must be standard base64 of 32 bytes (`openssl rand -base64 32`)")
	} else {
		c.SessionKey = key
	}
	return c, env.Err()
}
