package smsgw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/template"
)

// Vars are what a custom gateway's templates may print: the message's own fields and those of the message
// templates (Code, App). Each is encoded for the place it is printed in before the template sees it.
type Vars struct {
	To          string // E.164 with '+'
	From        string // the sender
	Text        string // the rendered SMS
	Code        string
	Ref         string // the step the message is: the report route's {ref}
	App         string
	Locale      string
	Encoding    string // gsm7 or ucs2
	CallbackURL string // where the gateway posts its reports; empty without callback_base_url
}

// custom is a custom gateway's compiled templates.
type custom struct {
	url     *template.Template
	headers map[string]*template.Template
	body    *template.Template
	format  string
}

// sample is what compile renders the templates with, as hostile as a message's values may be: every
// template must give a well-formed request with it.
var sample = Vars{
	To: "+15551234567", From: `Fr"om&x=1`, Text: "a \"b\" & c=d\n\\e\u2028", Code: "123456", Ref: "otp_01J~1",
	App: "demo", Locale: "en", Encoding: "gsm7", CallbackURL: "https://example.com/callbacks/sms/otp_01J~1?sig=ab",
}

// compile parses s's url, headers and body templates and checks that they render a well-formed request.
func compile(s Settings) (*custom, error) {
	c := &custom{headers: map[string]*template.Template{}, format: s.BodyFormat}
	var err error
	if c.url, err = parse("url", s.URL); err != nil {
		return nil, err
	}
	for k, v := range s.Headers {
		if c.headers[k], err = parse("headers."+k, v); err != nil {
			return nil, err
		}
	}
	if c.body, err = parse("body", s.Body); err != nil {
		return nil, err
	}
	if _, _, err := c.render(sample); err != nil {
		return nil, fmt.Errorf("renders no valid request: %w", err)
	}
	if _, _, err := c.render(Vars{}); err != nil {
		return nil, fmt.Errorf("renders no valid request with empty values: %w", err)
	}
	return c, nil
}

func parse(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return t, nil
}

// request is a custom request rendered: its URL, headers and body.
type request struct {
	url     string
	headers map[string]string
}

// render renders the request for v: the URL with its values percent-encoded, each header with its raw
// values (a value with a control character is refused: no header is ever split), the body with its values
// encoded as JSON string contents or form values, then checked (json.Valid) or re-encoded (url.Values).
func (c *custom) render(v Vars) (request, []byte, error) {
	var r request
	u, err := exec(c.url, each(v, escapeURL))
	if err != nil {
		return r, nil, err
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return r, nil, fmt.Errorf("url: want an http or https URL with a host, got %q", u)
	}
	r.url = u
	r.headers = map[string]string{}
	for k, t := range c.headers {
		h, err := exec(t, v)
		if err != nil {
			return r, nil, err
		}
		if strings.ContainsFunc(h, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			return r, nil, fmt.Errorf("header %s: a value holds a control character (a line break?): refused", k)
		}
		r.headers[k] = h
	}
	if c.format == FormatForm {
		b, err := exec(c.body, each(v, url.QueryEscape))
		if err != nil {
			return r, nil, err
		}
		q, err := url.ParseQuery(b)
		if err != nil {
			return r, nil, fmt.Errorf("body: not a form: %w", err)
		}
		return r, []byte(encodeForm(q)), nil
	}
	b, err := exec(c.body, each(v, jsonString))
	if err != nil {
		return r, nil, err
	}
	if strings.TrimSpace(b) != "" && !json.Valid([]byte(b)) {
		return r, nil, errors.New("body: not JSON (print each value inside a string: \"{{.To}}\")")
	}
	return r, []byte(b), nil
}

// encodeForm is url.Values.Encode, which sorts the keys; kept apart to say that the order of a form's
// fields means nothing to a gateway.
func encodeForm(q url.Values) string { return q.Encode() }

func exec(t *template.Template, v Vars) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("template %s: %w", t.Name(), err)
	}
	return b.String(), nil
}

// each returns v with every field encoded by enc.
func each(v Vars, enc func(string) string) Vars {
	return Vars{To: enc(v.To), From: enc(v.From), Text: enc(v.Text), Code: enc(v.Code), Ref: enc(v.Ref),
		App: enc(v.App), Locale: enc(v.Locale), Encoding: enc(v.Encoding), CallbackURL: enc(v.CallbackURL)}
}

// jsonString is s as the contents of a JSON string (encoding/json's escaping, without the quotes): a quote,
// a backslash or a line break cannot end the string.
func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b[1 : len(b)-1])
}

// escapeURL percent-encodes every byte of s but the unreserved ones (RFC 3986 section 2.3), so that s is
// one segment in a path and one value in a query: no '/', '?', '&', '=' or '#' of s survives.
func escapeURL(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
