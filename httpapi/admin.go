package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/limits"
	"flashotp/numberpool"
)

// PoolAdmin is the live number pool registry the admin API manages; *numberpool.Registry is one.
type PoolAdmin interface {
	Pools() ([]numberpool.Report, []numberpool.AppSpace)
	Pool(name string) (numberpool.Pool, bool)
	PutPool(ctx context.Context, p numberpool.Pool) (numberpool.Pool, error)
	CreatePool(ctx context.Context, p numberpool.Pool) (numberpool.Pool, error)
	DeletePool(ctx context.Context, name string) error
	AddEntry(ctx context.Context, pool string, e numberpool.Entry) (numberpool.Entry, error)
	RemoveEntry(ctx context.Context, pool, id string) error
	QuarantineNow(ctx context.Context, t numberpool.Target) (numberpool.Quarantine, error)
	Release(ctx context.Context, t numberpool.Target) error
}

var _ PoolAdmin = (*numberpool.Registry)(nil)

// routeAdmin mounts /admin/* behind the admin token. Without a token the admin API does not exist: its
// routes answer 404, with the code admin_disabled rather than not_found so that a client (flashotp pools,
// apps, keys, store) can tell the operator what to set instead of "no route".
func (s *Server) routeAdmin() {
	if s.cfg.AdminToken == "" {
		s.app.Use("/admin", func(c *fiber.Ctx) error {
			// fiber's Use matches any path starting with /admin, /administrator too.
			if p := strings.ToLower(c.Path()); p != "/admin" && !strings.HasPrefix(p, "/admin/") {
				return c.Next()
			}
			return fault.Errorf(fault.AdminDisabled, "the admin API is off on this engine: set http.admin_token (env FLASHOTP_HTTP_ADMIN_TOKEN) and restart it")
		})
		return
	}
	if s.cfg.Pools == nil {
		return
	}
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	g := s.app.Group("/admin", func(c *fiber.Ctx) error {
		// The same throttle as /otp: an address that keeps failing is refused before the token is looked at.
		ip := s.clientIP(c)
		failures := limits.Check{Rule: s.cfg.AuthFailures, Key: ip}
		if full, retry := s.cfg.Limiter.Full(failures); full {
			return s.throttled(c, ip, retry)
		}
		header := c.Get(fiber.HeaderAuthorization)
		scheme, token, _ := strings.Cut(header, " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.cfg.Limiter.Add(failures)
			why := errWrongAdminToken
			switch {
			case header == "":
				why = apps.ErrNoCredentials
			case !strings.EqualFold(scheme, "Bearer"):
				why = apps.ErrMalformed
			}
			s.authFailed(c, ip, why)
			return fault.Errorf(fault.Unauthorized, "admin routes take Authorization: Bearer <http.admin_token>")
		}
		return c.Next()
	})
	s.adminRoutes(g)
	if s.cfg.Backup != nil {
		g.Get("/store/backup", s.backup)
	}
	// Profiles, behind the same token: /admin/debug/pprof/ (index, heap, goroutine, …), profile, trace.
	g.Get("/debug/pprof/profile", adaptor.HTTPHandlerFunc(pprof.Profile))
	g.Get("/debug/pprof/trace", adaptor.HTTPHandlerFunc(pprof.Trace))
	g.Get("/debug/pprof/*", adaptor.HTTPHandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = strings.Replace(r.URL.Path, "/admin/debug/pprof/", "/debug/pprof/", 1)
		pprof.Index(w, r)
	}))
}

// adminRoutes mounts the routes that manage pools, apps and operators on g: under /admin behind the token,
// and under /console/api/admin behind a console session. The backup and the profiles stay token-only: a
// console viewer reads, but not the whole database.
func (s *Server) adminRoutes(g fiber.Router) {
	g.Get("/pools", s.listPools)
	g.Post("/pools", s.createPool)
	g.Get("/pools/:name", s.getPool)
	g.Put("/pools/:name", s.replacePool)
	g.Delete("/pools/:name", s.deletePool)
	g.Get("/pools/:name/entries", s.listEntries)
	g.Post("/pools/:name/entries", s.addEntry)
	g.Delete("/pools/:name/entries/:id", s.removeEntry)
	g.Post("/pools/:name/quarantine", s.quarantine)
	g.Post("/pools/:name/release", s.release)
	s.routeApps(g)
	s.routeOperators(g)
}

// param returns a path parameter as a string of its own: fiber's point into request buffers that are
// reused, and the registry keeps names.
func param(c *fiber.Ctx, name string) string { return strings.Clone(c.Params(name)) }

