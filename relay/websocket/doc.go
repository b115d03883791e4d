// Package websocket is a relay adapter that pushes messages to a WebSocket
// server (client mode) with coder/websocket, one frame per message, and
// reconnects when the connection is lost.
//
// WebSocket has no acknowledgement: a message written just before the
// connection drops can be lost. Send fails (and the pipeline retries the
// whole batch on a new connection) when a write fails or the connection
// was seen closing, which covers a server that closes cleanly.
package websocket
