package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

// openJobs opens a job client (enqueue, list, retry, cancel; it runs no
// jobs) on the log that --postgres or --data selects.
func openJobs(ctx context.Context, dsn, dataDir string) (*jobs.Jobs, error) {
	switch {
	case dsn != "" && dataDir != "":
		return nil, errors.New("give --postgres DSN or --data DIR, not both")
	case dsn != "":
		return jobs.Open(ctx, jobs.Config{Postgres: dsn, Node: "uno-cli"})
	case dataDir != "":
		path := filepath.Join(dataDir, "log.db")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no SQLite log in data directory %s (start uno serve --data %s once): %w", dataDir, dataDir, err)
		}
		return jobs.Open(ctx, jobs.Config{SQLitePath: path, Node: "uno-cli"})
	default:
		return nil, errors.New("--postgres DSN or --data DIR is required: which log's jobs")
	}
}

// jobFlags are the flags of a command that can enqueue its work.
type jobFlags struct {
	job bool
	in  time.Duration
}

func (jf *jobFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&jf.job, "job", false, "enqueue the work as a background job that a running uno serve node runs, print its ID and return (uno jobs list shows it)")
	cmd.Flags().DurationVar(&jf.in, "job-in", 0, "with --job: run the job after this delay")
}

// enqueue adds a, printing the job's ID.
func (jf *jobFlags) enqueue(ctx context.Context, j *jobs.Jobs, a jobs.Args, out io.Writer) error {
	if jf.in < 0 {
		return fmt.Errorf("--job-in %s: must not be negative", jf.in)
	}
	var o *jobs.EnqueueOpts
	if jf.in > 0 {
		o = &jobs.EnqueueOpts{At: time.Now().Add(jf.in)}
	}
	e, err := j.Enqueue(ctx, a, o)
	if err != nil {
		return err
	}
	if e.Duplicate {
		fmt.Fprintf(out, "job %d: the same work is already %s (%s %s)\n", e.Job.ID, e.Job.State, e.Job.Kind, e.Job.Args)
		return nil
	}
	fmt.Fprintf(out, "job %d enqueued (%s %s)\n", e.Job.ID, e.Job.Kind, e.Job.Args)
	return nil
}

