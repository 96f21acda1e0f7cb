package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server/jobs"
	"github.com/unosync/uno/server/pglog"
	"github.com/unosync/uno/server/sqlitelog"
	"github.com/unosync/uno/tenancy"
)

func tenantCmd() *cobra.Command {
	var dsn, dataDir string
	var lim tenancy.Tenant
	var jf jobFlags
	var to string
	cmd := &cobra.Command{
		Use:   "tenant create ID|list|limits ID|suspend ID|resume ID|delete ID|export ID",
		Short: "Administer the tenant registry",
		Long: `Creates, lists, sets the limits of, suspends, resumes, deletes (with all
their data) and exports (the log as JSON lines) tenants in the registry
that uno serve --registry enforces — in Postgres (--postgres, as the tables'
owner) or in the embedded log of a data directory (--data; delete needs
the server stopped): unregistered and suspended
tenants are refused; --ops-per-sec caps a tenant's pushed transactions per
second per node; --max-rows and --max-bytes cap its read model (pushes
over them are refused with code 1205); --retention-days has the server
delete older log entries (clients behind them bootstrap again). limits
changes only the flags given; sessions opened after it see the change.

delete --job and export --job enqueue the work for a running uno serve
node (delete then needs no stopped server) and print the job's ID; the
export goes to --to FILE (an absolute path on the node; with --data, by
default DIR/exports/ID.jsonl).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if jf.job {
				return tenantJob(ctx, cmd.OutOrStdout(), args, dsn, dataDir, to, &jf)
			}
			var reg tenancy.Admin
			switch {
			case dsn != "" && dataDir != "":
				return errors.New("--postgres or --data, not both")
			case dsn != "":
				r, err := pglog.OpenRegistry(ctx, dsn)
				if err != nil {
					return err
				}
				reg = r
			case dataDir != "":
				if args[0] == "delete" {
					// The server keeps recent entries in memory: delete
					// only while no server uses the directory.
					release, err := lockDir(dataDir)
					if err != nil {
						return fmt.Errorf("tenant delete: stop uno serve first: %w", err)
					}
					defer release()
				}
				r, err := sqlitelog.OpenRegistry(ctx, filepath.Join(dataDir, "log.db"))
				if err != nil {
					return err
				}
				reg = r
			default:
				return errors.New("--postgres DSN or --data DIR is required: where the registry is")
			}
			defer reg.Close()
			out := cmd.OutOrStdout()
			id := ""
			if len(args) == 2 {
				id = args[1]
			}
			needID := func() error {
				if id == "" {
					return fmt.Errorf("tenant %s needs the tenant ID", args[0])
				}
				return nil
			}
			switch args[0] {
			case "create":
				if err := needID(); err != nil {
					return err
				}
				lim.ID = id
				if err := reg.Create(ctx, lim); err != nil {
					return err
				}
				fmt.Fprintf(out, "created tenant %s\n", id)
			case "limits":
				if err := needID(); err != nil {
					return err
				}
				t, err := reg.Tenant(ctx, id)
				if err != nil {
					return err
				}
				f := cmd.Flags()
				if f.Changed("ops-per-sec") {
					t.OpsPerSec = lim.OpsPerSec
				}
				if f.Changed("max-rows") {
					t.MaxRows = lim.MaxRows
				}
				if f.Changed("max-bytes") {
					t.MaxBytes = lim.MaxBytes
				}
				if f.Changed("retention-days") {
					t.RetentionDays = lim.RetentionDays
				}
				if err := reg.SetLimits(ctx, t); err != nil {
					return err
				}
				fmt.Fprintf(out, "tenant %s: ops/s %d, rows %d, bytes %d, retention %d days (0: none)\n", id, t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays)
			case "list":
				ts, err := reg.List(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TENANT\tSTATUS\tOPS/S\tMAX ROWS\tMAX BYTES\tRETENTION\tCREATED")
				for _, t := range ts {
					status := "active"
					if t.Suspended {
						status = "suspended"
					}
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%dd\t%s\n", t.ID, status, t.OpsPerSec, t.MaxRows, t.MaxBytes, t.RetentionDays, t.CreatedAt.Format("2006-01-02 15:04"))
				}
				return w.Flush()
			case "suspend", "resume":
				if err := needID(); err != nil {
					return err
				}
				if err := reg.SetSuspended(ctx, id, args[0] == "suspend"); err != nil {
					return err
				}
				fmt.Fprintf(out, "tenant %s %s\n", id, map[string]string{"suspend": "suspended", "resume": "resumed"}[args[0]])
			case "delete":
				if err := needID(); err != nil {
					return err
				}
				if err := reg.Delete(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(out, "deleted tenant %s and its data\n", id)
			case "export":
				if err := needID(); err != nil {
					return err
				}
				if _, err := reg.Export(ctx, id, out); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unknown tenant command %q: want create, list, limits, suspend, resume, delete or export", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "postgres", "", "the registry in Postgres: the database's DSN, as the tables' owner")
	jf.add(cmd)
	cmd.Flags().StringVar(&to, "to", "", "export --job: the file to write, an absolute path on the node that runs the job")
	cmd.Flags().StringVar(&dataDir, "data", "", "the registry in the embedded log of this uno serve data directory")
	cmd.Flags().IntVar(&lim.OpsPerSec, "ops-per-sec", 0, "create, limits: cap on pushed transactions per second per node (0: none)")
	cmd.Flags().Int64Var(&lim.MaxRows, "max-rows", 0, "create, limits: cap on the rows of the tenant's read model (0: none)")
	cmd.Flags().Int64Var(&lim.MaxBytes, "max-bytes", 0, "create, limits: cap on the bytes of the tenant's row states (0: none)")
	cmd.Flags().IntVar(&lim.RetentionDays, "retention-days", 0, "create, limits: delete log entries older than this (0: keep forever)")
	return cmd
}

// tenantJob enqueues uno tenant delete|export as a job.
func tenantJob(ctx context.Context, out io.Writer, args []string, dsn, dataDir, to string, jf *jobFlags) error {
	if args[0] != "delete" && args[0] != "export" {
		return fmt.Errorf("--job: tenant %s runs at once; only delete and export can be enqueued", args[0])
	}
	if len(args) != 2 || args[1] == "" {
		return fmt.Errorf("tenant %s needs the tenant ID", args[0])
	}
	id := args[1]
	var a jobs.Args = jobs.DeleteArgs{Tenant: id}
	if args[0] == "export" {
		switch {
		case to == "" && dataDir == "":
			return errors.New("export --job needs --to FILE: an absolute path on the node that runs the job")
		case to == "":
			dir, err := filepath.Abs(filepath.Join(dataDir, "exports"))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("export directory: %w", err)
			}
			to = filepath.Join(dir, id+".jsonl")
		case !filepath.IsAbs(to):
			return fmt.Errorf("--to %s: want an absolute path (the job runs in the uno serve process)", to)
		}
		a = jobs.ExportArgs{Tenant: id, Path: to}
	}
	j, err := openJobs(ctx, dsn, dataDir)
	if err != nil {
		return err
	}
	defer j.Close(ctx)
	return jf.enqueue(ctx, j, a, out)
}
