package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"flashotp/apps"
	"flashotp/configs"
	"flashotp/console"
	"flashotp/dialer"
	"flashotp/email"
	"flashotp/httpapi"
	"flashotp/message"
	"flashotp/metrics"
	"flashotp/numberpool"
	"flashotp/otp"
	"flashotp/sip"
	"flashotp/smpp"
	"flashotp/sms"
	"flashotp/smsgw"
	"flashotp/stir"
	"flashotp/totp"
	"flashotp/web"
	"flashotp/webhook"
	"flashotp/whatsapp"
)

// Main wires the engine's parts from a Config, runs them and closes them in reverse. Tests run it on
// 127.0.0.1:0 addresses in a temporary directory.
type Main struct {
	Config   configs.Config
	Log      *slog.Logger
	PhoneOut io.Writer // where the built-in phone prints its lines

	// Set once Run has started everything (Ready is closed).
	HTTPAddr   string
	SIPAddr    string
	SIPTLSAddr string // sip.tls_listen's, if set
	PhoneAddr  string
	Ready      chan struct{}

	db      backend
	numbers *numberpool.Registry
	apps    *apps.Registry
	svc     *otp.Service
	bgStop  context.CancelFunc // stops the expiry sweeper, retention and webhook delivery
	bgDone  sync.WaitGroup
	metrics *metrics.Metrics
	sampler *metrics.Sampler // the console's live figures
	ua      *sip.UA
	phone   *sip.Phone
	dialer  *dialer.Dialer
	smpp    *smpp.Sender // sms.via: smpp
	api     *httpapi.Server
	gateway *smsgw.Sender // the HTTP SMS gateway, when sms.via is http
	ln      net.Listener
	// whatsApp sends the whatsapp channel and takes its status webhooks; nil: no whatsapp section.
	whatsApp *whatsapp.Sender
	regs     registrations // the trunks' registrations (register: true)
	// draining is set when Run's context ends: /readyz answers 503 while the API still serves.
	draining atomic.Bool
}

// The SIP UA is the dialer's Caller.
var _ dialer.Caller = (*sip.UA)(nil)

// NewMain returns a Main for cfg.
func NewMain(cfg configs.Config, log *slog.Logger) *Main {
	return &Main{Config: cfg, Log: log, PhoneOut: io.Discard, Ready: make(chan struct{})}
}

// Run starts the engine and serves until ctx ends, then drains and closes everything.
func (m *Main) Run(ctx context.Context) error {
	if err := m.open(ctx); err != nil {
		m.close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- m.api.Serve(m.ln) }()
	m.Log.Info("flashotp serving", "http", m.HTTPAddr, "sip", m.SIPAddr, "phone", m.PhoneAddr, "sip_tls", m.SIPTLSAddr)
	close(m.Ready)

	var err error
	select {
	case <-ctx.Done():
		err = m.drain(serveErr)
	case err = <-serveErr:
		err = fmt.Errorf("http: %w", err)
	}
	m.Log.Info("flashotp stopping")
	return errors.Join(err, m.close())
}

var _ otp.Notifier = (*webhook.Queue)(nil)

