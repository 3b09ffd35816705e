package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/dispatch-webhooks/dispatch/libs/client"
)

// newClient is the client of the Dispatch API at DISPATCH_API_URL (the dev
// stack's http://localhost:8080 when unset) with the key in
// DISPATCH_API_KEY (`export DISPATCH_API_KEY=$(cat .data/dev-api-key)`).
func newClient() *client.ClientWithResponses {
	url := os.Getenv("DISPATCH_API_URL")
	if url == "" {
		url = "http://localhost:8080"
	}
	c, err := client.NewClientWithResponses(url, client.WithAPIKey(os.Getenv("DISPATCH_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// problem describes an error answer (RFC 9457 problem+json): its title
// and each field it names.
func problem(p *client.ErrorModel) error {
	if p == nil {
		return errors.New("unexpected answer")
	}
	msg := ""
	if p.Title != nil {
		msg = *p.Title
	}
	if p.Errors != nil {
		for _, e := range *p.Errors {
			if e.Location != nil && e.Message != nil {
				msg += fmt.Sprintf("; %s: %s", *e.Location, *e.Message)
			}
		}
	}
	return errors.New(msg)
}

// Subscribe an endpoint to every order event. The secret is shown only in
// this answer; it is generated when the request has none.
func ExampleClientWithResponses_CreateSubscriptionWithResponse() {
	ctx := context.Background()
	c := newClient()
	id, url := "orders", "https://example.com/webhooks"
	res, err := c.CreateSubscriptionWithResponse(ctx, client.CreateSubscriptionJSONRequestBody{
		Id: &id, Url: url, EventTypes: &[]string{"order.*"},
	})
	if err != nil {
		log.Fatal(err)
	}
	switch {
	case res.JSON201 != nil:
		fmt.Println("subscribed; give the receiver its secret:", res.JSON201.Secret)
	case res.ApplicationproblemJSON409 != nil:
		fmt.Println("a subscription with this id exists")
	default:
		log.Fatal(problem(res.ApplicationproblemJSON422))
	}
}

// Send an event. 202: it and its deliveries are stored. 200: an event with
// this id exists and nothing was stored (posting again is always safe).
// 503: the database is away; post the same id again after Retry-After.
func ExampleClientWithResponses_CreateEventWithResponse() {
	ctx := context.Background()
	c := newClient()
	res, err := c.CreateEventWithResponse(ctx, client.CreateEventJSONRequestBody{
		Id: "evt_123", Type: "order.created", Data: map[string]any{"order_id": "12345", "amount": 99.90},
	})
	if err != nil {
		log.Fatal(err)
	}
	switch res.StatusCode() {
	case http.StatusAccepted:
		fmt.Println("stored at", res.JSON202.ReceivedAt)
	case http.StatusOK:
		fmt.Println("already stored as", res.JSON200.Type)
	case http.StatusServiceUnavailable:
		fmt.Println("retry after", res.HTTPResponse.Header.Get("Retry-After"), "seconds")
	default:
		log.Fatal(problem(res.ApplicationproblemJSON422))
	}
}

// What happened to an event: its status and each subscription's delivery.
func ExampleClientWithResponses_GetEventWithResponse() {
	ctx := context.Background()
	c := newClient()
	res, err := c.GetEventWithResponse(ctx, "evt_123")
	if err != nil {
		log.Fatal(err)
	}
	if res.JSON200 == nil {
		log.Fatal(problem(res.ApplicationproblemJSON404))
	}
	fmt.Println(res.JSON200.Id, res.JSON200.Status)
	if res.JSON200.Deliveries != nil {
		for _, d := range *res.JSON200.Deliveries {
			fmt.Println(d.SubscriptionId, d.Status, d.Attempts)
		}
	}
}

// Every attempt of an event, page by page: while the answer has a
// next_cursor, pass it back as After.
func ExampleClientWithResponses_ListEventAttemptsWithResponse() {
	ctx := context.Background()
	c := newClient()
	params := &client.ListEventAttemptsParams{}
	for {
		res, err := c.ListEventAttemptsWithResponse(ctx, "evt_123", params)
		if err != nil {
			log.Fatal(err)
		}
		if res.JSON200 == nil {
			log.Fatal(problem(res.ApplicationproblemJSON404))
		}
		if res.JSON200.Data != nil {
			for _, a := range *res.JSON200.Data {
				fmt.Println(a.SubscriptionId, a.Number, a.StartedAt, a.DurationMs)
			}
		}
		if res.JSON200.NextCursor == nil {
			return
		}
		params.After = res.JSON200.NextCursor
	}
}
