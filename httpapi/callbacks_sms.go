package httpapi

import (
	"net/http"
	"net/url"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"flashotp/fault"
)

// SMSReports takes the delivery reports an HTTP SMS gateway posts back (sms.via: http); *smsgw.Sender is
// one (cmd/flashotp wires it: httpapi knows no gateway). Callback gets the report on the message of ref as
// the engine received it (method, URL, headers, body within http.max_body_bytes), checks its signature and
// records it; it returns a *fault.Error when it refuses it (forbidden: a bad signature; invalid_request: a
// report it cannot read), and nothing is recorded then.
type SMSReports interface {
	Callback(ref string, r *http.Request) error
}

// routeSMSReports mounts the gateway's report route, POST and GET (Vonage may report by either). With no
// gateway configured it answers 404.
func (s *Server) routeSMSReports() {
	s.app.Post("/callbacks/sms/:ref", s.smsReport)
	s.app.Get("/callbacks/sms/:ref", s.smsReport)
}

func (s *Server) smsReport(c *fiber.Ctx) error {
	if s.cfg.SMSReports == nil {
		return fault.Errorf(fault.NotFound, "this engine sends no SMS through an HTTP gateway")
	}
	ref, err := url.PathUnescape(c.Params("ref"))
	if err != nil {
		return fault.Errorf(fault.InvalidRequest, "bad reference in the path")
	}
	var r http.Request
	if err := fasthttpadaptor.ConvertRequest(c.Context(), &r, true); err != nil {
		return fault.Errorf(fault.InvalidRequest, "request not read: %v", err)
	}
	if err := s.cfg.SMSReports.Callback(ref, &r); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