func jobsCmd() *cobra.Command {
	var dsn, dataDir string
	var states, kinds []string
	var limit int
	cmd := &cobra.Command{
		Use:   "jobs list|retry ID|cancel ID",
		Short: "List, retry and cancel background jobs",
		Long: `Background jobs (compaction, retention, projection rebuilds, tenant
export and delete) wait in a queue in the log's database (--postgres DSN,
or --data DIR for the embedded log) and run on the uno serve nodes.
list shows the newest (--state, --kind filter them); retry makes a job
run again now; cancel stops a waiting or running job for good.

States: available, scheduled, running, retryable (failed, waiting to run
again), completed, cancelled, discarded (failed its last attempt).
Kinds: uno_compact, uno_retain, uno_rebuild, uno_export, uno_delete.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			var id int64
			switch args[0] {
			case "list":
				if len(args) != 1 {
					return errors.New("jobs list takes no ID: filter with --state and --kind")
				}
			case "retry", "cancel":
				if len(args) != 2 {
					return fmt.Errorf("jobs %s needs the job's ID (uno jobs list shows them)", args[0])
				}
				var err error
				if id, err = strconv.ParseInt(args[1], 10, 64); err != nil || id <= 0 {
					return fmt.Errorf("job ID %q: want a positive number (uno jobs list shows them)", args[1])
				}
			default:
				return fmt.Errorf("unknown jobs command %q: want list, retry or cancel", args[0])
			}
			j, err := openJobs(ctx, dsn, dataDir)
			if err != nil {
				return err
			}
			defer j.Close(ctx)
			var job jobs.Job
			switch args[0] {
			case "list":
				js, err := j.List(ctx, jobs.Filter{States: states, Kinds: kinds, Limit: limit})
				if err != nil {
					return err
				}
				return printJobs(out, js)
			case "retry":
				job, err = j.Retry(ctx, id)
			case "cancel":
				job, err = j.Cancel(ctx, id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "job %d (%s %s): %s\n", job.ID, job.Kind, job.Args, job.State)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dsn, "postgres", "", "the Postgres log's DSN")
	f.StringVar(&dataDir, "data", "", "the data directory of the embedded SQLite log")
	f.StringSliceVar(&states, "state", nil, "list: only jobs in these states (comma-separated)")
	f.StringSliceVar(&kinds, "kind", nil, "list: only jobs of these kinds (comma-separated)")
	f.IntVar(&limit, "limit", 100, "list: at most this many jobs, newest first")
	return cmd
}

// printJobs writes jobs as a table.
func printJobs(out io.Writer, js []jobs.Job) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tKIND\tARGS\tSTATE\tATTEMPTS\tSCHEDULED\tFINISHED\tNODE\tLAST ERROR")
	for _, jb := range js {
		finished, node := "-", "-"
		if !jb.FinishedAt.IsZero() {
			finished = jb.FinishedAt.Local().Format(time.DateTime)
		}
		if n := len(jb.AttemptedBy); n > 0 {
			node = jb.AttemptedBy[n-1]
		}
		lastErr := strings.ReplaceAll(jb.LastError, "\n", " ")
		if len(lastErr) > 80 {
			lastErr = lastErr[:77] + "..."
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", jb.ID, jb.Kind, jb.Args, jb.State, jb.Attempt, jb.MaxAttempts,
			jb.ScheduledAt.Local().Format(time.DateTime), finished, node, cmpStr(lastErr, "-"))
	}
	return w.Flush()
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// serveJobs opens and starts uno serve's job client on its log: this
// node enqueues compaction for the tenants written through it, records
// its sessions' floors, runs jobs with workers > 0, and (as River's
// leader) schedules retention.
func serveJobs(ctx context.Context, o serveOptions, app Options, srv *server.Server, sl *sqlitelog.Log, reg tenancy.Registry, logger *slog.Logger) (*jobs.Jobs, error) {
	work := jobs.Work{Compact: srv.Compact, Floors: srv.SessionFloors, Pending: srv.PendingCompactions}
	if reg != nil {
		work.Retain = srv.Retain
	}
	cfg := jobs.Config{Node: o.Node, Workers: o.JobWorkers, Logger: logger.With("component", "jobs"),
		CompactInterval: time.Duration(o.CompactInterval)}
	if cfg.CompactInterval == 0 {
		cfg.CompactInterval = -1 // never
	}
	if o.Postgres != "" {
		dsn := o.Postgres
		cfg.Postgres = dsn
		work.Rebuild = func(ctx context.Context, name string) error {
			if name == "rows" {
				return pglog.RebuildProjection(ctx, dsn, pglog.RowsProjection(), nil)
			}
			for _, p := range app.Projections {
				if p.Name == name {
					return pglog.RebuildProjection(ctx, dsn, p, nil)
				}
			}
			return fmt.Errorf("%w: no projection %q in this binary", jobs.ErrBadArgs, name)
		}
		work.Export = func(ctx context.Context, tenant string, w io.Writer) (int, error) {
			r, err := pglog.OpenRegistry(ctx, dsn)
			if err != nil {
				return 0, err
			}
			defer r.Close()
			return r.Export(ctx, tenant, w)
		}
		work.Delete = func(ctx context.Context, tenant string) error {
			r, err := pglog.OpenRegistry(ctx, dsn)
			if err != nil {
				return err
			}
			defer r.Close()
			return r.Delete(ctx, tenant)
		}
	} else {
		path := filepath.Join(o.DataDir, "log.db")
		cfg.SQLitePath = path
		work.Rebuild = func(ctx context.Context, name string) error {
			for _, p := range app.SQLiteProjections {
				if p.Name == name {
					return sqlitelog.RebuildProjection(ctx, path, p, nil)
				}
			}
			return fmt.Errorf("%w: no projection %q in this binary for the SQLite log (rows is folded in every append)", jobs.ErrBadArgs, name)
		}
		// The server's own log: a deletion also clears its memory.
		work.Export = func(ctx context.Context, tenant string, w io.Writer) (int, error) {
			return sl.Registry().Export(ctx, tenant, w)
		}
		work.Delete = func(ctx context.Context, tenant string) error { return sl.Registry().Delete(ctx, tenant) }
	}
	cfg.Work = work
	j, err := jobs.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := srv.RegisterMetrics(j.Collector()); err != nil {
		j.Close(ctx)
		return nil, err
	}
	if err := j.Start(ctx); err != nil {
		j.Close(ctx)
		return nil, err
	}
	return j, nil
}
