package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io/fs"
	"mime"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"flashotp/apps"
	"flashotp/console"
	"flashotp/fault"
	"flashotp/limits"
)

// ConsoleConfig is what the web console needs (SPEC section 9, docs/console.md).
type ConsoleConfig struct {
	// Files are the built app (web/dist); nil: no console.
	Files    fs.FS
	Accounts *console.Accounts
	Sessions *console.Sessions
	Audit    *console.Audit
	// Data is what the console's pages read (console_data.go).
	Data ConsoleData
}

// The console's cookie and the header that carries its CSRF token.
const (
	sessionCookie = "flashotp_console"
	csrfHeader    = "X-CSRF-Token"
	consolePrefix = "/console/api"
)

// errWrongPassword: a console sign-in whose name or password is wrong, or whose token is not the admin token.
var errWrongPassword = errors.New("wrong console credentials")

// sessionBody is what sign-in and GET /console/api/session answer.
type sessionBody struct {
	Operator    operatorBody  `json:"operator"`
	CSRFToken   string        `json:"csrf_token"`
	ExpiresAt   time.Time     `json:"expires_at"`
	IdleTimeout apps.Duration `json:"idle_timeout"`
}

type operatorBody struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// routeConsole mounts the console: its app at /console/, its sessions, and under /console/api the routes
// its pages read, the admin API's routes with a session instead of the token, and the audit log.
func (s *Server) routeConsole() {
	cc := s.cfg.Console
	if cc.Files == nil {
		return
	}
	s.app.Post(consolePrefix+"/session", s.signIn)
	api := s.app.Group(consolePrefix, s.consoleSession)
	api.Get("/session", func(c *fiber.Ctx) error { return c.JSON(s.sessionBody(session(c))) })
	api.Delete("/session", s.signOut)
	api.Get("/audit", s.listAudit)
	s.routeConsoleData(api)
	if s.cfg.Pools != nil {
		s.adminRoutes(api.Group("/admin", s.auditChange))
	}
	// A middleware rather than a GET route: the route would also take GET /console/api/…, which must
	// answer 405 where another method's route is.
	s.app.Use("/console", s.consoleFile)
}

// consoleFile serves a file of the built app; any other path under /console/ (and /console itself) is one of
// the app's pages, answered with index.html for the app's router.
func (s *Server) consoleFile(c *fiber.Ctx) error {
	p := c.Path()
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead || p != "/console" && !strings.HasPrefix(p, "/console/") ||
		p == consolePrefix || strings.HasPrefix(p, consolePrefix+"/") {
		return c.Next() // not a page: an API route's 405, or the last handler's 404
	}
	name := strings.TrimPrefix(path.Clean(strings.TrimPrefix(p, "/console")), "/")
	b, err := fs.ReadFile(s.cfg.Console.Files, name)
	if name == "" || err != nil {
		name = "index.html"
		if b, err = fs.ReadFile(s.cfg.Console.Files, name); err != nil {
			return fault.Errorf(fault.NotFound, "the console is not built into this binary: run make ui")
		}
	}
	h := &c.Response().Header
	// Nothing the page loads or asks comes from anywhere but the engine.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if strings.HasPrefix(name, "assets/") {
		h.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable") // Vite names them by their hash
	} else {
		h.Set(fiber.HeaderCacheControl, "no-cache")
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = fiber.MIMEOctetStream
	}
	h.Set(fiber.HeaderContentType, ctype)
	return c.Send(b)
}

