package httpapi

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"flashotp/fault"
	"flashotp/metrics"
	"flashotp/otp"
	"flashotp/templates"
)

// ConsoleData is what the console's data routes read (docs/api.md, "Console API"); cmd/flashotp wires the
// engine's parts. A part left nil turns its routes into 404 not_found.
type ConsoleData struct {
	Live          Live                 // /live, /live/stream: *metrics.Sampler
	Verifications ConsoleVerifications // /verifications/{id}, /reports: *otp.Service
	Trunks        Trunks               // /trunks: the dialer
	Webhooks      WebhookTries         // /webhooks and the timeline's deliveries: the webhook queue
	Sends         SendPulse            // the live stream's send events: *metrics.Metrics; nil: samples only
	// MaxStreams caps the live streams open at once; 0: DefaultMaxStreams.
	MaxStreams int
	// What /overview tells.
	Version  string
	Node     string    // the host's name
	Started  time.Time // when the engine started
	Channels []string  // the channels this engine delivers over
}

// SendPulse tells of each send accepted as it is; *metrics.Metrics is one.
type SendPulse interface {
	// NextSend returns the sends so far and a channel closed at the next.
	NextSend() (uint64, <-chan struct{})
}

var _ SendPulse = (*metrics.Metrics)(nil)

// DefaultMaxStreams is how many live streams (GET /console/api/live/stream) may be open at once by default:
// each holds a connection and a goroutine.
const DefaultMaxStreams = 64

// Live gives the live figures; *metrics.Sampler is one.
type Live interface {
	Samples() (seconds, minutes []metrics.Sample)
	Subscribe() (<-chan metrics.Sample, func())
}

var _ Live = (*metrics.Sampler)(nil)

// ConsoleVerifications is what the console reads of otp beyond the API's Service; *otp.Service is one.
type ConsoleVerifications interface {
	Find(ctx context.Context, id string) (otp.Found, error)
	ReportsOf(ctx context.Context, appIDs []string, since, until time.Time, groupBy string) ([]otp.ReportRow, error)
}

var _ ConsoleVerifications = (*otp.Service)(nil)

// Trunks tells where each trunk stands and probes one with OPTIONS now; cmd/flashotp adapts the dialer.
type Trunks interface {
	Trunks() []TrunkStatus
	// Probe returns an error (not found) only for a name no trunk has; a trunk that does not answer is a
	// TrunkProbe with Err.
	Probe(ctx context.Context, name string) (TrunkProbe, error)
}

// TrunkStatus is one trunk on the console's Trunks page.
type TrunkStatus struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Transport string `json:"transport"`
	Up        bool   `json:"up"`
	// OptionsRTTMS is the last OPTIONS probe's round trip; null if never probed or it had no answer.
	OptionsRTTMS    *float64   `json:"options_rtt_ms"`
	LastProbeAt     *time.Time `json:"last_probe_at"`
	LastProbeStatus int        `json:"last_probe_status"` // 0: none came
	LastProbeError  string     `json:"last_probe_error"`
	InFlight        int        `json:"in_flight"`
	MaxCalls        int        `json:"max_calls"` // 0: no limit
	CPS             float64    `json:"cps"`       // calls per second over the last 10 s
	MaxCPS          int        `json:"max_cps"`   // 0: no limit
	Calls           TrunkCalls `json:"calls"`
	Failovers       int64      `json:"failovers"`
	// Registration is the trunk's registration (register: true); absent for a trunk that does not register.
	Registration *TrunkRegistration `json:"registration,omitempty"`
}

// TrunkRegistration is the state of the engine's registration with a trunk.
type TrunkRegistration struct {
	Registered bool       `json:"registered"`
	Until      *time.Time `json:"until"` // when the binding runs out, while registered
	Error      string     `json:"error"` // the last failure, while not registered
}

// TrunkCalls are a trunk's calls since the engine started, by outcome.
type TrunkCalls struct {
	Missed   int64 `json:"missed"`
	Answered int64 `json:"answered"`
	Failed   int64 `json:"failed"`
}

