package httpapi

import (
	"bytes"
	"errors"
	"fmt"
)

// Why a request's header block is refused (checkHeaderBlock). A reverse proxy in front may read such a
// request's length otherwise than fasthttp does (fasthttp takes chunked over Content-Length, the last of
// several Content-Lengths, a bare CR as part of a value): what one takes for a body the other may take for
// a second request, smuggled past the proxy.
var (
	errLengthAndChunked  = errors.New("both Content-Length and Transfer-Encoding")
	errSeveralLengths    = errors.New("several Content-Length headers")
	errControlInHeader   = errors.New("a control character in a header")
	errFoldedHeaderValue = errors.New("a header line folded onto the next (obsolete line folding)")
)

// checkHeaderBlock checks a request's raw header block (fasthttp's RequestHeader.RawHeaders: the lines
// after the request line, each ending in LF or CRLF) for framing that proxies and servers disagree on.
func checkHeaderBlock(raw []byte) error {
	var lengths, encodings int
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte{'\n'})
		raw = rest
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errFoldedHeaderValue
		}
		for _, b := range line {
			if (b < 0x20 && b != '\t') || b == 0x7f {
				return fmt.Errorf("%w (0x%02x)", errControlInHeader, b)
			}
		}
		name, _, _ := bytes.Cut(line, []byte{':'})
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")):
			lengths++
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Transfer-Encoding")):
			encodings++
		}
	}
	switch {
	case lengths > 0 && encodings > 0:
		return errLengthAndChunked
	case lengths > 1:
		return errSeveralLengths
	}
	return nil
}
