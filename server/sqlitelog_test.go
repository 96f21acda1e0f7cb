package server_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/unosync/uno/server"
	"github.com/unosync/uno/server/logtest"
)

func openLog(t *testing.T) *server.SQLiteLog {
	t.Helper()
	l, err := server.OpenSQLiteLog(context.Background(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSQLiteLog(t *testing.T) {
	logtest.Run(t, func(t *testing.T) server.Log { return openLog(t) })
}