// TrunkProbe is how an OPTIONS probe went.
type TrunkProbe struct {
	Up     bool    `json:"up"`
	RTTMS  float64 `json:"rtt_ms"`
	Status int     `json:"status"` // 0: no answer
	Error  string  `json:"error"`
}

// WebhookTries gives the last webhook tries, newest first; cmd/flashotp adapts the webhook queue.
type WebhookTries interface {
	Tries(appID, verificationID string, limit int) []WebhookTry
}

// WebhookTry is one try of a webhook delivery.
type WebhookTry struct {
	At             time.Time `json:"at"`
	AppID          string    `json:"app_id"`
	VerificationID string    `json:"verification_id"`
	Event          string    `json:"event"`
	URL            string    `json:"url"`
	Status         int       `json:"status"`
	Outcome        string    `json:"outcome"`
	Try            int       `json:"try"`
	Error          string    `json:"error"`
}

// routeConsoleData mounts the routes the console's pages read (live figures, verifications, trunks,
// templates, webhooks, reports, overview), on api: the session-checked group under /console/api.
func (s *Server) routeConsoleData(api fiber.Router) {
	d := s.cfg.Console.Data
	live, verifications := needs(d.Live != nil, "live figures"), needs(d.Verifications != nil, "verifications")
	api.Get("/live", params(), live, s.consoleLive)
	api.Get("/live/stream", params(), live, s.consoleLiveStream)
	api.Get("/verifications", params("app_id", "recipient", "status", "channel", "since", "until", "limit", "cursor"), s.consoleVerifications)
	api.Get("/verifications/:id", params(), verifications, s.consoleTimeline)
	api.Post("/verifications/:id/reveal", params(), verifications, s.consoleReveal)
	api.Get("/trunks", params(), s.consoleTrunks)
	api.Post("/trunks/:name/probe", params(), needs(d.Trunks != nil, "trunks"), s.consoleProbe)
	api.Get("/templates/preview", params("app_id", "channel", "locale"), s.consolePreview)
	api.Get("/webhooks", params("app_id", "limit"), s.consoleWebhooks)
	api.Get("/reports", params("app_id", "group_by", "since", "until", "format"), needs(d.Verifications != nil, "reports"), s.consoleReports)
	api.Get("/overview", params(), s.consoleOverview)
}

// needs answers 404 on a route whose part (what) this engine was built without.
func needs(wired bool, what string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !wired {
			return fault.Errorf(fault.NotFound, "%s: not available on this engine", what)
		}
		return c.Next()
	}
}

// params refuses a query parameter the route does not take, as the API's routes do.
func params(allowed ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := onlyParams(c, allowed); err != nil {
			return err
		}
		return c.Next()
	}
}

// onlyParams says which query parameter of the request is not one of allowed, if any.
func onlyParams(c *fiber.Ctx, allowed []string) error {
	var err error
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		if err == nil && !slices.Contains(allowed, string(k)) {
			err = fault.Errorf(fault.InvalidRequest, "%s: unknown query parameter (this route takes %s)", k, strings.Join(allowed, ", "))
		}
	})
	return err
}

// limitParam reads ?limit=, from 1 to most; def when not given.
func limitParam(c *fiber.Ctx, def, most int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, fault.Errorf(fault.InvalidRequest, "limit: want 1 to %d, got %q", most, v)
	}
	return n, nil
}

// appsOf returns the app app_id names (404 if none), or every app when it is empty.
func (s *Server) appsOf(id string) ([]string, error) {
	if id != "" {
		if _, ok := s.cfg.Apps.Get(id); !ok {
			return nil, fault.Errorf(fault.NotFound, "no app %q", id)
		}
		return []string{id}, nil
	}
	var ids []string
	for _, a := range s.cfg.Apps.List() {
		ids = append(ids, a.ID)
	}
	return ids, nil
}

