package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
)

func projectionCmd(app Options) *cobra.Command {
	var dsn, dataDir string
	var jf jobFlags
	cmd := &cobra.Command{
		Use:   "projection setup|list|rebuild NAME",
		Short: "Administer the read models of the Postgres log (--postgres) or of a data directory's SQLite log (--data)",
		Long: `setup creates the tables of this binary's projections that do not exist
yet. list names them. rebuild NAME replays the whole log into fresh
copies of a projection's tables and swaps them in atomically (appends
wait only for the swap): to fix a fold or change a projection's tables.
Projections are Go code: build a binary with yours through package cli
(cli.Options.Projections for Postgres, cli.Options.SQLiteProjections for
SQLite).

With --postgres DSN (run as the tables' owner), the tables are created
under row-level security with the grants uno_rows has, and "rows", the
built-in rows read model, can be rebuilt too.

With --data DIR, the log is the SQLite file of that data directory (what
uno serve uses without --postgres; uno serve also sets up missing tables
itself, filling new ones from the log). setup and rebuild may run while
the server runs: SQLite's one writer serialises the swap with appends,
and the server keeps nothing of a projection's tables in memory (a table
set up meanwhile is folded from the server's next start). The rows read
model cannot be rebuilt there.

rebuild --job enqueues the rebuild instead, for a running uno serve node
to run (the same projection never rebuilds twice at once), and prints the
job's ID.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case dsn != "" && dataDir != "":
				return errors.New("give --postgres DSN or --data DIR, not both")
			case dsn == "" && dataDir == "":
				return errors.New("--postgres DSN or --data DIR is required")
			}
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			names, asyncs := []string{"rows"}, []bool{false}
			if dsn != "" {
				for _, p := range app.Projections {
					names, asyncs = append(names, p.Name), append(asyncs, p.Async)
				}
			} else {
				for _, p := range app.SQLiteProjections {
					names, asyncs = append(names, p.Name), append(asyncs, p.Async)
				}
			}
			path := filepath.Join(dataDir, "log.db")
			if dataDir != "" && args[0] != "setup" {
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("no SQLite log in data directory %s: %w", dataDir, err)
				}
			}
			switch args[0] {
			case "setup":
				var err error
				n := len(app.Projections)
				if dsn != "" {
					err = pglog.SetupProjections(ctx, dsn, app.Projections...)
				} else {
					if err = os.MkdirAll(dataDir, 0o700); err == nil {
						err = sqlitelog.SetupProjections(ctx, path, app.SQLiteProjections...)
					}
					n = len(app.SQLiteProjections)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%d projection(s) set up\n", n)
			case "list":
				for i, name := range names {
					mode := "inline"
					if asyncs[i] {
						mode = "async"
					}
					if name == "rows" {
						mode += "\tbuilt in"
					}
					fmt.Fprintf(out, "%s\t%s\n", name, mode)
				}
			case "rebuild":
				if len(args) != 2 {
					return errors.New("projection rebuild needs the projection's NAME")
				}
				name := args[1]
				if jf.job {
					if !slices.Contains(names, name) || dsn == "" && name == "rows" {
						return errNoProjection(name, names)
					}
					j, err := openJobs(ctx, dsn, dataDir)
					if err != nil {
						return err
					}
					defer j.Close(ctx)
					return jf.enqueue(ctx, j, jobs.RebuildArgs{Projection: name}, out)
				}
				start, last := time.Now(), time.Time{}
				progress := func(tenant string, seq, head uint64) {
					if time.Since(last) > time.Second || seq == head {
						fmt.Fprintf(cmd.ErrOrStderr(), "rebuild %s: tenant %s: %d/%d\n", name, tenant, seq, head)
						last = time.Now()
					}
				}
				var err error
				switch {
				case dsn != "" && name == "rows":
					err = pglog.RebuildProjection(ctx, dsn, pglog.RowsProjection(), progress)
				case dsn != "":
					err = errNoProjection(name, names)
					for _, p := range app.Projections {
						if p.Name == name {
							err = pglog.RebuildProjection(ctx, dsn, p, progress)
						}
					}
				case name == "rows":
					err = errors.New("rebuilding rows is not available on the SQLite log (it folds rows in every append's transaction): use --postgres for a Postgres log")
				default:
					err = errNoProjection(name, names)
					for _, p := range app.SQLiteProjections {
						if p.Name == name {
							err = sqlitelog.RebuildProjection(ctx, path, p, progress)
						}
					}
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "projection %s rebuilt and swapped in (%s)\n", name, time.Since(start).Round(time.Millisecond))
			default:
				return fmt.Errorf("unknown projection command %q: want setup, list or rebuild", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "postgres", "", "the Postgres database's DSN, as the tables' owner")
	jf.add(cmd)
	cmd.Flags().StringVar(&dataDir, "data", "", "the data directory whose SQLite log to use (as uno serve --data)")
	return cmd
}

func errNoProjection(name string, have []string) error {
	return fmt.Errorf("no projection %q in this binary for this log (it has: %s)", name, strings.Join(have, ", "))
}