func (m *Main) open(ctx context.Context) error {
	cfg := m.Config
	started := time.Now()
	var err error
	var repair string
	if m.db, repair, err = openBackend(ctx, cfg.Store); err != nil {
		return err
	}
	if repair != "" {
		m.Log.Error("store repaired", "path", cfg.Store.Path, "what", repair)
	}

	configApps := cfg.ConfigApps()
	appPools := make(map[string][]string, len(configApps))
	for _, a := range configApps {
		appPools[a.ID] = a.Pools
	}
	pools := make([]numberpool.Pool, 0, len(cfg.Pool))
	for _, p := range cfg.Pool {
		pools = append(pools, p.Pool())
	}
	if m.numbers, err = numberpool.NewRegistry(ctx, numberpool.Config{
		Apps: appPools, CodeLength: cfg.OTP.CodeLength, MinCodeSpace: cfg.OTP.MinCodeSpace, Key: m.db.Key(), Log: m.Log,
		Shared: m.shared(), Node: cfg.Node.ID,
	}, m.db, pools); err != nil {
		return err
	}
	// Every app, from the file or the admin API, draws from the pools; the pools vet its code space.
	if m.apps, err = apps.Open(ctx, m.db, m.db.Key(), cfg.OTP.AppDefaults(), configApps, m.numbers, nil); err != nil {
		return err
	}
	m.metrics = metrics.New()
	webhooks := webhook.New(webhook.Config{Settings: cfg.Webhooks, Log: m.Log, Delivered: m.metrics.Webhook}, m.db, m.apps)
	limiter := m.limiter()

	prompts, err := cfg.Voice.Library()
	if err != nil {
		return fmt.Errorf("voice prompts: %w", err)
	}
	if cfg.Phone.Enabled {
		if m.phone, err = sip.ListenPhone(cfg.Phone.Listen, cfg.Phone.Mode, m.PhoneOut, m.Log); err != nil {
			return err
		}
		m.phone.SetVoice(prompts) // the phone hears the prompts the engine speaks
		m.PhoneAddr = m.phone.Addr()
	}
	tlsConf, err := trunkTLS(cfg.Trunks)
	if err != nil {
		return err
	}
	serverTLS, err := listenerTLS(cfg.SIP)
	if err != nil {
		return err
	}
	identity, err := stirVerifier(cfg.STIR)
	if err != nil {
		return err
	}
	trunks := slices.Clone(cfg.Trunks)
	for i, t := range trunks {
		if cfg.Phone.Enabled && t.Address == cfg.Phone.Listen {
			trunks[i].Address = m.PhoneAddr // the phone may have been given port 0
		}
	}
	// SIP is read only from the trunks: their addresses, their outbound proxies, their accept_from.
	var peers []string
	var acceptFrom []netip.Prefix
	var inbound []sip.InboundTrunk
	for _, t := range trunks {
		addrs := []string{t.Address}
		if t.OutboundProxy != "" {
			addrs = append(addrs, t.OutboundProxy)
		}
		peers = append(peers, addrs...)
		acceptFrom = append(acceptFrom, t.AcceptNets()...)
		if t.Inbound {
			d := t.WithDefaults(cfg.SIP.Transport)
			inbound = append(inbound, sip.InboundTrunk{Name: t.Name, Peers: addrs, AcceptFrom: t.AcceptNets(), Trust: d.InboundTrust, Reject: d.InboundReject})
		}
	}
	if m.ua, err = sip.Listen(sip.Config{
		Listen: cfg.SIP.Listen, PublicAddress: cfg.SIP.PublicAddress, TLS: tlsConf, Logger: m.Log,
		TCP: cfg.SIPListensTCP(), TCPLimits: cfg.SIP.TCPLimits, Malformed: m.metrics.SIPMalformed,
		Peers: peers, AcceptFrom: acceptFrom, Dropped: m.metrics.SIPDropped, Inbound: inbound,
		TLSListen: cfg.SIP.TLSListen, TLSServer: serverTLS,
	}); err != nil {
		return err
	}
	m.SIPAddr, m.SIPTLSAddr = m.ua.Addr(), m.ua.TLSAddr()

	// The senders of the channels that do not go over the trunk; their receipts go to the service once it
	// is built (before anything is sent).
	receipts := &messageReceipts{ready: make(chan struct{})}
	senders := map[string]message.Sender{}
	switch cfg.SMS.Via {
	case sms.ViaHTTP:
		// Its reports come through the API, which serves only once the service below is built.
		if m.gateway, err = smsgw.New(cfg.HTTPSMS, func(r message.Receipt) { m.svc.MessageReceipt(r) }, m.Log); err != nil {
			return fmt.Errorf("http_sms: %w", err)
		}
		senders[apps.ChannelSMS] = m.gateway
	case sms.ViaSMPP:
		if m.smpp, err = smpp.New(smpp.Config{SMSCs: cfg.SMPP, Sender: cfg.SMS.Sender, Receipts: receipts.receipt, Logger: m.Log}); err != nil {
			return err
		}
		senders[apps.ChannelSMS] = m.smpp
	}
	if cfg.Email.Configured() {
		mailer, err := email.New(cfg.Email, m.Log)
		if err != nil {
			return fmt.Errorf("email: %w", err)
		}
		senders[apps.ChannelEmail] = mailer
	}
	if cfg.WhatsApp.Configured() {
		// Its statuses come through the API too.
		if m.whatsApp, err = whatsapp.New(cfg.WhatsApp, func(r message.Receipt) { m.svc.MessageReceipt(r) }, m.Log); err != nil {
			return err // it names whatsapp
		}
		senders[apps.ChannelWhatsApp] = m.whatsApp
	}

	outcomes := &callOutcomes{}
	m.dialer = dialer.New(dialer.Config{
		Settings: cfg.Dialer, Metrics: m.metrics, Trunks: trunks,
		Apps: m.apps.Count, // each app may fill its fair share
	}, m.ua, outcomes, m.Log)
	m.svc = otp.New(otp.Config{Metrics: m.metrics, Apps: m.apps, Dialer: m.dialer, Notifier: webhooks, Limiter: limiter, Retention: cfg.OTP.Retention,
		Key: m.db.Key(), MinCodeSpace: cfg.OTP.MinCodeSpace,
		Voice:   otp.VoiceChannel{Prompts: prompts, CallerID: cfg.Voice.CallerID, AnswerTimeout: cfg.Voice.AnswerTimeout, Repeat: cfg.Voice.Repeat},
		SMS:     otp.SMSChannel{Via: cfg.SMS.Via, Sender: cfg.SMS.Sender},
		Senders: senders,
		Nodes:   m.nodes(), Node: cfg.Node.ID, Lease: cfg.Node.Lease,
		Identity: identity,
	}, m.db.OTP(), m.numbers, m.Log)
	outcomes.Service = m.svc
	svc := m.svc
	m.ua.SetInbound(m.inboundCall)
	if n, err := svc.Recover(ctx); err != nil {
		return fmt.Errorf("recover: %w", err)
	} else if n > 0 {
		m.Log.Warn("calls interrupted by the last stop marked failed", "calls", n)
	}
	// After Recover: a receipt recorded while it counts the reports again could be counted twice.
	receipts.set(m.svc)
	bg, stop := context.WithCancel(context.Background())
	m.bgStop = stop
	m.bgDone.Add(2)
	go func() { defer m.bgDone.Done(); svc.Run(bg) }()
	go func() { defer m.bgDone.Done(); webhooks.Run(bg) }()
	for _, t := range trunks {
		if !t.Register {
			continue
		}
		d := t.WithDefaults(cfg.SIP.Transport)
		r := sip.Registration{Trunk: t.Name, Registrar: t.Address, Transport: d.Transport, Domain: t.Domain, User: t.Username,
			AuthUser: t.AuthUsername, Password: t.Password, Expires: d.RegisterExpires}
		m.metrics.TrunkRegistered(t.Name, false)
		m.regs.set(t.Name, sip.RegState{})
		m.bgDone.Add(1)
		go func() {
			defer m.bgDone.Done()
			m.ua.KeepRegistered(bg, r, func(s sip.RegState) {
				m.regs.set(r.Trunk, s)
				m.metrics.TrunkRegistered(r.Trunk, s.Registered)
			})
		}()
	}
	m.dialer.Start()
	names := make([]string, 0, len(trunks))
	for _, t := range trunks {
		names = append(names, t.Name)
	}
	m.metrics.Watch(metrics.Watched{Trunks: names, TrunksDown: m.dialer.Down, QueueLen: m.dialer.QueueLen, QueueCapacity: cfg.Dialer.QueueSize, StoreFailures: m.db.Failures, StoreCommits: m.db.Commits, StoreRoundTrips: m.roundTrips()})
	m.sampler = metrics.NewSampler(m.metrics, nil)
	m.sampler.Start()

	if m.ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
	}
	if cfg.HTTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		if err != nil {
			return fmt.Errorf("http.tls_cert, http.tls_key: %w", err)
		}
		m.ln = tls.NewListener(m.ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	m.HTTPAddr = m.ln.Addr().String()
	maxConns, perIP := m.connCaps()
	apiCfg := httpapi.Config{
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Apps: m.apps, Limiter: limiter, Ready: m.ready,
		AdminToken: cfg.HTTP.AdminToken, Pools: m.numbers, Metrics: m.metrics,
		Backup:         m.backup(),
		TrustedProxies: cfg.HTTP.Proxies(),
		MaxConns:       maxConns, MaxConnsPerIP: perIP,
	}
	if apiCfg.TOTP, err = totp.New(totp.Config{Settings: cfg.TOTP, Store: m.db, Apps: m.apps, Key: m.db.Key(), Limiter: limiter, Log: m.Log}); err != nil {
		return fmt.Errorf("totp: %w", err)
	}
	if m.gateway != nil { // a nil *smsgw.Sender would be a non-nil SMSReports
		apiCfg.SMSReports = m.gateway
	}
	if m.whatsApp != nil { // likewise
		apiCfg.WhatsApp = m.whatsApp
	}
	if apiCfg.Console, err = m.console(ctx); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	apiCfg.Console.Data = m.consoleData(webhooks, started)
	m.api = httpapi.New(apiCfg, svc, m.Log)
	m.bgDone.Add(1)
	go func() { defer m.bgDone.Done(); m.follow(bg, apiCfg.Console) }()
	return nil
}