// liveTrunk is a trunk as the Live page shows it.
type liveTrunk struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

func (s *Server) consoleLive(c *fiber.Ctx) error {
	d := s.cfg.Console.Data
	sec, mins := d.Live.Samples()
	trunks := []liveTrunk{}
	if d.Trunks != nil {
		for _, t := range d.Trunks.Trunks() {
			trunks = append(trunks, liveTrunk{Name: t.Name, Up: t.Up})
		}
	}
	return c.JSON(fiber.Map{"now": time.Now().UTC().Format(time.RFC3339), "step_15m": 1, "step_24h": 60, "m15": sec, "h24": mins, "trunks": trunks})
}

// streamPing is how often a live stream says it is alive when no sample comes; streamWrite bounds each
// write to it (the server's WriteTimeout would end the stream that long after it began).
const (
	streamPing  = 15 * time.Second
	streamWrite = 10 * time.Second
	// sendEvery is the least time between two send events of one stream: under load a page is told of new
	// sends ten times a second, not at every one.
	sendEvery = 100 * time.Millisecond
)

// consoleLiveStream streams each new one-second sample as a Server-Sent Event, and between them an event
// `send` ({"sends_total": n}) as soon as a send is accepted (at most one each sendEvery), so that a page shows
// a new verification without waiting for the next sample. A stream ends when the client goes (its next
// write fails, within a second), when the sampler stops, and when the server shuts down.
func (s *Server) consoleLiveStream(c *fiber.Ctx) error {
	d := s.cfg.Console.Data
	most := int64(cmp.Or(d.MaxStreams, DefaultMaxStreams))
	if s.streams.Add(1) > most {
		s.streams.Add(-1)
		return fault.Errorf(fault.Unavailable, "too many live streams open (%d): close another console tab, or retry", most)
	}
	samples, cancel := d.Live.Subscribe()
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // a reverse proxy (nginx) must pass each event on at once
	conn := c.Context().Conn()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.Add(-1)
		defer cancel()
		write := func(b []byte) bool {
			_ = conn.SetWriteDeadline(time.Now().Add(streamWrite))
			if _, err := w.Write(b); err != nil {
				return false
			}
			return w.Flush() == nil
		}
		if !write([]byte("retry: 2000\n: flashotp live\n\n")) {
			return
		}
		ping := time.NewTicker(streamPing)
		defer ping.Stop()
		var (
			told  uint64          // the sends_total last written
			sent  <-chan struct{} // closed at the next send; nil between a send event and rearm
			rearm <-chan time.Time
		)
		if d.Sends != nil {
			told, sent = d.Sends.NextSend()
		}
		for {
			select {
			case <-sent:
				sent, rearm = nil, time.After(sendEvery)
				total, _ := d.Sends.NextSend()
				if !write(fmt.Appendf(nil, "event: send\ndata: {\"sends_total\":%d}\n\n", total)) {
					return
				}
				told = total
			case <-rearm:
				rearm = nil
				total, next := d.Sends.NextSend()
				if total != told { // sends while this stream held back: told now
					sent = closedChan
				} else {
					sent = next
				}
			case smp, ok := <-samples:
				if !ok {
					return
				}
				b, err := json.Marshal(smp)
				if err != nil || !write(fmt.Appendf(nil, "event: sample\ndata: %s\n\n", b)) {
					return
				}
			case <-ping.C:
				if !write([]byte(": ping\n\n")) {
					return
				}
			case <-s.closing:
				return
			}
		}
	})
	return nil
}

// closedChan is a channel already closed.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// consoleVerification is a verification as the console lists it: its recipient and email masked.
type consoleVerification struct {
	otp.Verification
	App   string `json:"app_id"`
	Email string `json:"email,omitempty"`
}

func masked(v otp.Verification, email string) consoleVerification {
	v.Recipient = mask(v.Recipient)
	return consoleVerification{Verification: v, App: v.AppID, Email: mask(email)}
}