func (s *Server) listPools(c *fiber.Ctx) error {
	pools, apps := s.cfg.Pools.Pools()
	return c.JSON(fiber.Map{"pools": pools, "apps": apps})
}

// getPool answers one pool as GET /admin/pools lists it: entries, their use and its quarantines.
func (s *Server) getPool(c *fiber.Ctx) error {
	pools, _ := s.cfg.Pools.Pools()
	for _, p := range pools {
		if p.Name == c.Params("name") {
			return c.JSON(p)
		}
	}
	return fault.Errorf(fault.NotFound, "no pool %q", param(c, "name"))
}

func (s *Server) createPool(c *fiber.Ctx) error {
	var p numberpool.Pool
	if err := decode(c, &p, "name", "entries"); err != nil {
		return err
	}
	saved, err := s.cfg.Pools.CreatePool(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(saved)
}

func (s *Server) replacePool(c *fiber.Ctx) error {
	var p numberpool.Pool
	if err := decode(c, &p, "entries"); err != nil {
		return err
	}
	if p.Name != "" && p.Name != param(c, "name") {
		return fault.Errorf(fault.InvalidRequest, "name: %q differs from the path's %q", p.Name, param(c, "name"))
	}
	p.Name = param(c, "name")
	saved, err := s.cfg.Pools.PutPool(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(saved)
}

func (s *Server) deletePool(c *fiber.Ctx) error {
	if err := s.cfg.Pools.DeletePool(c.UserContext(), param(c, "name")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) listEntries(c *fiber.Ctx) error {
	p, ok := s.cfg.Pools.Pool(param(c, "name"))
	if !ok {
		return fault.Errorf(fault.NotFound, "no pool %q", param(c, "name"))
	}
	return c.JSON(fiber.Map{"entries": p.Entries})
}

func (s *Server) addEntry(c *fiber.Ctx) error {
	var e numberpool.Entry
	if err := decode(c, &e, "numbers"); err != nil {
		return err
	}
	added, err := s.cfg.Pools.AddEntry(c.UserContext(), param(c, "name"), e)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(added)
}

func (s *Server) removeEntry(c *fiber.Ctx) error {
	if err := s.cfg.Pools.RemoveEntry(c.UserContext(), param(c, "name"), param(c, "id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) quarantine(c *fiber.Ctx) error {
	var t numberpool.Target
	if err := decode(c, &t); err != nil {
		return err
	}
	t.Pool = param(c, "name")
	q, err := s.cfg.Pools.QuarantineNow(c.UserContext(), t)
	if err != nil {
		return err
	}
	return c.JSON(q)
}

// release takes a quarantine's body: its for and reason are read (a wrong type is refused) and ignored.
func (s *Server) release(c *fiber.Ctx) error {
	var t numberpool.Target
	if err := decode(c, &t); err != nil {
		return err
	}
	t.Pool = param(c, "name")
	if err := s.cfg.Pools.Release(c.UserContext(), t); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// backupIdle is how long a backup's client may stop reading before the engine gives up on it.
const backupIdle = 30 * time.Second

// backup streams a consistent copy of the database (one read transaction, so sends and verifies go on
// meanwhile), with its length: the snapshot is begun before the answer, so a store that cannot be read is a
// 503 like any other read. A copy that fails midway cannot change the status any more: the connection then
// ends before Content-Length bytes, which a client sees as a body cut short.
func (s *Server) backup(c *fiber.Ctx) error {
	snap, err := s.cfg.Backup()
	if err != nil {
		return err
	}
	conn := c.Context().Conn()
	pr, pw := io.Pipe()
	go func() {
		start := time.Now()
		n, err := snap.WriteTo(deadlineWriter{w: pw, conn: conn})
		snap.Close()
		pw.CloseWithError(err)
		if err != nil {
			s.log.Warn("backup not sent", "bytes", n, "err", err)
			return
		}
		s.log.Info("backup sent", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	}()
	c.Set(fiber.HeaderContentType, fiber.MIMEOctetStream)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="flashotp.db"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	// fasthttp closes pr once the answer is written or given up, which ends the copy above.
	c.Context().SetBodyStream(pr, int(snap.Size()))
	return nil
}

// deadlineWriter moves the connection's write deadline on before each write. fasthttp sets the server's
// WriteTimeout once per answer, and a backup of a large file may take longer than that; a client that
// stops reading is still cut off after backupIdle.
type deadlineWriter struct {
	w    io.Writer
	conn net.Conn
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.conn.SetWriteDeadline(time.Now().Add(backupIdle))
	return d.w.Write(p)
}