// signIn exchanges the admin token, or an operator's name and password, for a session cookie. It takes only
// JSON, which a cross-site form cannot send, and is throttled with the API's failed authentications.
func (s *Server) signIn(c *fiber.Ctx) error {
	ip := s.clientIP(c)
	failures := limits.Check{Rule: s.cfg.AuthFailures, Key: ip}
	if full, retry := s.cfg.Limiter.Full(failures); full {
		return s.throttled(c, ip, retry)
	}
	if err := sameSite(c); err != nil {
		return err
	}
	if !c.Is("json") {
		return fault.Errorf(fault.InvalidRequest, "Content-Type: want application/json")
	}
	var body struct {
		Token    string `json:"token"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(c, &body); err != nil {
		return err
	}
	var (
		op  console.Operator
		err error
	)
	switch {
	case body.Token != "" && (body.Username != "" || body.Password != ""):
		return fault.Errorf(fault.InvalidRequest, "give token, or username and password, not both")
	case body.Token != "":
		op, err = s.tokenOperator(body.Token)
	case body.Username != "" && body.Password != "":
		if s.cfg.Console.Accounts == nil {
			err = errWrongPassword
		} else if op, err = s.cfg.Console.Accounts.Authenticate(body.Username, body.Password); err != nil {
			err = errWrongPassword
		}
	default:
		return fault.Errorf(fault.InvalidRequest, "give token (http.admin_token), or username and password")
	}
	if err != nil {
		s.cfg.Limiter.Add(failures)
		s.authFailed(c, ip, err)
		return fault.Errorf(fault.Unauthorized, "wrong token, or unknown operator or wrong password")
	}
	sess := s.cfg.Console.Sessions.Begin(op)
	c.Cookie(&fiber.Cookie{
		Name: sessionCookie, Value: sess.ID, Path: "/console", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: c.Protocol() == "https", Expires: sess.ExpiresAt,
	})
	s.record(c, sess, "sign_in", "", "", fiber.StatusOK)
	return c.JSON(s.sessionBody(sess))
}

// tokenOperator is the operator who signs in with the admin token.
func (s *Server) tokenOperator(token string) (console.Operator, error) {
	want, got := sha256.Sum256([]byte(s.cfg.AdminToken)), sha256.Sum256([]byte(token))
	if s.cfg.AdminToken == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return console.Operator{}, errWrongAdminToken
	}
	return console.Operator{Name: console.TokenOperator, Role: console.RoleAdmin}, nil
}

func (s *Server) signOut(c *fiber.Ctx) error {
	sess := session(c)
	s.cfg.Console.Sessions.End(sess.ID)
	c.ClearCookie(sessionCookie)
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Path: "/console", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Expires: time.Unix(0, 0)})
	s.record(c, sess, "sign_out", "", "", fiber.StatusNoContent)
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) sessionBody(sess console.Session) sessionBody {
	return sessionBody{
		Operator:  operatorBody{Name: sess.Operator.Name, Role: sess.Operator.Role},
		CSRFToken: sess.CSRF, ExpiresAt: sess.ExpiresAt.UTC(), IdleTimeout: apps.Duration(s.cfg.Console.Sessions.IdleTimeout()),
	}
}

// consoleSession admits a request with a live session. A state-changing one must also carry the session's
// CSRF token, come from the console's own origin, and be an admin's (a viewer may only sign out and reveal
// a number).
func (s *Server) consoleSession(c *fiber.Ctx) error {
	sess, ok := s.cfg.Console.Sessions.Get(c.Cookies(sessionCookie))
	if !ok {
		return fault.Errorf(fault.Unauthorized, "sign in to the console: no session, or it ended (signed out, unused for %s, or too old)", s.cfg.Console.Sessions.IdleTimeout())
	}
	if !safeMethod(c.Method()) {
		if err := sameSite(c); err != nil {
			return err
		}
		if !sess.CheckCSRF(c.Get(csrfHeader)) {
			return fault.Errorf(fault.Forbidden, "%s: missing or not this session's (GET /console/api/session gives it)", csrfHeader)
		}
		if sess.Operator.Role != console.RoleAdmin && !viewerMay(c) {
			return fault.Errorf(fault.Forbidden, "operator %q is a %s: read only", sess.Operator.Name, sess.Operator.Role)
		}
	}
	c.Locals("session", sess)
	return c.Next()
}

// revealRoute is the one state-changing route besides signing out that a viewer may take: it changes only
// the audit log.
var revealRoute = regexp.MustCompile(`^/console/api/verifications/[^/]+/reveal$`)

func viewerMay(c *fiber.Ctx) bool {
	p := c.Path()
	return c.Method() == fiber.MethodDelete && p == consolePrefix+"/session" || c.Method() == fiber.MethodPost && revealRoute.MatchString(p)
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// sameSite refuses a request the browser says comes from another site (Sec-Fetch-Site), or whose Origin is
// not this host: the SameSite cookie already keeps it out, this says why.
func sameSite(c *fiber.Ctx) error {
	if site := c.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return fault.Errorf(fault.Forbidden, "a request from another site (Sec-Fetch-Site: %s)", site)
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && origin != c.Protocol()+"://"+c.Hostname() {
		return fault.Errorf(fault.Forbidden, "a request from another origin (Origin: %s)", origin)
	}
	return nil
}

// session is the request's session (consoleSession put it there).
func session(c *fiber.Ctx) console.Session { return c.Locals("session").(console.Session) }

// auditChange writes each admin change made from the console to the audit log once it succeeded.
func (s *Server) auditChange(c *fiber.Ctx) error {
	if safeMethod(c.Method()) {
		return c.Next()
	}
	detail := redact(c.Body())
	if err := c.Next(); err != nil {
		return err
	}
	if status := c.Response().StatusCode(); status < 400 {
		s.record(c, session(c), c.Method()+" "+routePattern(c), strings.TrimPrefix(c.Path(), consolePrefix), detail, status)
	}
	return nil
}

// audit records in the audit log that the request's operator did action to target (a data route's reveal).
func (s *Server) audit(c *fiber.Ctx, action, target string) {
	s.record(c, session(c), action, target, "", fiber.StatusOK)
}

// record writes to the audit log that sess's operator did action to target, with the request's detail.
func (s *Server) record(c *fiber.Ctx, sess console.Session, action, target, detail string, status int) {
	e := console.Entry{Operator: sess.Operator.Name, Role: sess.Operator.Role, Action: action, Target: target, Detail: detail, IP: s.clientIP(c), Status: status}
	if _, err := s.cfg.Console.Audit.Record(c.UserContext(), e); err != nil {
		// The change is made: it is not undone for want of its record, but the log says so.
		s.log.Error("console audit entry not written", "operator", e.Operator, "action", action, "target", target, "err", err)
	}
}

// routePattern is the request's route as the docs write it: "/admin/pools/{name}/release".
func routePattern(c *fiber.Ctx) string {
	parts := strings.Split(strings.TrimPrefix(c.Route().Path, consolePrefix), "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

// secretField matches the JSON fields an audit entry never keeps.
var secretField = regexp.MustCompile(`(?i)password|secret|token`)

// redact is a request body for the audit log: a JSON body with the values of secretField's fields
// replaced, anything else only its length.
func redact(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return "(" + strconv.Itoa(len(body)) + " bytes, not JSON)"
	}
	b, _ := json.Marshal(redactValue(v))
	return string(b)
}

func redactValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if secretField.MatchString(k) {
				v[k] = "[redacted]"
			} else {
				v[k] = redactValue(x)
			}
		}
	case []any:
		for i, x := range v {
			v[i] = redactValue(x)
		}
	}
	return v
}

func (s *Server) listAudit(c *fiber.Ctx) error {
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fault.Errorf(fault.InvalidRequest, "limit: want a number from 1 to 500, got %q", v)
		}
		limit = n
	}
	page, err := s.cfg.Console.Audit.List(c.UserContext(), c.Query("cursor"), limit)
	if err != nil {
		return err
	}
	return c.JSON(page)
}
