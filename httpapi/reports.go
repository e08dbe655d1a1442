package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"flashotp/otp"
)

func (s *Server) reports(c *fiber.Ctx) error {
	q, err := query(c)
	if err != nil {
		return err
	}
	groupBy := c.Query("group_by", otp.GroupDay)
	rows, err := s.svc.Reports(c.UserContext(), q.AppID, q.Since, q.Until, groupBy)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"group_by": groupBy, "rows": rows})
}
