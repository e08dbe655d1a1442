package httpapi

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"flashotp/fault"
	"flashotp/totp"
)

// TOTP is what the authenticator-code routes need of the totp package; *totp.Service is one.
type TOTP interface {
	Enroll(ctx context.Context, req totp.EnrollRequest) (totp.Enrollment, error)
	Verify(ctx context.Context, req totp.VerifyRequest) (totp.Verified, error)
	Delete(ctx context.Context, appID, user string) error
}

var _ TOTP = (*totp.Service)(nil)

// totpOff answers the authenticator routes of a server built without a TOTP service.
func totpOff() error {
	return fault.Errorf(fault.NotFound, "authenticator codes are not enabled on this engine")
}

// totpEnroll is POST /otp/totp/enroll: 201 with the secret, its otpauth:// URI and QR code, shown only here.
func (s *Server) totpEnroll(c *fiber.Ctx) error {
	var req totp.EnrollRequest
	if err := decode(c, &req, "appid", "user"); err != nil {
		return err
	}
	if err := checkApp(c, req.AppID); err != nil {
		return err
	}
	if s.cfg.TOTP == nil {
		return totpOff()
	}
	e, err := s.cfg.TOTP.Enroll(c.UserContext(), req)
	if err != nil {
		return err
	}
	// The answer holds a secret: no cache, no proxy, may keep it.
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(e)
}

// totpVerify is POST /otp/totp/verify.
func (s *Server) totpVerify(c *fiber.Ctx) error {
	var req totp.VerifyRequest
	if err := decode(c, &req, "appid", "user", "otp_code"); err != nil {
		return err
	}
	if err := checkApp(c, req.AppID); err != nil {
		return err
	}
	if s.cfg.TOTP == nil {
		return totpOff()
	}
	v, err := s.cfg.TOTP.Verify(c.UserContext(), req)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// totpDelete is POST /otp/totp/delete: the user's enrollment goes, its secret stops working at once.
func (s *Server) totpDelete(c *fiber.Ctx) error {
	var req struct {
		AppID string `json:"appid"`
		User  string `json:"user"`
	}
	if err := decode(c, &req, "appid", "user"); err != nil {
		return err
	}
	if err := checkApp(c, req.AppID); err != nil {
		return err
	}
	if s.cfg.TOTP == nil {
		return totpOff()
	}
	if err := s.cfg.TOTP.Delete(c.UserContext(), req.AppID, req.User); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
