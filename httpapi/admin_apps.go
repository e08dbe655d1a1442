package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"flashotp/apps"
	"flashotp/fault"
)

// routeApps mounts /admin/apps on g.
func (s *Server) routeApps(g fiber.Router) {
	g.Get("/apps", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"apps": s.cfg.Apps.List()}) })
	g.Post("/apps", s.createApp)
	g.Get("/apps/:id", s.getApp)
	g.Patch("/apps/:id", s.updateApp)
	g.Delete("/apps/:id", s.deleteApp)
	g.Get("/apps/:id/keys", s.listKeys)
	g.Post("/apps/:id/keys", s.createKey)
	g.Post("/apps/:id/keys/:key/rotate", s.rotateKey)
	g.Delete("/apps/:id/keys/:key", s.revokeKey)
	g.Post("/apps/:id/webhook-secret", s.rotateWebhookSecret)
}

func (s *Server) createApp(c *fiber.Ctx) error {
	var a apps.App
	if err := decode(c, &a); err != nil {
		return err
	}
	created, err := s.cfg.Apps.Create(c.UserContext(), a)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(created)
}

func (s *Server) getApp(c *fiber.Ctx) error {
	a, ok := s.cfg.Apps.Get(param(c, "id"))
	if !ok {
		return fault.Errorf(fault.NotFound, "no app %q", param(c, "id"))
	}
	return c.JSON(a)
}

func (s *Server) updateApp(c *fiber.Ctx) error {
	body := c.Body()
	a, err := s.cfg.Apps.Update(c.UserContext(), param(c, "id"), func(a *apps.App) error {
		return decodeBody(body, a)
	})
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (s *Server) deleteApp(c *fiber.Ctx) error {
	if err := s.cfg.Apps.Delete(c.UserContext(), param(c, "id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listKeys(c *fiber.Ctx) error {
	keys, err := s.cfg.Apps.Keys(param(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"keys": keys})
}

func (s *Server) createKey(c *fiber.Ctx) error {
	k, err := s.cfg.Apps.CreateKey(c.UserContext(), param(c, "id"))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (s *Server) rotateKey(c *fiber.Ctx) error {
	k, err := s.cfg.Apps.RotateKey(c.UserContext(), param(c, "id"), param(c, "key"))
	if err != nil {
		return err
	}
	return c.JSON(k)
}

func (s *Server) revokeKey(c *fiber.Ctx) error {
	k, err := s.cfg.Apps.RevokeKey(c.UserContext(), param(c, "id"), param(c, "key"))
	if err != nil {
		return err
	}
	return c.JSON(k)
}

func (s *Server) rotateWebhookSecret(c *fiber.Ctx) error {
	secret, err := s.cfg.Apps.RotateWebhookSecret(c.UserContext(), param(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"webhook_secret": secret})
}
