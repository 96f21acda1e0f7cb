//go:build js

package client

import "github.com/coder/websocket"

// dialOptions: in the browser the WebSocket is the browser's, which
// negotiates compression by itself; there is nothing to set.
func dialOptions() *websocket.DialOptions { return nil }
