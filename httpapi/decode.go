package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/gofiber/fiber/v2"

	"flashotp/fault"
	"flashotp/numberpool"
)

// decode reads a JSON object into dst strictly: no unknown fields, no trailing data, every field of
// required present.
func decode(c *fiber.Ctx, dst any, required ...string) error {
	return decodeBody(c.Body(), dst, required...)
}

// decodeBody is decode of a body already read; dst may hold values the body's fields replace.
func decodeBody(body []byte, dst any, required ...string) error {
	var present map[string]json.RawMessage
	if err := json.Unmarshal(body, &present); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fault.Errorf(fault.InvalidRequest, "body: want a JSON object, got %s", typeErr.Value)
		}
		return fault.Errorf(fault.InvalidRequest, "body must be a JSON object: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fault.Errorf(fault.InvalidRequest, "%s", decodeMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.Errorf(fault.InvalidRequest, "trailing data after the JSON object")
	}
	for _, f := range required {
		if v, ok := present[f]; !ok || string(v) == "null" {
			return fault.Errorf(fault.InvalidRequest, "%s: required", f)
		}
	}
	return nil
}

// wants names, for the fields that need more than their JSON type, the value a field wants.
var wants = map[string]string{"otp_code": "a string of digits"}

// decodeMessage says what is wrong with a body in the client's terms: for a value of the wrong type, the
// field (its path in the body) and the JSON type it wants, never the Go type behind it.
func decodeMessage(err error) string {
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	field := strings.TrimPrefix(typeErr.Field, ".") // a field of an embedded struct has a leading dot
	want, ok := wants[field]
	if !ok {
		want = jsonType(typeErr.Type)
	}
	if field == "" {
		field = "body"
	}
	return fmt.Sprintf("%s: want %s, got %s", field, want, typeErr.Value)
}

// jsonType names the JSON value a Go type is read from.
func jsonType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if t == reflect.TypeFor[numberpool.Duration]() {
		return `a duration like "30s" or "24h"`
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}
