package httpapi

import (
	"github.com/gofiber/fiber/v2"
)

// routeOperators mounts the console's operator accounts on the admin routes g (flashotp operators).
func (s *Server) routeOperators(g fiber.Router) {
	console := needs(s.cfg.Console.Accounts != nil, "the console (console.enabled)")
	g.Get("/operators", console, func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"operators": s.cfg.Console.Accounts.List()})
	})
	g.Post("/operators", console, s.addOperator)
	g.Delete("/operators/:name", console, s.removeOperator)
}

func (s *Server) addOperator(c *fiber.Ctx) error {
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
	name := param(c, "name")
	if err := s.cfg.Console.Accounts.Remove(c.UserContext(), name); err != nil {
		return err
	}
	s.cfg.Console.Sessions.EndOperator(name)
	return c.SendStatus(fiber.StatusNoContent)
}
