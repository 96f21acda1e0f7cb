package cli

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
)

func compactCmd(app Options) *cobra.Command {
	var dsn, dataDir, tenant string
	var before uint64
	var jf jobFlags
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Drop the doc changes of old log entries, which the read model holds merged",
		Long: `Rewrites the log entries below --before (default: all of them) without
their doc changes: the rows read model already holds every doc field
merged, so a long run of a document's changes need not stay in the log.
Every transaction stays (possibly with no ops), so appends stay
idempotent. A client whose cursor is below the entries rewritten
bootstraps from a snapshot when it next connects, as one behind a
retention cut does; one connected meanwhile is told to reconnect and
does the same. uno serve runs this in the background (--compact-interval)
as far as every client connected to it allows: by hand, give --before
to spare the clients you know of.

With --postgres DSN it compacts the registered tenants (uno tenant
create), or --tenant; servers may run meanwhile. With --data DIR, the
SQLite log of that data directory, every tenant with a log, or --tenant;
stop uno serve first. Entries an async projection has not folded yet
stay as they are.

With --job (and --tenant), the compaction is enqueued instead, for a
running uno serve node to run as far as the live clients of every node
allow; the command prints the job's ID (uno jobs list shows its result).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			if jf.job {
				if tenant == "" {
					return errors.New("--job needs --tenant: which tenant to compact")
				}
				j, err := openJobs(ctx, dsn, dataDir)
				if err != nil {
					return err
				}
				defer j.Close(ctx)
				return jf.enqueue(ctx, j, jobs.CompactArgs{Tenant: tenant, Before: before, By: "uno-cli"}, out)
			}
			var cp server.Compactor
			var list func() ([]string, error)
			switch {
			case dsn != "" && dataDir != "":
				return errors.New("give --postgres DSN or --data DIR, not both")
			case dsn != "":
				l, err := pglog.Open(ctx, dsn, app.Projections...)
				if err != nil {
					return err
				}
				defer l.Close()
				cp, list = l, func() ([]string, error) { return l.Tenants(ctx) }
			case dataDir != "":
				path := filepath.Join(dataDir, "log.db")
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("no SQLite log in data directory %s: %w", dataDir, err)
				}
				// The server serves the newest entries from memory and
				// knows its clients' cursors: compact while it is stopped.
				release, err := lockDir(dataDir)
				if err != nil {
					return fmt.Errorf("compact: stop uno serve first (its background compaction spares its clients): %w", err)
				}
				defer release()
				l, err := sqlitelog.Open(ctx, path, &sqlitelog.Options{Projections: app.SQLiteProjections})
				if err != nil {
					return err
				}
				defer l.Close()
				cp, list = l, func() ([]string, error) { return l.Tenants(ctx) }
			default:
				return errors.New("--postgres DSN or --data DIR is required: which log to compact")
			}
			tenants := []string{tenant}
			if tenant == "" {
				var err error
				if tenants, err = list(); err != nil {
					return err
				}
			}
			if before == 0 {
				before = math.MaxUint64 // the log caps it at its head + 1
			}
			var total server.Compaction
			for _, t := range tenants {
				res, err := cp.Compact(ctx, t, before)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "tenant %s: %d entries rewritten, %d bytes saved, floor %d\n", t, res.Rewritten, res.Saved, res.Floor)
				total.Rewritten += res.Rewritten
				total.Saved += res.Saved
			}
			fmt.Fprintf(out, "%d tenant(s): %d entries rewritten, %d bytes saved\n", len(tenants), total.Rewritten, total.Saved)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dsn, "postgres", "", "the Postgres log's DSN")
	f.StringVar(&dataDir, "data", "", "the data directory of the embedded SQLite log")
	f.StringVar(&tenant, "tenant", "", "compact this tenant only")
	jf.add(cmd)
	f.Uint64Var(&before, "before", 0, "compact the entries below this sequence number (0: all; clients behind it bootstrap)")
	return cmd
}
