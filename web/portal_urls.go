package web

import (
	"net/url"
	"strings"

	"github.com/a-h/templ"
)

// PortalBase is where the customer portal lives.
const PortalBase = "/portal"

// PortalEndpointsURL is the portal's home: the tenant's endpoints.
const PortalEndpointsURL templ.SafeURL = PortalBase + "/"

// PortalEventsURL is the portal's event log.
const PortalEventsURL templ.SafeURL = PortalBase + "/events"

// PortalEventTypesURL is the portal's event-type catalog.
const PortalEventTypesURL templ.SafeURL = PortalBase + "/event-types"

// PortalEventTypeURL is the portal page of event type name.
func PortalEventTypeURL(name string) templ.SafeURL {
	return templ.SafeURL(PortalBase + string(EventTypeURL(name)))
}

// PortalEndpointURL is the portal page of endpoint id, followed by any of
// suffix ("/pause", "/delete", …).
func PortalEndpointURL(id string, suffix ...string) templ.SafeURL {
	return templ.SafeURL(PortalBase + string(SubscriptionURL(id, suffix...)))
}

// PortalEventURL is the portal page of event id, followed by any of
// suffix.
func PortalEventURL(id string, suffix ...string) templ.SafeURL {
	return templ.SafeURL(PortalBase + string(EventURL(id)) + strings.Join(suffix, ""))
}

// PortalEventsOf is the event log filtered to one endpoint.
func PortalEventsOf(id string) templ.SafeURL {
	return templ.SafeURL(string(PortalEventsURL) + "?subscription_id=" + url.QueryEscape(id))
}

// PortalTitle is a page's title in the portal's words: subscriptions are
// endpoints, and the events list is the event log.
func PortalTitle(title string) string {
	switch {
	case title == "Subscriptions":
		return "Endpoints"
	case strings.HasPrefix(title, "Subscription "):
		return "Endpoint " + strings.TrimPrefix(title, "Subscription ")
	case title == "Events":
		return "Event log"
	}
	return title
}

// PortalWords is a notice or an error in the portal's words: what the
// API and the dashboard call a subscription is an endpoint to the
// portal's customers.
func PortalWords(s string) string {
	return strings.NewReplacer("subscriptions", "endpoints", "Subscriptions", "Endpoints", "subscription", "endpoint", "Subscription", "Endpoint").Replace(s)
}
