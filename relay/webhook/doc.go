// Package webhook is a relay adapter that POSTs batches to an HTTP
// endpoint, signed with HMAC-SHA256.
//
// The body is the batch's payloads joined by newlines (NDJSON with the JSON
// formatter, line protocol with LineProtocol). With a secret, every request
// carries
//
//	X-EMS-Timestamp: <unix seconds>
//	X-EMS-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">
//
// and a receiver checks it with Verify. 2xx is success; 408, 429, 5xx and
// network errors are retried inside Send with backoff; any other status is
// a permanent error (the pipeline drops the batch and counts it).
package webhook