// mask hides most of a recipient: a number keeps its '+', its first two digits and its last two; an
// address its first letter and its domain.
func mask(r string) string {
	if r == "" {
		return ""
	}
	if local, domain, ok := cutLast(r, "@"); ok {
		first, _ := utf8.DecodeRuneInString(local)
		if local == "" {
			return "•••@" + domain
		}
		return string(first) + "•••@" + domain
	}
	digits := strings.TrimPrefix(r, "+")
	n := utf8.RuneCountInString(digits)
	if n <= 4 {
		return "+" + strings.Repeat("•", n)
	}
	return "+" + digits[:2] + strings.Repeat("•", n-4) + digits[len(digits)-2:]
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// consoleVerifications lists verifications, across every app when app_id is empty: each app's page,
// merged by ID (IDs are time-ordered ULIDs, unique across apps), newest first.
func (s *Server) consoleVerifications(c *fiber.Ctx) error {
	q := otp.Query{Recipient: strings.TrimSpace(c.Query("recipient")), Status: c.Query("status"), Channel: c.Query("channel"), Cursor: c.Query("cursor")}
	var err error
	if q.Limit, err = limitParam(c, otp.DefaultLimit, otp.MaxLimit); err != nil {
		return err
	}
	for name, t := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if v := c.Query(name); v != "" {
			if *t, err = parseTime(name, v); err != nil {
				return err
			}
		}
	}
	ids, err := s.appsOf(c.Query("app_id"))
	if err != nil {
		return err
	}
	page, err := s.listAcross(c.UserContext(), ids, q)
	if err != nil {
		return err
	}
	items := make([]consoleVerification, 0, len(page.Items))
	for _, v := range page.Items {
		items = append(items, masked(v, ""))
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": page.NextCursor})
}

// listAcross is the page of q over the apps ids. Each app's page holds every match at or above its own
// next cursor (a page may stop short of its limit where a filter matched rarely), so the merged page keeps
// only what every app has covered: the items at or above the highest of their cursors, and goes on below it.
func (s *Server) listAcross(ctx context.Context, ids []string, q otp.Query) (otp.Page[otp.Verification], error) {
	var (
		all   []otp.Verification
		floor string // the highest next cursor of the apps' pages
	)
	for _, id := range ids {
		q.AppID = id
		p, err := s.svc.List(ctx, q)
		if err != nil {
			return otp.Page[otp.Verification]{}, err
		}
		all = append(all, p.Items...)
		floor = max(floor, p.NextCursor)
	}
	slices.SortFunc(all, func(a, b otp.Verification) int { return strings.Compare(b.ID, a.ID) })
	page := otp.Page[otp.Verification]{Items: []otp.Verification{}}
	for _, v := range all {
		if v.ID < floor || len(page.Items) == q.Limit {
			break
		}
		page.Items = append(page.Items, v)
	}
	switch {
	case len(page.Items) == q.Limit:
		page.NextCursor = page.Items[len(page.Items)-1].ID
	default:
		page.NextCursor = floor
	}
	return page, nil
}

// consoleEvents are a timeline's events, oldest first, their recipients masked.
func consoleEvents(es []otp.Event) []otp.Event {
	out := make([]otp.Event, 0, len(es))
	for _, e := range es {
		e.Recipient = mask(e.Recipient)
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b otp.Event) int { return a.At.Compare(b.At) })
	return out
}

