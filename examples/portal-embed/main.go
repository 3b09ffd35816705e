// Command portal-embed is a product's settings page with the Dispatch
// customer portal in an iframe. Each time the page is shown, its server
// asks the API for a fresh single-use portal link for the signed-in
// customer's tenant (here one tenant, from the environment) with the Go
// client, and puts the link in the iframe's src.
//
//	DISPATCH_API_URL=http://127.0.0.1:8080 DISPATCH_PORTAL_KEY=dsp_… TENANT=acme ADDR=127.0.0.1:8090 go run .
//
// The dashboard must allow this page's origin to frame the portal:
// PORTAL_FRAME_ANCESTORS=http://127.0.0.1:8090.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/client"
)

//go:embed index.html
var page string

func main() {
	addr := env("ADDR", "127.0.0.1:8090")
	api, err := client.NewClientWithResponses(env("DISPATCH_API_URL", "http://127.0.0.1:8080"), client.WithAPIKey(os.Getenv("DISPATCH_PORTAL_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	tmpl := template.Must(template.New("page").Parse(page))
	tenant := env("TENANT", "default")
	http.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var v struct{ PortalURL, Error string }
		v.PortalURL, err = portalLink(r.Context(), api, tenant)
		if err != nil {
			v.Error = "The webhooks portal is not available right now: " + err.Error()
		}
		w.Header().Set("Cache-Control", "no-store")
		_ = tmpl.Execute(w, v)
	})
	log.Printf("example product on http://%s, showing tenant %s's portal", addr, tenant)
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// portalLink asks the API for a single-use link to tenant's portal,
// valid for an hour. In a real product, the tenant is the signed-in
// customer's, and read_only and return_url fit its permissions and page.
func portalLink(ctx context.Context, api *client.ClientWithResponses, tenant string) (string, error) {
	expiresIn := "1h"
	res, err := api.CreatePortalLinkWithResponse(ctx, tenant, client.CreatePortalLinkJSONRequestBody{ExpiresIn: &expiresIn})
	if err != nil {
		return "", err
	}
	if res.JSON201 == nil {
		return "", fmt.Errorf("the API answered %d", res.StatusCode())
	}
	return res.JSON201.Url, nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
