package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/unosync/uno/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], cli.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "uno:", err)
		os.Exit(1)
	}
}
