//go:build unix

package cli

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
)

// A FIFO in the directory is not a regular file: 404, at once (opening
// it would block until a writer came).
func TestWeb_FIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.js"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	wb, err := newWeb(http.NotFoundHandler(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	rec := httptest.NewRecorder()
	wb.ServeHTTP(rec, httptest.NewRequest("GET", "/pipe.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("FIFO: status %d, want 404", rec.Code)
	}
}
