//go:build !js

package client

import "github.com/coder/websocket"

// dialOptions turns WebSocket compression off: the sync protocol
// compresses its own payloads (see package sync).
func dialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
}
