package httpapi

import "github.com/gofiber/fiber/v2"

func (s *Server) rateLimits(c *fiber.Ctx) error {
	q, err := query(c)
	if err != nil {
		return err
	}
	items, err := s.svc.RateLimits(q.AppID, c.Locals("key").(string), s.clientIP(c), q.Recipient)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items})
}
