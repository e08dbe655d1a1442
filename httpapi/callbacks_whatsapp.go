package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"flashotp/fault"
)

// WhatsAppWebhook is what the WhatsApp status webhook needs of the channel's sender; *whatsapp.Sender is
// one (cmd/flashotp hands it over: httpapi does not import the channel's package).
type WhatsAppWebhook interface {
	// Handshake returns the challenge to answer Meta's verification with, and whether mode and token are
	// the subscription's.
	Handshake(mode, token, challenge string) (string, bool)
	// Authentic reports whether signature (X-Hub-Signature-256) signs body under the app secret.
	Authentic(body []byte, signature string) bool
	// Statuses reports the message statuses of an authentic body; an error: the body is not a webhook's.
	Statuses(body []byte) (int, error)
}

// routeWhatsApp mounts the WhatsApp status webhook: GET answers Meta's verify-token handshake, POST takes
// signed status notifications. Both are outside /otp's authentication: the verify token and the body's
// signature are theirs. Without a WhatsApp channel they answer 404.
func (s *Server) routeWhatsApp() {
	s.app.Get("/callbacks/whatsapp", func(c *fiber.Ctx) error {
		w := s.cfg.WhatsApp
		if w == nil {
			return errNoWhatsApp
		}
		challenge, ok := w.Handshake(c.Query("hub.mode"), c.Query("hub.verify_token"), c.Query("hub.challenge"))
		if !ok {
			s.authLog.warn(s.log, "whatsapp webhook handshake refused", "remote", s.clientIP(c))
			return fault.Errorf(fault.Forbidden, "hub.mode or hub.verify_token is not this engine's subscription")
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.SendString(challenge)
	})
	s.app.Post("/callbacks/whatsapp", func(c *fiber.Ctx) error {
		w := s.cfg.WhatsApp
		if w == nil {
			return errNoWhatsApp
		}
		body := c.Body()
		if !w.Authentic(body, c.Get("X-Hub-Signature-256")) {
			s.authLog.warn(s.log, "whatsapp webhook with a bad signature", "remote", s.clientIP(c))
			return fault.Errorf(fault.Forbidden, "X-Hub-Signature-256 is missing or does not sign the body")
		}
		if _, err := w.Statuses(body); err != nil {
			return fault.Errorf(fault.InvalidRequest, "%v", err)
		}
		// Meta retries a notification until it gets a 200.
		return c.SendStatus(fiber.StatusOK)
	})
}

// errNoWhatsApp answers the webhook's routes on an engine without a whatsapp section.
var errNoWhatsApp = fault.Errorf(fault.NotFound, "this engine has no WhatsApp channel (config section whatsapp)")
