package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/voltage-ems/ems/model"
)

// Sentinel errors of the gateway. Handlers wrap them with %w; the error
// mapping (StatusOf) turns them into HTTP statuses.
var (
	ErrBadRequest    = errors.New("gateway: bad request")
	ErrUnauthorized  = errors.New("gateway: missing or invalid credentials")
	ErrForbidden     = errors.New("gateway: role not allowed")
	ErrNotFound      = errors.New("gateway: not found")
	ErrMethod        = errors.New("gateway: method not allowed")
	ErrConflict      = errors.New("gateway: conflict")
	ErrTooLarge      = errors.New("gateway: request body too large")
	ErrRateLimited   = errors.New("gateway: rate limit exceeded")
	ErrUnavailable   = errors.New("gateway: backend unavailable")
	ErrNotConfigured = errors.New("gateway: backend not configured")
	ErrInvalidOption = errors.New("gateway: invalid option")
)

// Error is a typed error carrying an explicit HTTP status and code. Handlers
// and vendor routes may return it to control the response exactly.
type Error struct {
	Status int    // HTTP status
	Code   string // machine-readable code, snake_case
	Msg    string // human-readable message
	Err    error  // wrapped cause, may be nil
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// badRequest builds a 400 error with a formatted message.
func badRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Msg: fmt.Sprintf(format, args...), Err: ErrBadRequest}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Time  string `json:"time"`
}

// statusMapper maps errors of other packages; extra mappers are appended
// when the alarm, rule and history packages are wired (see mapping.go).
type statusMapper func(err error) (status int, code string, ok bool)

// StatusOf returns the HTTP status and the code of err, the one mapping
// from the module's sentinel and typed errors to HTTP.
func StatusOf(err error) (int, string) {
	var ge *Error
	if errors.As(err, &ge) && ge.Status != 0 {
		code := ge.Code
		if code == "" {
			code = codeOf(ge.Status)
		}
		return ge.Status, code
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "too_large"
	}
	for _, m := range mappers {
		if st, code, ok := m(err); ok {
			return st, code
		}
	}
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, ErrNotFound), errors.Is(err, model.ErrUnknownPoint):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, model.ErrNotWritable):
		return http.StatusConflict, "not_writable"
	case errors.Is(err, model.ErrOutOfRange):
		return http.StatusUnprocessableEntity, "out_of_range"
	case errors.Is(err, model.ErrBadStep):
		return http.StatusUnprocessableEntity, "bad_step"
	case errors.Is(err, model.ErrOverflow):
		return http.StatusUnprocessableEntity, "overflow"
	case errors.Is(err, model.ErrInvalidValue):
		return http.StatusUnprocessableEntity, "invalid_value"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, ErrNotConfigured):
		return http.StatusNotImplemented, "not_configured"
	case errors.Is(err, ErrUnavailable), errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, context.Canceled):
		return 499, "canceled"
	}
	if len(model.AsConfigErrors(err)) > 0 {
		return http.StatusUnprocessableEntity, "invalid_config"
	}
	return http.StatusInternalServerError, "internal"
}

func codeOf(status int) string {
	switch status {
	case 400:
		return "bad_request"
	case 401:
		return "unauthorized"
	case 403:
		return "forbidden"
	case 404:
		return "not_found"
	case 405:
		return "method_not_allowed"
	case 409:
		return "conflict"
	case 413:
		return "too_large"
	case 422:
		return "unprocessable"
	case 429:
		return "rate_limited"
	case 501:
		return "not_configured"
	case 503:
		return "unavailable"
	case 504:
		return "timeout"
	}
	if status >= 500 {
		return "internal"
	}
	return "error"
}

// clientError reports whether err maps to a status below 500: such errors
// are the caller's fault and do not count against a backend's breaker.
func clientError(err error) bool {
	st, _ := StatusOf(err)
	return st < 500
}

// message returns the text shown to the client. Internal errors are not
// echoed verbatim (they may carry backend details); everything else is.
func message(err error, status int) string {
	if status == http.StatusInternalServerError {
		return "internal error"
	}
	var ge *Error
	if errors.As(err, &ge) && ge.Msg != "" {
		return ge.Msg
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	}
	return err.Error()
}

// writeError writes the JSON error body for err.
func writeError(w http.ResponseWriter, err error) {
	st, code := StatusOf(err)
	if st == 499 { // the client is gone; nothing useful to write
		st = http.StatusBadRequest
	}
	writeErrorStatus(w, st, code, message(err, st))
}

func writeErrorStatus(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("ETag")
	w.WriteHeader(status)
	b, _ := json.Marshal(errorBody{Error: msg, Code: code, Time: time.Now().UTC().Format(time.RFC3339Nano)})
	b = append(b, '\n')
	_, _ = w.Write(b)
}
