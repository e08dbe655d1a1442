package httpapi

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"flashotp/otp"
)

func (s *Server) list(c *fiber.Ctx) error     { return page(c, s.svc.List) }
func (s *Server) logs(c *fiber.Ctx) error     { return page(c, s.svc.Logs) }
func (s *Server) attempts(c *fiber.Ctx) error { return page(c, s.svc.Attempts) }

// page answers a listing route: its query read, the page fetched.
func page[T any](c *fiber.Ctx, fetch func(context.Context, otp.Query) (otp.Page[T], error)) error {
	q, err := query(c)
	if err != nil {
		return err
	}
	p, err := fetch(c.UserContext(), q)
	if err != nil {
		return err
	}
	return c.JSON(p)
}