// console is the web console's part of the API: the built app, the operators from the store, sessions in
// memory and the audit log. console.enabled off: none.
func (m *Main) console(ctx context.Context) (httpapi.ConsoleConfig, error) {
	cs := m.Config.Console
	if !cs.Enabled {
		return httpapi.ConsoleConfig{}, nil
	}
	files, err := fs.Sub(web.Dist, "dist")
	if err != nil {
		return httpapi.ConsoleConfig{}, err
	}
	accounts, err := console.LoadAccounts(ctx, m.db, 0)
	if err != nil {
		return httpapi.ConsoleConfig{}, err
	}
	return httpapi.ConsoleConfig{
		Files: files, Accounts: accounts, Sessions: console.NewSessions(cs.IdleTimeout, cs.MaxAge, nil), Audit: console.NewAudit(m.db, nil),
	}, nil
}

// callOutcomes is the dialer's Reporter: the otp service. The two need each other: the service submits
// each call to the dialer, and the dialer reports the call's progress and outcome to the service. The
// dialer is built first, reporting here; Service is set as soon as the service is built, before the
// dialer starts (it reports nothing before Start). This is the one cycle of the wiring.
type callOutcomes struct{ *otp.Service }

var _ dialer.Reporter = (*callOutcomes)(nil)

// messageReceipts takes the senders' receipts (message.Receipts) for the otp service, built after them and
// ready once it has recovered: a receipt from an SMSC's earlier session may come first, and waits for it
// (receiptWait at most; then it is dropped, as when the engine does not start).
type messageReceipts struct {
	svc   *otp.Service
	ready chan struct{} // closed by set
	once  sync.Once
}

