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

// TenantURL is the tenant page of id.
func TenantURL(id string) templ.SafeURL { return templ.SafeURL("/tenants/" + url.PathEscape(id)) }

// EventsOfTenant is the event search filtered to one tenant.
func EventsOfTenant(id string) templ.SafeURL {
	return templ.SafeURL("/events?tenant_id=" + url.QueryEscape(id))
}

// SubscriptionsOfTenant is the subscription list filtered to one tenant.
func SubscriptionsOfTenant(id string) templ.SafeURL {
	return templ.SafeURL("/subscriptions?tenant_id=" + url.QueryEscape(id))
}

// DeliveryAnchor is the id of an event page's section for one
// subscription's delivery, which links to more of its attempts end at.
func DeliveryAnchor(subscriptionID string) string { return "delivery-" + subscriptionID }

// EventTypeURL is an event type's page in the catalog.
func EventTypeURL(name string) templ.SafeURL {
	return templ.SafeURL("/event-types/" + url.PathEscape(name))
}
