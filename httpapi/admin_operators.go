package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"flashotp/fault"
)

// routeOperators mounts the console's operator accounts on the admin routes g (flashotp operators).
func (s *Server) routeOperators(g fiber.Router) {
	g.Get("/operators", func(c *fiber.Ctx) error {
		if s.cfg.Console.Accounts == nil {
			return fault.Errorf(fault.NotFound, "no console on this engine")
		}
		return c.JSON(fiber.Map{"operators": s.cfg.Console.Accounts.List()})
	})
	g.Post("/operators", s.addOperator)
	g.Delete("/operators/:name", s.removeOperator)
}

func (s *Server) addOperator(c *fiber.Ctx) error {
	if s.cfg.Console.Accounts == nil {
		return fault.Errorf(fault.NotFound, "no console on this engine")
	}
	var body struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := decode(c, &body, "name", "role", "password"); err != nil {
		return err
	}
	op, err := s.cfg.Console.Accounts.Add(c.UserContext(), body.Name, body.Role, body.Password)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(op)
}

// removeOperator deletes an account and ends its sessions.
func (s *Server) removeOperator(c *fiber.Ctx) error {
	if s.cfg.Console.Accounts == nil {
		return fault.Errorf(fault.NotFound, "no console on this engine")
	}
	name := param(c, "name")
	if err := s.cfg.Console.Accounts.Remove(c.UserContext(), name); err != nil {
		return err
	}
	s.cfg.Console.Sessions.EndOperator(name)
	return c.SendStatus(fiber.StatusNoContent)
}
