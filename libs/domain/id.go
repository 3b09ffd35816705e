package domain

import "crypto/rand"

// NewSubscriptionID returns a fresh random subscription id such as
// "sub_5GDKJZ2QW7P3YXN4M6HRT8BVFA".
func NewSubscriptionID() string { return "sub_" + rand.Text() }
