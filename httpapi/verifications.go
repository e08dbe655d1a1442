package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"flashotp/fault"
	"flashotp/otp"
)

func (s *Server) send(c *fiber.Ctx) error {
	var req otp.SendRequest
	if err := decode(c, &req, "appid", "recipient", "channel"); err != nil {
		return err
	}
	if err := checkApp(c, req.AppID); err != nil {
		return err
	}
	defer func(start time.Time) { s.cfg.Metrics.Sent(time.Since(start)) }(time.Now())
	v, err := s.svc.Send(c.UserContext(), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(v)
}

func (s *Server) verify(c *fiber.Ctx) error {
	var req otp.VerifyRequest
	if err := decode(c, &req, "appid", "otp_code"); err != nil {
		return err
	}
	if err := checkApp(c, req.AppID); err != nil {
		return err
	}
	if (req.VerificationID == "") == (req.Recipient == "") {
		return fault.Errorf(fault.InvalidRequest, "verification_id or recipient: give one")
	}
	req.RemoteIP = s.clientIP(c)
	start := time.Now()
	v, err := s.svc.Verify(c.UserContext(), req)
	s.cfg.Metrics.Verified(otp.ResultName(err), time.Since(start))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) resend(c *fiber.Ctx) error {
	var req otp.ResendRequest
	if err := decode(c, &req, "appid", "verification_id"); err != nil {
		return err
	}
	if err := checkApp(c, req.AppID); err != nil {
		return err
	}
	v, err := s.svc.Resend(c.UserContext(), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(v)
}

func (s *Server) status(c *fiber.Ctx) error {
	q, err := query(c)
	if err != nil {
		return err
	}
	if q.ID == "" {
		return fault.Errorf(fault.InvalidRequest, "verification_id: required")
	}
	v, err := s.svc.Status(c.UserContext(), q.AppID, q.ID)
	if err != nil {
		return err
	}
	return c.JSON(v)
}
