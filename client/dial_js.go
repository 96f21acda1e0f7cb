//go:build js

package client

import (
	"crypto/tls"

	"github.com/coder/websocket"
)

// dialOptions: in the browser the WebSocket is the browser's, which
// negotiates compression and TLS by itself; there is nothing to set.
func dialOptions(*tls.Config) *websocket.DialOptions { return nil }
