// Package httpapi is flashotp's HTTP API on fiber v2: authentication, the /otp routes, health, and the one
// mapping from domain errors to HTTP statuses and error codes (SPEC section 4).
//
// Every error answer has the shape {"error": {"code": "...", "message": "..."}}; errors that are not the
// caller's are logged with their detail and shown only as "internal".
package httpapi

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"golang.org/x/time/rate"

	"flashotp/apps"
	"flashotp/fault"
	"flashotp/limits"
	"flashotp/metrics"
	"flashotp/otp"
)

// OpenAPI is the API's OpenAPI 3 document, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Snapshot is a copy of the database to send, as it was when it began; *store.Snapshot is one (cmd/flashotp
// hands it over as one).
type Snapshot interface {
	Size() int64
	io.WriterTo
	io.Closer
}

// Service is what the API needs of the otp package; *otp.Service is one.
type Service interface {
	Send(ctx context.Context, req otp.SendRequest) (otp.Verification, error)
	Resend(ctx context.Context, req otp.ResendRequest) (otp.Verification, error)
	Verify(ctx context.Context, req otp.VerifyRequest) (otp.Verification, error)
	Status(ctx context.Context, appID, id string) (otp.Verification, error)
	List(ctx context.Context, q otp.Query) (otp.Page[otp.Verification], error)
	Logs(ctx context.Context, q otp.Query) (otp.Page[otp.Event], error)
	Attempts(ctx context.Context, q otp.Query) (otp.Page[otp.Attempt], error)
	RateLimits(appID, key, ip, recipient string) ([]limits.Status, error)
	Reports(ctx context.Context, appID string, since, until time.Time, groupBy string) ([]otp.ReportRow, error)
	AllowRequest(appID, key, ip string) error
}

var _ Service = (*otp.Service)(nil)

// Apps authenticates API clients and is what /admin/apps manages; *apps.Registry is one.
type Apps interface {
	Authenticate(key, secret string) (string, error)
	AuthenticateJWT(token string) (appID, key string, err error)
	Get(id string) (apps.App, bool)
	List() []apps.App
	Create(ctx context.Context, a apps.App) (apps.Created, error)
	Update(ctx context.Context, id string, fn func(a *apps.App) error) (apps.App, error)
	Delete(ctx context.Context, id string) error
	Keys(id string) ([]apps.Key, error)
	CreateKey(ctx context.Context, id string) (apps.Key, error)
	RotateKey(ctx context.Context, id, key string) (apps.Key, error)
	RevokeKey(ctx context.Context, id, key string) (apps.Key, error)
	RotateWebhookSecret(ctx context.Context, id string) (string, error)
}

var _ Apps = (*apps.Registry)(nil)

// DefaultAuthFailures limits failed authentications per client address: past it, a client gets 429 before
// its credentials are even looked at.
var DefaultAuthFailures = limits.Rule{Scope: "auth_failures", Limit: 20, Window: time.Minute}

// Config configures the API.
type Config struct {
	MaxBodyBytes int
	Apps         Apps
	// Limiter counts failed authentications per client address; nil: a new one.
	Limiter *limits.Limiter
	// AuthFailures is the failed-authentication limit; zero: DefaultAuthFailures.
	AuthFailures limits.Rule
	// Ready reports whether the engine can take sends; nil means always.
	Ready func() error
	// AdminToken guards /admin/*; empty: no admin API.
	AdminToken string
	// TOTP serves /otp/totp/*, the authenticator codes; nil: those routes answer 404 not_found.
	TOTP TOTP
	// Pools is what /admin/pools manages.
	Pools PoolAdmin
	// Backup begins a consistent copy of the database, for GET /admin/store/backup; nil: no such route.
	Backup func() (Snapshot, error)
	// Metrics is served at /metrics and timed for sends and verifies; nil: none.
	Metrics *metrics.Metrics
	// TrustedProxies are the peers whose X-Forwarded-For gives the client's address (clientIP); they are
	// exempt from MaxConnsPerIP.
	TrustedProxies []netip.Prefix
	// MaxConns and MaxConnsPerIP cap the connections Serve holds open (ListenerConfig); 0: no cap.
	MaxConns      int
	MaxConnsPerIP int
	// SMSReports takes an HTTP SMS gateway's delivery reports at /callbacks/sms/{ref}; nil: that route
	// answers 404.
	SMSReports SMSReports
	// WhatsApp takes the WhatsApp channel's status webhooks (/callbacks/whatsapp); nil: no such channel,
	// the routes answer 404.
	WhatsApp WhatsAppWebhook
	// Console is the web console at /console/ (SPEC section 9); its Files nil: none.
	Console ConsoleConfig
}

// Server is the HTTP API.
type Server struct {
	app *fiber.App
	svc Service
	cfg Config
	log *slog.Logger

	routes  map[string]string // pattern → pattern, of every route: the metrics' route label
	authLog *sampledLog       // auth-failure lines
	readLog *sampledLog       // lines about requests that could not be read (a stranger decides how many)

	streams   atomic.Int64  // the console's live streams open
	closing   chan struct{} // closed by Shutdown: the live streams end
	closeOnce sync.Once
}