// receiptWait bounds how long a receipt that came before the service was ready waits for it.
const receiptWait = 30 * time.Second

func (r *messageReceipts) set(svc *otp.Service) {
	r.once.Do(func() { r.svc = svc; close(r.ready) })
}

func (r *messageReceipts) receipt(rc message.Receipt) {
	select {
	case <-r.ready:
		r.svc.MessageReceipt(rc)
	case <-time.After(receiptWait):
	}
}

// connCaps are http.max_conns and http.max_conns_per_ip, lowered when the process's descriptor limit is
// too small for them: the API takes at most half the descriptors (a flood of API connections must leave
// some for SIP, the store and webhooks, and for the API's own accepts), and one address at most half of
// the API's (a single stranger never takes all of it).
func (m *Main) connCaps() (maxConns, perIP int) {
	maxConns, perIP = m.Config.HTTP.MaxConns, m.Config.HTTP.MaxConnsPerIP
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		if half := int(min(lim.Cur/2, 1<<20)); maxConns == 0 || maxConns > half {
			maxConns = half
		}
	}
	if maxConns > 0 && (perIP == 0 || perIP > maxConns/2) {
		perIP = max(1, maxConns/2)
	}
	if maxConns != m.Config.HTTP.MaxConns || perIP != m.Config.HTTP.MaxConnsPerIP {
		m.Log.Warn("http connection caps lowered to fit the descriptor limit", "max_conns", maxConns, "max_conns_per_ip", perIP, "nofile", lim.Cur)
	}
	return maxConns, perIP
}

