package web

import "fmt"

// EndpointActivity is an endpoint's attempts over the last 24 hours.
type EndpointActivity struct {
	Attempts  int64
	Succeeded int64
}

// SuccessRate is the share of attempts that got a 2xx, as a percentage.
func (a EndpointActivity) SuccessRate() string {
	if a.Attempts == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f %%", 100*float64(a.Succeeded)/float64(a.Attempts))
}

// ErrorClassWords says why an attempt failed, for the portal's customers:
// an error class (domain.ErrorClass) in words.
func ErrorClassWords(class string) string {
	switch class {
	case "http_status":
		return "your server answered with an error status"
	case "timeout":
		return "your server did not answer in time"
	case "connection_refused":
		return "your server refused the connection"
	case "connection_reset":
		return "the connection was reset"
	case "dns":
		return "the endpoint's host name could not be resolved"
	case "tls":
		return "the TLS handshake failed (certificate or protocol)"
	case "network":
		return "a network error"
	case "blocked":
		return "the endpoint's address may not be reached (internal address)"
	case "invalid_response":
		return "your server's answer was not valid HTTP"
	case "response_too_large":
		return "your server's response headers were too large"
	case "informational_response":
		return "your server answered with a 1xx status and no final answer"
	case "internal":
		return "the webhook service could not build the request (its own failure; nothing was sent)"
	case "auth":
		return "no OAuth2 access token could be had from the token endpoint"
	}
	return class
}

// Counted is n things in words: "1 attempt", "2 attempts", "1,024 attempts".
func Counted(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return Count(n) + " " + thing + "s"
}
