package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/unosync/uno/server/pglog"
)

func migrateCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "migrate up|down [VERSION]|status",
		Short: "Migrate the Postgres schema (run as the tables' owner)",
		Long: `Moves the Postgres schema of the event log up to this uno's version, down
to VERSION (0 removes everything), or reports where it is. Each step runs in
its own transaction under an advisory lock. Run it as the role that owns
the tables; uno serve should connect as another role, which row-level
security then applies to.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dsn == "" {
				return errors.New("--postgres DSN is required")
			}
			ctx := cmd.Context()
			switch args[0] {
			case "up":
				if len(args) > 1 {
					return errors.New("migrate up takes no version: it goes to this uno's")
				}
				if err := pglog.Migrate(ctx, dsn, pglog.SchemaVersion); err != nil {
					return err
				}
			case "down":
				if len(args) != 2 {
					return errors.New("migrate down needs the VERSION to go down to (0 removes everything)")
				}
				v, err := strconv.Atoi(args[1])
				if err != nil {
					return fmt.Errorf("version %q: want a number", args[1])
				}
				if err := pglog.Migrate(ctx, dsn, v); err != nil {
					return err
				}
			case "status":
			default:
				return fmt.Errorf("unknown migrate command %q: want up, down or status", args[0])
			}
			have, want, err := pglog.SchemaStatus(ctx, dsn)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "postgres schema at version %d; this uno needs %d\n", have, want)
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "postgres", "", "the database's DSN, as its owner")
	return cmd
}
