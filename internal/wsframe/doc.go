// Package wsframe reads WebSocket messages into pooled memory, for the
// sync protocol's two ends: a connection reads many frames of like size,
// and each one's memory is garbage as soon as it is decoded (the codec's
// decoders copy what a message keeps), so the next frame is read into
// it rather than into a new slice as websocket.Conn.Read would make.
package wsframe
