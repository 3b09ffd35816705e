package web

import (
	"net/url"

	"github.com/a-h/templ"
)

// EventURL is the event page of id.
func EventURL(id string) templ.SafeURL { return templ.SafeURL("/events/" + url.PathEscape(id)) }

// SubscriptionURL is the subscription page of id, followed by any of
// suffix ("/pause", "/delete", …).
func SubscriptionURL(id string, suffix ...string) templ.SafeURL {
	u := "/subscriptions/" + url.PathEscape(id)
	for _, s := range suffix {
		u += s
	}
	return templ.SafeURL(u)
}

// EventsOfSubscription is the event search filtered to one subscription.
func EventsOfSubscription(id string) templ.SafeURL {
	return templ.SafeURL("/events?subscription_id=" + url.QueryEscape(id))
}

// DeliveryAnchor is the id of an event page's section for one
// subscription's delivery, which links to more of its attempts end at.
func DeliveryAnchor(subscriptionID string) string { return "delivery-" + subscriptionID }
