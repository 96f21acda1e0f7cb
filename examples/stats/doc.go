// Command stats is uno with an aggregate projection compiled in: per
// tenant and collection, how many transactions and operations the log
// holds, how many were row deletes, and the newest entry. It shows how an
// application declares a projection (pglog.Projection for the Postgres
// log, sqlitelog.Projection for the embedded SQLite one: the same counts,
// one fold each), has it folded by the server, inline or async, and
// rebuilds it — with the uno command as a library (package cli).
//
// On the embedded SQLite log (uno serve sets up the table itself):
//
//	go run ./examples/stats serve --data ./uno-data
//	sqlite3 ./uno-data/log.db 'SELECT * FROM collection_stats'
//	go run ./examples/stats projection rebuild collection_stats --data ./uno-data
//
// On Postgres:
//
//	go run ./examples/stats migrate up --postgres $OWNER_DSN
//	go run ./examples/stats projection setup --postgres $OWNER_DSN
//	go run ./examples/stats serve --postgres $APP_DSN
//	psql $OWNER_DSN -c 'SELECT * FROM collection_stats'
//	go run ./examples/stats projection rebuild collection_stats --postgres $OWNER_DSN
//
// Set UNO_STATS_ASYNC=1 to fold it asynchronously (after the append, with
// a checkpoint) rather than in the append transaction.
package main