// A flood of bad credentials or unreadable requests must not flood the log: at most logRate lines of each
// kind a second (logBurst at once); the metrics count every one all the same.
const (
	logRate  = 10
	logBurst = 20
)

// sampledLog writes at most logRate lines a second; the next line written says how many were left out.
type sampledLog struct {
	lim        *rate.Limiter
	suppressed atomic.Int64
}

func newSampledLog() *sampledLog { return &sampledLog{lim: rate.NewLimiter(logRate, logBurst)} }

func (l *sampledLog) warn(log *slog.Logger, msg string, attrs ...any) {
	if !l.lim.Allow() {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	log.Warn(msg, attrs...)
}

// statuses is the one table from error code to HTTP status.
var statuses = map[fault.Code]int{
	fault.InvalidRequest:     fiber.StatusBadRequest,
	fault.InvalidRecipient:   fiber.StatusBadRequest,
	fault.DestinationBlocked: fiber.StatusForbidden,
	fault.NotFound:           fiber.StatusNotFound,
	fault.InvalidCode:        fiber.StatusUnprocessableEntity,
	fault.MaxAttempts:        fiber.StatusGone,
	fault.Expired:            fiber.StatusGone,
	fault.Undeliverable:      fiber.StatusGone,
	fault.AlreadyVerified:    fiber.StatusConflict,
	fault.Unauthorized:       fiber.StatusUnauthorized,
	fault.Forbidden:          fiber.StatusForbidden,
	fault.RequestTooLarge:    fiber.StatusRequestEntityTooLarge,
	fault.RateLimited:        fiber.StatusTooManyRequests,
	fault.ResendTooSoon:      fiber.StatusTooManyRequests,
	fault.Unavailable:        fiber.StatusServiceUnavailable,
	fault.Internal:           fiber.StatusInternalServerError,
	fault.Conflict:           fiber.StatusConflict,
	fault.MethodNotAllowed:   fiber.StatusMethodNotAllowed,
	// An /admin route of an engine without http.admin_token.
	fault.AdminDisabled: fiber.StatusNotFound,
}

// New builds the API over svc.
func New(cfg Config, svc Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Limiter == nil {
		cfg.Limiter = limits.New(nil)
	}
	if cfg.AuthFailures == (limits.Rule{}) {
		cfg.AuthFailures = DefaultAuthFailures
	}
	s := &Server{svc: svc, cfg: cfg, log: log, authLog: newSampledLog(), readLog: newSampledLog(), closing: make(chan struct{})}
	s.app = fiber.New(fiber.Config{
		AppName: "flashotp",
		// fasthttp refuses a body over max_body_bytes from its Content-Length (or as a chunked one grows)
		// before reading it: no client makes the engine hold more. It answers 413 (handleError) and closes
		// the connection with the rest of the body unread; Listener's conns drain that rest before closing
		// so that the client gets the 413 rather than a reset.
		BodyLimit:             cfg.MaxBodyBytes,
		DisableStartupMessage: true,
		// Called only for what fasthttp refused before routing (a body over the limit, a request it could
		// not read): the first handler below answers and counts every other error itself.
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			err = s.handleError(c, err)
			cfg.Metrics.HTTPRequest(s.route(c), c.Response().StatusCode())
			return err
		},
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   10 * time.Second,
		IdleTimeout:    60 * time.Second,
		ReadBufferSize: 8192,
	})
	s.app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		if err != nil {
			// Answered here rather than by fiber after the chain, so that the status counted is the one sent.
			err = s.handleError(c, err)
		}
		cfg.Metrics.HTTPRequest(s.route(c), c.Response().StatusCode())
		return err
	})
	s.app.Use(func(c *fiber.Ctx) error {
		if err := checkHeaderBlock(c.Request().Header.RawHeaders()); err != nil {
			// What else the connection holds may be a request smuggled in this one's body: never read it.
			c.Context().SetConnectionClose()
			return fault.Errorf(fault.InvalidRequest, "request refused: %v", err)
		}
		if len(c.Body()) > cfg.MaxBodyBytes {
			return fault.Errorf(fault.RequestTooLarge, "body over %d bytes", cfg.MaxBodyBytes)
		}
		return c.Next()
	})
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.readyz)
	if cfg.Metrics != nil {
		s.app.Get("/metrics", adaptor.HTTPHandler(cfg.Metrics.Handler()))
	}
	s.app.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(OpenAPI)
	})
	g := s.app.Group("/otp", s.authenticate)
	g.Post("/send", s.send)
	g.Post("/verify", s.verify)
	g.Post("/resend", s.resend)
	g.Get("/status", s.status)
	g.Get("/list", s.list)
	g.Get("/logs", s.logs)
	g.Get("/rate-limits", s.rateLimits)
	g.Get("/attempts", s.attempts)
	g.Get("/reports", s.reports)
	g.Post("/totp/enroll", s.totpEnroll)
	g.Post("/totp/verify", s.totpVerify)
	g.Post("/totp/delete", s.totpDelete)
	s.routeAdmin()
	s.routeConsole()
	s.routeSMSReports()
	s.routeWhatsApp()
	s.app.Use(func(c *fiber.Ctx) error {
		// Past the last route, fiber tells a path that another method's route takes (405, with the Allow
		// header set) from one no route takes.
		if err := c.Next(); errors.Is(err, fiber.ErrMethodNotAllowed) {
			return fault.Errorf(fault.MethodNotAllowed, "%s %s: this route takes %s", c.Method(), c.Path(), c.GetRespHeader(fiber.HeaderAllow))
		}
		return fault.Errorf(fault.NotFound, "no route %s %s", c.Method(), c.Path())
	})
	s.routes = map[string]string{}
	for _, r := range s.app.GetRoutes(true) {
		s.routes[r.Path] = r.Path
	}
	return s
}

