package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/voltage-ems/ems/model"
)

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeErrorStatus(w, http.StatusInternalServerError, "internal", "encoding response: "+err.Error())
		return
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeJSON decodes one JSON object from the request body into dst,
// rejecting unknown fields, trailing data and wrong content types with
// messages that say what was wrong and where.
func decodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Msg: fmt.Sprintf("Content-Type %q is not application/json", ct), Err: ErrBadRequest}
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("invalid JSON body: unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("invalid JSON body: the body is empty, a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid JSON body: truncated JSON")
	case errors.As(err, &se):
		return badRequest("invalid JSON body: malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("invalid JSON body: expected a JSON object, got %s", te.Value)
		}
		return badRequest("invalid JSON body: field %q must be %s, got %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("invalid JSON body: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("invalid JSON body: %v", err)
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "float"), strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice":
		return "an array"
	case k == "map", k == "struct":
		return "an object"
	}
	return k
}

// checkID validates an identifier taken from a path or body: 1-256 bytes of
// valid UTF-8, no control characters, spaces, slashes, backslashes or "..".
func checkID(what, id string) error {
	switch {
	case id == "":
		return badRequest("%s is empty", what)
	case len(id) > 256:
		return badRequest("%s is longer than 256 bytes", what)
	case !utf8.ValidString(id):
		return badRequest("%s %q is not valid UTF-8", what, id)
	case strings.Contains(id, ".."):
		return badRequest("%s %q contains \"..\"", what, id)
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '/' || r == '\\' {
			return badRequest("%s %q contains the forbidden character %q", what, id, r)
		}
	}
	return nil
}

// sampleJSON is a sample on the wire; non-finite values are null with
// the text form in value_text, since JSON has no NaN.
type sampleJSON struct {
	Point     string    `json:"point"`
	Value     *float64  `json:"value"`
	ValueText string    `json:"value_text,omitempty"`
	Time      time.Time `json:"time"`
	Quality   string    `json:"quality"`
}

func toSampleJSON(s model.Sample) sampleJSON {
	out := sampleJSON{Point: s.Point, Time: s.Time, Quality: s.Quality.String()}
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		out.ValueText = fmt.Sprint(s.Value)
	} else {
		v := s.Value
		out.Value = &v
	}
	return out
}

// query returns the query parameters after rejecting unknown and repeated
// ones, so a typo never silently changes the answer.
func queryParams(r *http.Request, allowed ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: %v", err)
	}
	out := make(map[string]string, len(q))
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			if len(allowed) == 0 {
				return nil, badRequest("unknown query parameter %q (this operation takes none)", k)
			}
			return nil, badRequest("unknown query parameter %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, badRequest("query parameter %q given %d times", k, len(vs))
		}
		if !utf8.ValidString(vs[0]) || strings.ContainsFunc(vs[0], unicode.IsControl) {
			return nil, badRequest("query parameter %q contains control characters or invalid UTF-8", k)
		}
		out[k] = vs[0]
	}
	return out, nil
}
