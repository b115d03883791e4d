package gateway

import (
	"context"
	"net/http"
)

// Helpers for vendor routes mounted with WithAPI, so a v2 answers like v1.

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// WriteError writes err as {"error", "code", "time"} with the status
// StatusOf gives it.
func WriteError(w http.ResponseWriter, err error) { writeError(w, err) }

// DecodeJSON decodes a JSON request body into dst, rejecting unknown
// fields, trailing data and non-JSON content types; its errors map to 400,
// 413 and 415 through WriteError.
func DecodeJSON(r *http.Request, dst any) error { return decodeJSON(r, dst) }

// User returns the name of the credential that made the request ("" when
// the route is public and no credential was sent, "anonymous" under
// WithAnonymous).
func User(ctx context.Context) string { return principalOf(ctx).name }