// drain makes /readyz answer 503 and keeps the API serving for http.drain_delay, so that a load balancer
// sees the engine going and sends its traffic elsewhere before the listener closes. Requests in the
// meantime are served as usual: sends are still accepted and dialed.
func (m *Main) drain(serveErr <-chan error) error {
	m.draining.Store(true)
	d := m.Config.HTTP.DrainDelay
	if d <= 0 {
		return nil
	}
	m.Log.Info("flashotp draining: /readyz answers 503, the API serves on", "drain_delay", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-serveErr:
		return fmt.Errorf("http: %w", err)
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// ready says why the engine cannot take sends now, if it cannot.
func (m *Main) ready() error {
	if m.draining.Load() || m.dialer.Stopped() {
		return errors.New("shutting down")
	}
	if down := m.dialer.Down(); len(down) == len(m.Config.Trunks) {
		return fmt.Errorf("every trunk is down: %v", down)
	}
	if err := m.db.Check(); err != nil {
		return fmt.Errorf("restart needed: %w", err)
	}
	return nil
}

// close stops taking requests, lets the dialer end its calls, then closes SIP and the store.
func (m *Main) close() error {
	// One deadline for the whole drain (dialer.shutdown_timeout; its default when the Config was built by
	// hand).
	timeout := m.Config.Dialer.ShutdownTimeout
	if timeout <= 0 {
		timeout = dialer.DefaultSettings.ShutdownTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if m.api != nil {
		errs = append(errs, m.api.Shutdown(time.Until(deadline(ctx))))
	} else if m.ln != nil {
		errs = append(errs, m.ln.Close())
	}
	if m.sampler != nil {
		m.sampler.Stop() // after the API: no live stream reads it
	}
	if m.dialer != nil {
		if err := m.dialer.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("calls still running after dialer.shutdown_timeout (their outcomes are recovered as interrupted at the next start): %w", err))
		}
	}
	if m.bgStop != nil {
		// After the dialer: the last outcomes' webhooks are queued (and delivered at the next start).
		m.bgStop()
		m.bgDone.Wait()
	}
	if m.gateway != nil {
		m.gateway.Close()
	}
	if m.smpp != nil {
		errs = append(errs, m.smpp.Close()) // unbinds from every SMSC
	}
	if m.whatsApp != nil {
		m.whatsApp.Close() // after the API: no webhook is being read
	}
	if m.svc != nil {
		// After the senders closed: the messages they were handing over end, and their outcomes are
		// recorded while the store is open.
		if err := m.svc.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("messages still being sent after dialer.shutdown_timeout (recovered as interrupted at the next start): %w", err))
		}
		// The outcomes the store could not take, once more (Run, which tried them every second, has stopped).
		if _, err := m.svc.RecordUnrecorded(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("call outcomes not stored (their calls are recovered as interrupted at the next start): %w", err))
		}
		// The report counts of the last second; clean only when nothing can be counted after it (else
		// the next start counts those days again from the records).
		// Not clean either after a store failure: an outcome that was not written leaves its call in flight.
		clean := errors.Join(errs...) == nil && m.db.Failures() == 0
		if err := m.svc.FlushReports(context.WithoutCancel(ctx), clean); err != nil {
			errs = append(errs, fmt.Errorf("flush the report counts (counted again from the records at the next start): %w", err))
		}
		if nodes := m.nodes(); nodes != nil && clean {
			// No call in flight is left: no other engine needs to take this one over.
			if err := nodes.Leave(context.WithoutCancel(ctx), m.Config.Node.ID); err != nil {
				errs = append(errs, fmt.Errorf("leave the engines' leases (another engine takes this one over when its lease runs out): %w", err))
			}
		}
	}
	if m.ua != nil {
		errs = append(errs, m.ua.Close())
	}
	if m.phone != nil {
		errs = append(errs, m.phone.Close())
	}
	if m.numbers != nil {
		errs = append(errs, m.numbers.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}

// inboundTimeout bounds the matching of an inbound call: the caller's phone waits for its rejection.
const inboundTimeout = 2 * time.Second

// inboundCall matches a call from an inbound trunk (sip.UA.SetInbound); the UA rejects it whatever the
// result.
func (m *Main) inboundCall(c sip.InboundCall) {
	ctx, cancel := context.WithTimeout(context.Background(), inboundTimeout)
	defer cancel()
	_, id, err := m.svc.InboundCallReceived(ctx, otp.InboundCall{Trunk: c.Trunk, Called: c.Called, Caller: c.Caller, Identity: c.Identity})
	if err != nil {
		m.Log.Error("inbound call not matched: the store failed", "trunk", c.Trunk, "call_id", c.CallID, "err", err)
	}
	if id != "" {
		m.Log.Debug("inbound call matched", "trunk", c.Trunk, "verification_id", id)
	}
}

// stirVerifier verifies the PASSporTs of inbound calls against the stir section's trust anchors; nil
// without them (Identity headers are then not read).
func stirVerifier(s stir.Settings) (*stir.Verifier, error) {
	if s.TrustAnchors == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(s.TrustAnchors)
	if err != nil {
		return nil, fmt.Errorf("stir.trust_anchors: %w", err)
	}
	anchors, err := stir.ParsePEM(pem)
	if err != nil {
		return nil, fmt.Errorf("stir.trust_anchors %s: %w", s.TrustAnchors, err)
	}
	return stir.New(stir.Config{TrustAnchors: anchors, MaxAge: s.MaxAge, FetchTimeout: s.FetchTimeout})
}
