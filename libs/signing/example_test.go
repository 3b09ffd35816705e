package signing_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// A receiver verifies each delivery against the raw body before trusting it.
func ExampleVerifier_VerifyHeaders() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // shown once when the subscription was created
	verifier, err := signing.NewVerifier([]string{secret})
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := verifier.VerifyHeaders(r.Header, body); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent) // any 2xx tells Dispatch it was delivered
	})

	// What Dispatch sends:
	body := `{"id":"evt_1","type":"order.created","data":{}}`
	signer, _ := signing.NewSigner(secret)
	now := time.Now()
	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	req.Header.Set(signing.HeaderID, "evt_1")
	req.Header.Set(signing.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(signing.HeaderSignature, signer.Sign("evt_1", now, []byte(body)))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output: 204
}