// consoleTimeline answers one verification with its events, verify attempts and webhook tries, each oldest
// first.
func (s *Server) consoleTimeline(c *fiber.Ctx) error {
	d := s.cfg.Console.Data
	ctx := c.UserContext()
	f, err := d.Verifications.Find(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	// The app's events are read newest first, a bounded number of them: the window of the verification's
	// life (and a day past its expiry, for late verify attempts and receipts) keeps an old verification's
	// events within reach in a busy app.
	q := otp.Query{AppID: f.AppID, ID: f.ID, Limit: otp.MaxLimit, Since: f.CreatedAt.Add(-time.Second)}
	if until := f.ExpiresAt.Add(timelineAfter); until.Before(time.Now()) {
		q.Until = until
	}
	events, err := s.svc.Logs(ctx, q)
	if err != nil {
		return err
	}
	attempts, err := s.svc.Attempts(ctx, q)
	if err != nil {
		return err
	}
	slices.Reverse(attempts.Items)
	hooks := []consoleHook{}
	if d.Webhooks != nil {
		tries := d.Webhooks.Tries(f.AppID, f.ID, 0)
		slices.Reverse(tries)
		for _, t := range tries {
			hooks = append(hooks, consoleHook{At: t.At, Event: t.Event, URL: t.URL, Status: t.Status, Outcome: t.Outcome, Try: t.Try, Error: t.Error})
		}
	}
	return c.JSON(fiber.Map{"verification": masked(f.Verification, f.Email), "events": consoleEvents(events.Items), "attempts": attempts.Items, "webhooks": hooks})
}

// timelineAfter is how long after a verification's expiry its timeline looks for its events.
const timelineAfter = 24 * time.Hour

// consoleHook is a webhook try of a verification's timeline.
type consoleHook struct {
	At      time.Time `json:"at"`
	Event   string    `json:"event"`
	URL     string    `json:"url"`
	Status  int       `json:"status"`
	Outcome string    `json:"outcome"`
	Try     int       `json:"try"`
	Error   string    `json:"error"`
}

// consoleReveal answers a verification's recipient and email in the clear, and writes that the operator saw
// them to the audit log.
func (s *Server) consoleReveal(c *fiber.Ctx) error {
	d := s.cfg.Console.Data
	f, err := d.Verifications.Find(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	s.audit(c, "reveal", f.ID)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"recipient": f.Recipient, "email": f.Email})
}

func (s *Server) consoleTrunks(c *fiber.Ctx) error {
	trunks := []TrunkStatus{}
	if t := s.cfg.Console.Data.Trunks; t != nil {
		trunks = append(trunks, t.Trunks()...)
	}
	return c.JSON(fiber.Map{"trunks": trunks})
}

// consoleProbe sends an OPTIONS to a trunk now; the change it may make (a trunk that was down, up again) is
// audited like any other.
func (s *Server) consoleProbe(c *fiber.Ctx) error {
	t := s.cfg.Console.Data.Trunks
	p, err := t.Probe(c.UserContext(), c.Params("name"))
	if err != nil {
		return err
	}
	s.audit(c, "POST /console/api/trunks/{name}/probe", c.Params("name"))
	return c.JSON(p)
}

// previewCode is the code a template preview shows.
const previewCode = "123456"

// consolePreview renders an app's template of a channel (sms, whatsapp, email) in a locale, as a send would:
// the app's own templates first, then the built-in ones.
func (s *Server) consolePreview(c *fiber.Ctx) error {
	id, channel, locale := c.Query("app_id"), c.Query("channel"), c.Query("locale")
	if id == "" {
		return fault.Errorf(fault.InvalidRequest, "app_id: required")
	}
	app, ok := s.cfg.Apps.Get(id)
	if !ok {
		return fault.Errorf(fault.NotFound, "no app %q", id)
	}
	if !templates.HasTemplates(channel) {
		return fault.Errorf(fault.InvalidRequest, "channel: want one with text templates (%s), got %q: a flash call has no text and a voice call speaks its prompts",
			strings.Join(templates.Channels(), ", "), channel)
	}
	if locale != "" {
		if err := templates.CheckLocale(locale); err != nil {
			return fault.Errorf(fault.InvalidRequest, "locale: %v", err)
		}
	}
	d := templates.Data{Code: previewCode, App: app.ID, Minutes: templates.MinutesOf(time.Duration(app.TTL))}
	var out struct {
		Text    string `json:"text"`
		Subject string `json:"subject"`
		HTML    string `json:"html"`
		Locale  string `json:"locale"`
	}
	var err error
	if channel == templates.ChannelEmail {
		var e templates.Email
		e, err = templates.RenderEmail(app.Templates, locale, app.Locale, d)
		out.Text, out.Subject, out.HTML, out.Locale = e.Text, e.Subject, e.HTML, e.Locale
	} else {
		out.Text, out.Locale, err = templates.Render(app.Templates, channel, locale, app.Locale, d)
		if channel == templates.ChannelSMS {
			out.Text = templates.AndroidHash(out.Text, app.AndroidAppHash)
		}
	}
	if err != nil {
		// The app's templates were checked when it was saved: what is left is a locale no template has.
		return fault.Errorf(fault.InvalidRequest, "%v", err)
	}
	return c.JSON(out)
}

