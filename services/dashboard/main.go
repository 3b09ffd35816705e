// Command dashboard serves the operators' dashboard: server-rendered pages
// that read and act only through the ingest-api's API, as the API key an
// operator signs in with (internal/server), and record in Redis which
// sessions have ended (internal/session).
package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/lifecycle"
	"github.com/dispatch-webhooks/dispatch/libs/observability"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/config"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/server"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
)

func main() {
	observability.AnswerHealthcheck(libconfig.FromEnv().String("ADDR", config.DefaultAddr))
	libconfig.AnswerConfigcheck(config.Load)
	lifecycle.Main("dashboard", run)
}

func run(ctx context.Context) error {
	cfg, err := config.Load(libconfig.FromEnv())
	if err != nil {
		return err
	}
	log := observability.NewLogger(cfg.LogFormat, cfg.LogLevel, "dashboard", cfg.InstanceID)
	clk := clock.Real()
	sealer, err := session.NewSealer(cfg.SessionKey, clk)
	if err != nil {
		return err
	}
	redisOpts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(redisOpts)
	defer rdb.Close()
	revocations := session.NewRevocations(rdb, cfg.RedisKeyPrefix, clk)
	srv := server.New(server.Config{APIURL: cfg.APIURL, Sealer: sealer, Revocations: revocations, Clock: clk, SessionTTL: cfg.SessionTTL, Logger: log, HTTPS: cfg.HTTPS(),
		Portal: server.PortalConfig{FrameAncestors: cfg.Portal.FrameAncestors, Title: cfg.Portal.Title, LogoURL: cfg.Portal.LogoURL, AccentColor: cfg.Portal.AccentColor}})
	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{"api": srv.Ready, "redis": revocations.Ping})
	srv.Register(mux)
	listeners := []lifecycle.Part{}
	if cfg.Portal.Addr == "" {
		srv.RegisterPortal(mux)
	} else {
		// The portal alone on a listener of its own, which can face the
		// internet while the operators' dashboard does not; health and
		// metrics stay on ADDR.
		listeners = append(listeners, lifecycle.HTTP(observability.NewServer(cfg.Portal.Addr, srv.PortalHandler()), cfg.ShutdownTimeout))
		log.Info("portal serving", "addr", cfg.Portal.Addr)
	}
	log.Info("dashboard serving", "addr", cfg.Addr, "api", cfg.APIURL)
	listeners = append(listeners, lifecycle.HTTP(observability.NewServer(cfg.Addr, srv.SecurityHeaders(mux)), cfg.ShutdownTimeout))
	err = lifecycle.Run(ctx, listeners...)
	log.Info("stopped")
	return err
}
