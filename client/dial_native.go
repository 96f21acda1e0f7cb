//go:build !js

package client

import (
	"crypto/tls"
	"net/http"

	"github.com/coder/websocket"
)

// dialOptions turns WebSocket compression off: the sync protocol
// compresses its own payloads (see package sync). A TLS configuration,
// if any, is the dialer's for wss://.
func dialOptions(tc *tls.Config) *websocket.DialOptions {
	o := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
	if tc != nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc.Clone(), Proxy: http.ProxyFromEnvironment}}
	}
	return o
}
