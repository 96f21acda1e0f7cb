package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/unosync/uno/cli"
)

func main() {
	// uno serve drains on either; the other commands stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], cli.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "uno:", err)
		os.Exit(1)
	}
}
