package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

// ErrProfile marks settings the profile refuses: its error says what the
// profile needs and how to give it.
var ErrProfile = errors.New("profile")

// checkProfile refuses what --profile prod does not run with: the
// development token, and plain HTTP that no trusted proxy terminates TLS
// for. Any profile refuses half a TLS setting.
func (o *serveOptions) checkProfile() error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return fmt.Errorf("%w: tls-cert and tls-key go together: give both PEM files (--tls-cert, --tls-key), or neither", ErrProfile)
	}
	if o.Profile != "prod" {
		return nil
	}
	if o.JWTAlg == "" {
		return fmt.Errorf("%w prod: the development token is refused: verify JWTs with --jwt-alg and --jwt-key "+
			"(or UNO_JWT_ALG and UNO_JWT_KEY, or jwt-alg and jwt-key in the config file), or run --profile dev", ErrProfile)
	}
	if o.TLSCert == "" && len(o.TrustedProxies) == 0 {
		return fmt.Errorf("%w prod: needs TLS: give --tls-cert and --tls-key (PEM certificate chain and key) to serve HTTPS and WSS, "+
			"or --trusted-proxies with the CIDRs of the proxies that terminate TLS in front of this server", ErrProfile)
	}
	return nil
}

// checkProxies checks trusted-proxies: CIDRs or single addresses.
func checkProxies(o *serveOptions) error {
	_, err := parseProxies(o.TrustedProxies)
	return err
}

func parseProxies(list []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or an address", s)
		}
		ps = append(ps, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return ps, nil
}

// certificate holds the server's TLS certificate, which a reload replaces.
type certificate struct {
	cert, key string
	current   atomic.Pointer[tls.Certificate]
}

// load reads the certificate and key files again.
func (c *certificate) load() error {
	kp, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return fmt.Errorf("tls-cert %s, tls-key %s: %w", c.cert, c.key, err)
	}
	c.current.Store(&kp)
	return nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// proxied honours X-Forwarded-For and X-Forwarded-Proto on requests from
// the trusted proxies: the client's address (the last one before the
// proxies) becomes the request's, for logs. When the server relies on the
// proxies for TLS (requireTLS), requests from anywhere else are refused
// (403), and so are those the proxy says came over plain HTTP.
type proxied struct {
	next       http.Handler
	proxies    []netip.Prefix
	requireTLS bool
}

func (p *proxied) trusted(a netip.Addr) bool {
	for _, pr := range p.proxies {
		if pr.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func (p *proxied) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	peer, err := netip.ParseAddr(host)
	if err != nil || !p.trusted(peer) {
		if p.requireTLS {
			http.Error(w, "uno: this server takes requests through its TLS proxies only", http.StatusForbidden)
			return
		}
		p.next.ServeHTTP(w, r)
		return
	}
	if p.requireTLS && !strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https") {
		http.Error(w, "uno: this server takes HTTPS only (X-Forwarded-Proto: https)", http.StatusForbidden)
		return
	}
	// The rightmost address that is not a trusted proxy is the client's.
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !p.trusted(a) {
			r2 := r.Clone(r.Context())
			r2.RemoteAddr = net.JoinHostPort(a.String(), "0")
			p.next.ServeHTTP(w, r2)
			return
		}
	}
	p.next.ServeHTTP(w, r)
}
