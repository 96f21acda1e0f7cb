package cli

// settings is the one declaration of every setting of uno serve: from it
// come the flags, the environment variables (UNO_ and the name in capitals,
// dashes as underscores), the config file's keys, uno config print and
// docs/configuration.md.
//
// Adding a setting is a field in serveOptions, whose json tag is its key,
// with its description in a doc tag and, if it has one, its default in a
// default tag; live:"true" if a reload applies it:
//
//	DrainDelay duration `json:"drain-delay" default:"5s" doc:"how long to wait before draining"`
//
// An entry in declaredSettings, if the setting needs more (allowed values,
// what 0 stands for, a check), takes the place of the tags.
var settings = withTagged(declaredSettings)

// declaredSettings are the settings declared here rather than by tags.
var declaredSettings = []setting{
	{name: "profile", kind: kindString, def: "dev", allowed: []string{"dev", "prod"},
		doc: "dev: defaults for a developer's machine; prod: refuses the development token, needs TLS (tls-cert and tls-key, or trusted-proxies) and logs JSON"},
	{name: "addr", kind: kindString, def: "127.0.0.1:8080",
		doc: "address to listen on (host:port)"},
	{name: "data", kind: kindString, def: "uno-data",
		doc: "directory for the server's data"},
	{name: "log-level", live: true, kind: kindString, def: "info", allowed: []string{"debug", "info", "warn", "error"}, doc: "the least severe log records written"},
	{name: "log-format", kind: kindString, def: "text", prodDef: "json", allowed: []string{"text", "json"}, doc: "text, or json (one JSON object a line)"},
	{name: "tenant", kind: kindString, def: "dev",
		doc: "the tenant the development token grants"},
	{name: "max-connections", live: true, kind: kindInt, zero: "10,000",
		doc: "concurrent sync connections"},
	{name: "max-frame-bytes", kind: kindInt, zero: "4 MiB",
		doc: "largest frame on the wire"},
	{name: "max-message-bytes", kind: kindInt, zero: "16 MiB", atLeast: 1024,
		doc: "largest message after decompression"},
	{name: "max-push-txs", live: true, kind: kindInt, zero: "1,000",
		doc: "most transactions in one push"},
	{name: "batch-rows", live: true, kind: kindInt, zero: "500",
		doc: "most log entries or snapshot rows per message"},
	{name: "batch-bytes", live: true, kind: kindInt, zero: "1 MiB",
		doc: "most bytes of log entries or row states per message; one larger still goes alone"},
	{name: "max-push-bytes", kind: kindInt, zero: "64 MiB",
		doc: "bytes of received frames held at once, over all connections, until their pushes are acknowledged; others wait"},
	{name: "max-streams", live: true, kind: kindInt, zero: "1,000",
		doc: "most live query streams (Server-Sent Events) at once"},
	{name: "hello-timeout", live: true, kind: kindDuration, zero: "10s", positive: true,
		doc: "how long a new connection may take to say Hello"},
	{name: "max-drift", live: true, kind: kindDuration, zero: "24h", positive: true,
		doc: "how far ahead of the server's clock a write may be stamped"},
	{name: "origins", kind: kindList,
		doc: "browser origins allowed besides the server's host (a list; comma-separated in a flag or variable)"},
	{name: "jwt-alg", kind: kindString, allowed: []string{"", "EdDSA", "ES256", "HS256"},
		doc: "verify JWTs with this algorithm instead of the development token"},
	{name: "jwt-key", kind: kindString,
		doc: "file with the JWT key: a PEM public key (EdDSA, ES256) or the secret (HS256)"},
	{name: "registry", kind: kindBool, def: "false",
		doc: "admit only tenants registered with uno tenant create, and enforce their limits"},
	{name: "postgres", kind: kindString, secret: maskDSN,
		doc: "keep the event log in Postgres at this DSN instead of SQLite in the data directory"},
	{name: "web", kind: kindString,
		doc: "serve this directory's files (a web app) at /: regular files inside it only, no dotfiles, a directory's index.html"},
	{name: "dev-token-on-network", kind: kindBool, def: "false",
		doc: "allow the development token on an address other machines reach (whoever holds the token reads and writes the tenant)"},
	{name: "tls-cert", live: true, kind: kindString,
		doc: "PEM certificate chain file: the server serves HTTPS and WSS (with tls-key); read again on SIGHUP"},
	{name: "tls-key", live: true, kind: kindString,
		doc: "PEM private key file of tls-cert"},
	{name: "trusted-proxies", kind: kindList, check: checkProxies,
		doc: "CIDRs of the proxies that terminate TLS in front of the server: their X-Forwarded-For and X-Forwarded-Proto are honoured; under --profile prod without tls-cert, requests from elsewhere, or that came over plain HTTP, are refused"},
	{name: "drain-timeout", kind: kindDuration, def: "30s",
		doc: "on SIGTERM or SIGINT, how long sessions may take to finish before they are cut"},
	{name: "compact-interval", kind: kindDuration, def: "1h",
		doc: "how often to compact the logs written to through this server: drop doc changes every live client is past; 0: never"},
	{name: "read-header-timeout", kind: kindDuration, def: "10s",
		doc: "time to read a request's headers"},
	{name: "read-timeout", kind: kindDuration, def: "30s",
		doc: "time to read a whole request (WebSocket sessions and live queries outlive it)"},
	{name: "write-timeout", kind: kindDuration, def: "2m",
		doc: "time to write a response (WebSocket sessions and live queries outlive it: each of their frames or events has 10s)"},
	{name: "idle-timeout", kind: kindDuration, def: "2m",
		doc: "how long a kept-alive connection may wait for its next request"},
	{name: "max-header-bytes", kind: kindInt, def: "65536", atLeast: 4096,
		doc: "largest request header block, in bytes"},
	{name: "rules", live: true, kind: kindObject, fileOnly: true, check: checkRules,
		doc: `per-collection rules, by collection: {"todos": {"owner": "owner", "private_read": true}, "plans": {"read_only": true}} (owner: only the user named in that field writes a row; private_read: each user receives only their rows; read_only: no client writes)`},
	{name: "schema", kind: kindObject, fileOnly: true, check: checkSchema,
		doc: `the declared schema the server enforces: {"version": 1, "collections": {"todos": {"title": "register", "votes": "counter"}}}`},
}
