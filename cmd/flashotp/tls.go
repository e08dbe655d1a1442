package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"flashotp/dialer"
	"flashotp/sip"
)

// trunkTLS builds the one TLS client configuration the SIP UA uses for every TLS trunk: it trusts the
// union of their CA bundles (the system's roots when a trunk names none), presents the client certificate
// if one is configured, and checks each server against the trunk's tls_server_name (default: the address's
// host). nil when no trunk uses TLS.
func trunkTLS(trunks []dialer.Trunk) (*tls.Config, error) {
	var (
		pems       [][]byte
		useSystem  bool
		cert       *tls.Certificate
		certTrunk  string
		serverName = map[string]string{} // address host → name to verify
		names      []string              // every name some TLS trunk's certificate must carry
		anyTLS     bool
	)
	for i, t := range trunks {
		if t.Transport != "tls" {
			continue
		}
		anyTLS = true
		key := fmt.Sprintf("trunks[%d]", i)
		host, _, _ := net.SplitHostPort(t.Address)
		serverName[host] = host
		if t.TLSServerName != "" {
			serverName[host] = t.TLSServerName
		}
		names = append(names, serverName[host])
		if t.TLSCA == "" {
			useSystem = true
		} else {
			pem, err := os.ReadFile(t.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("%s.tls_ca: %w", key, err)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s.tls_ca: no PEM certificate in %s", key, t.TLSCA)
			}
			pems = append(pems, pem)
		}
		if t.TLSCert != "" {
			c, err := tls.LoadX509KeyPair(t.TLSCert, t.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("%s.tls_cert: %w", key, err)
			}
			if cert != nil && !c.Leaf.Equal(cert.Leaf) {
				return nil, fmt.Errorf("%s.tls_cert: differs from %s's; one client certificate per engine", key, certTrunk)
			}
			cert, certTrunk = &c, key
		}
	}
	if !anyTLS {
		return nil, nil
	}
	roots := x509.NewCertPool()
	if useSystem {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("system CA roots: %w", err)
		}
		roots = sys
	}
	for _, pem := range pems {
		roots.AppendCertsFromPEM(pem)
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		// sipgo sets ServerName to the trunk's host; verification is done below against the configured
		// name, which Go's built-in check cannot take per connection.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: trunk sent no certificate")
			}
			// A trunk addressed by name: its name (or tls_server_name). A trunk addressed by IP: Go sends no
			// SNI then and the connection state does not say which trunk this is, so the certificate must
			// carry the name expected of one of the TLS trunks (exact when there is one TLS trunk).
			want := names
			if n, ok := serverName[cs.ServerName]; ok && cs.ServerName != "" {
				want = []string{n}
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			var err error
			for _, name := range want {
				opts.DNSName = name
				if _, err = cs.PeerCertificates[0].Verify(opts); err == nil {
					return nil
				}
			}
			return err
		},
	}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	return conf, nil
}

// listenerTLS is the TLS listener's configuration (sip.tls_listen): its certificate, and with
// tls_client_ca, the client certificates it requires. nil without tls_listen.
func listenerTLS(s sip.Settings) (*tls.Config, error) {
	if s.TLSListen == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("sip.tls_cert, sip.tls_key: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.TLSClientCA != "" {
		pem, err := os.ReadFile(s.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("sip.tls_client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sip.tls_client_ca: no PEM certificate in %s", s.TLSClientCA)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return conf, nil
}
