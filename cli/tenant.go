package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server"
)

func tenantCmd() *cobra.Command {
	var dsn string
	var opsPerSec int
	cmd := &cobra.Command{
		Use:   "tenant create ID|list|suspend ID|resume ID|delete ID|export ID",
		Short: "Administer the tenant registry in Postgres",
		Long: `Creates, lists, suspends, resumes, deletes (with all their data) and exports
(the log as JSON lines) tenants in the Postgres registry that uno serve
--registry enforces: unregistered and suspended tenants are refused, and
--ops-per-sec caps a tenant's pushed transactions per second per node.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dsn == "" {
				return errors.New("--postgres DSN is required")
			}
			ctx := cmd.Context()
			reg, err := server.OpenPGRegistry(ctx, dsn)
			if err != nil {
				return err
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
				if err := reg.Create(ctx, server.Tenant{ID: id, OpsPerSec: opsPerSec}); err != nil {
					return err
				}
				fmt.Fprintf(out, "created tenant %s\n", id)
			case "list":
				ts, err := reg.List(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TENANT\tSTATUS\tOPS/S\tCREATED")
				for _, t := range ts {
					status := "active"
					if t.Suspended {
						status = "suspended"
					}
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", t.ID, status, t.OpsPerSec, t.CreatedAt.Format("2006-01-02 15:04"))
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
				return fmt.Errorf("unknown tenant command %q: want create, list, suspend, resume, delete or export", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "postgres", "", "the database's DSN (as the tables' owner for delete and export)")
	cmd.Flags().IntVar(&opsPerSec, "ops-per-sec", 0, "create: cap on pushed transactions per second per node (0: none)")
	return cmd
}
