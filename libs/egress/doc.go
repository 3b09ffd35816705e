// Package egress decides where Dispatch may send requests. Every webhook
// URL is chosen by an API caller, so a destination is untrusted: without a
// policy, http://169.254.169.254/ or http://10.0.0.5:5432/ would turn the
// delivery worker into a proxy into its own network.
//
// One Policy serves both checks: the API's when a subscription's URL is set
// (CheckURL: the host in every spelling, and the addresses its name
// resolves to now) and the worker's at dial time (Control: the address
// actually connected to, after resolution, so a name that later resolves
// elsewhere gains nothing). An address is judged without its IPv6 zone and,
// for IPv4-mapped IPv6, as the IPv4 address it is.
//
// Destination names the receiving server (scheme, host and port) that
// per-destination limits are kept for.
package egress