// route is the request's route pattern, for the metrics and the log: the route that answered it, else the
// route its path names (a request refused on the way, by authentication or the body limit, or asked with
// a method the route does not take), else "other". Never the path itself: that is the client's, and
// unbounded.
func (s *Server) route(c *fiber.Ctx) string {
	if r := c.Route(); r != nil {
		if p, ok := s.routes[r.Path]; ok {
			return p
		}
	}
	if p, ok := s.routes[c.Path()]; ok {
		return p
	}
	return "other"
}

// Serve serves on ln until Shutdown, within the connection caps (Listener).
func (s *Server) Serve(ln net.Listener) error {
	return s.app.Listener(NewListener(ln, ListenerConfig{
		MaxConns: s.cfg.MaxConns, MaxConnsPerIP: s.cfg.MaxConnsPerIP, Trusted: s.cfg.TrustedProxies,
	}, s.log))
}

// Shutdown stops accepting and waits for requests in flight, up to d. The console's live streams, which
// would never end on their own, end first.
func (s *Server) Shutdown(d time.Duration) error {
	s.closeOnce.Do(func() { close(s.closing) })
	return s.app.ShutdownWithTimeout(d)
}

// Handler returns the fiber app, for tests (app.Test).
func (s *Server) Handler() *fiber.App { return s.app }

// handleError is the one place errors become HTTP answers.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var (
		code    = fault.Internal
		message = "internal error"
		extra   = fiber.Map{}
		fe      *fault.Error
		ferr    *fiber.Error
	)
	switch {
	case errors.As(err, &fe):
		code, message = fe.Code, fe.Message
		if fe.AttemptsRemaining != nil {
			extra["attempts_remaining"] = *fe.AttemptsRemaining
		}
		if fe.Code == fault.RateLimited || fe.Code == fault.ResendTooSoon {
			secs := max(1, int64(math.Ceil(fe.RetryAfter.Seconds())))
			c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(secs, 10))
			extra["retry_after"] = secs
			scope := fe.Scope
			if fe.Code == fault.ResendTooSoon {
				scope = "resend_cooldown"
			}
			s.cfg.Metrics.RateLimited(cmp.Or(scope, "other"))
		}
		if fe.Err != nil && code != fault.Internal {
			// A failure the caller is told only the gist of (the disk failed under a read or an admin write;
			// otp reports its own failed writes so): the detail goes to the log.
			s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
		}
	case errors.As(err, &ferr):
		// Errors of the HTTP layer itself, before any handler: the body limit, unknown routes, requests
		// that could not be read (malformed, headers too large, too slow).
		switch {
		case ferr.Code == fiber.StatusRequestEntityTooLarge:
			code, message = fault.RequestTooLarge, fmt.Sprintf("body over %d bytes", s.cfg.MaxBodyBytes)
		case ferr.Code == fiber.StatusNotFound:
			code, message = fault.NotFound, ferr.Message
		case ferr.Code == fiber.StatusMethodNotAllowed:
			code, message = fault.MethodNotAllowed, ferr.Message
		default:
			// Keep fiber's status when it is the client's (408, 431); a connection that broke mid-request
			// (fiber says 502) gets 400: it is still the request that could not be read.
			status := ferr.Code
			if status < 400 || status >= 500 {
				status = fiber.StatusBadRequest
			}
			s.readLog.warn(s.log, "request not read", "remote", s.clientIP(c), "status", ferr.Code, "err", ferr.Message)
			return c.Status(status).JSON(fiber.Map{"error": fiber.Map{"code": string(fault.InvalidRequest), "message": ferr.Message}})
		}
	}
	status, ok := statuses[code]
	if !ok || code == fault.Internal {
		status, code, message = fiber.StatusInternalServerError, fault.Internal, "internal error"
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if code == fault.Unavailable {
		secs := int64(5)
		if fe != nil && fe.RetryAfter > 0 {
			secs = max(1, int64(math.Ceil(fe.RetryAfter.Seconds())))
		}
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(secs, 10))
	}
	body := fiber.Map{"code": string(code), "message": message}
	for k, v := range extra {
		body[k] = v
	}
	return c.Status(status).JSON(fiber.Map{"error": body})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			c.Set(fiber.HeaderRetryAfter, "5")
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "reason": err.Error()})
		}
	}
	return c.JSON(fiber.Map{"status": "ok"})
}