func (s *Server) consoleWebhooks(c *fiber.Ctx) error {
	limit, err := limitParam(c, 50, 1000)
	if err != nil {
		return err
	}
	id := c.Query("app_id")
	if id != "" {
		if _, err := s.appsOf(id); err != nil {
			return err
		}
	}
	items := []WebhookTry{}
	if w := s.cfg.Console.Data.Webhooks; w != nil {
		items = append(items, w.Tries(id, "", limit)...)
	}
	return c.JSON(fiber.Map{"items": items})
}

// reportColumns are the CSV export's columns, as ReportRow's JSON names them.
var reportColumns = []string{"key", "sent", "missed", "answered", "failed", "approved", "conversion_rate", "p50_post_dial_delay_ms"}

// consoleReports sums the report rows of an app, or of every app, as JSON or as a CSV attachment.
func (s *Server) consoleReports(c *fiber.Ctx) error {
	d := s.cfg.Console.Data
	var since, until time.Time
	var err error
	for name, t := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := c.Query(name); v != "" {
			if *t, err = parseTime(name, v); err != nil {
				return err
			}
		}
	}
	format := c.Query("format", "json")
	if format != "json" && format != "csv" {
		return fault.Errorf(fault.InvalidRequest, "format: want json or csv, got %q", format)
	}
	ids, err := s.appsOf(c.Query("app_id"))
	if err != nil {
		return err
	}
	groupBy := c.Query("group_by", otp.GroupDay)
	rows, err := d.Verifications.ReportsOf(c.UserContext(), ids, since, until, groupBy)
	if err != nil {
		return err
	}
	if format == "json" {
		return c.JSON(fiber.Map{"group_by": groupBy, "rows": rows})
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write(reportColumns)
	for _, r := range rows {
		pdd := ""
		if r.P50PostDialDelayMS != nil {
			pdd = strconv.FormatFloat(*r.P50PostDialDelayMS, 'f', -1, 64)
		}
		_ = w.Write([]string{r.Key, itoa(r.Sent), itoa(r.Missed), itoa(r.Answered), itoa(r.Failed), itoa(r.Approved),
			strconv.FormatFloat(r.ConversionRate, 'f', -1, 64), pdd})
	}
	w.Flush()
	name := "flashotp-report-by-" + groupBy
	if id := c.Query("app_id"); id != "" {
		name += "-" + id
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`.csv"`)
	return c.SendString(b.String())
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *Server) consoleOverview(c *fiber.Ctx) error {
	d := s.cfg.Console.Data
	pools, trunks := 0, 0
	if s.cfg.Pools != nil {
		reports, _ := s.cfg.Pools.Pools()
		pools = len(reports)
	}
	if d.Trunks != nil {
		trunks = len(d.Trunks.Trunks())
	}
	uptime := int64(0)
	if !d.Started.IsZero() {
		uptime = int64(time.Since(d.Started).Seconds())
	}
	channels := d.Channels
	if channels == nil {
		channels = []string{}
	}
	return c.JSON(fiber.Map{"version": d.Version, "node": d.Node, "uptime_s": uptime, "apps": len(s.cfg.Apps.List()), "pools": pools, "trunks": trunks, "channels": channels})
}
