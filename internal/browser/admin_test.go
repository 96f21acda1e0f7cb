package browser

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An operator opens the dashboard in Chromium: the login page refuses a
// tenant's token and takes the admin token; the live view then shows the
// web app's session and writes as they happen; compaction started from
// the page runs as a job the page lists; the page never shows row data.
func TestBrowser_AdminDashboard(t *testing.T) {
	addr, data := freeAddr(t), t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	const token = "operators-only-token-0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, addr, data, "--admin-token-file", tokenFile)
	b := newBrowser(t)
	b.launch("app", filepath.Join(t.TempDir(), "app"))
	b.open("app", srv.url("todos"))
	b.waitFor("app", upToDate)
	b.addTodo("app", "write the runbook")

	b.launch("ops", filepath.Join(t.TempDir(), "ops"))
	login := func(tok string) {
		js, _ := json.Marshal(tok)
		b.page(map[string]any{"cmd": "goto", "profile": "ops", "url": fmt.Sprintf("http://%s/admin/", addr),
			"ready": `document.getElementById('token') !== null`})
		b.eval("ops", fmt.Sprintf(`(() => {
			document.getElementById('token').value = %s;
			document.querySelector('form').requestSubmit();
		})()`, js), nil)
	}
	login(srv.token) // a tenant's token: refused
	b.waitFor("ops", `location.search.includes('failed') && !document.getElementById('failed').hidden`)
	b.screenshot("ops", "admin-1-login-refused.png")

	login(token)
	b.waitFor("ops", `document.getElementById('status').textContent === 'live'`)
	// The app's session and its tenant, with the write appended.
	b.waitFor("ops", `document.querySelectorAll('#live tbody tr').length === 1 &&
		document.querySelector('#tenants tbody tr[data-tenant="dev"]') !== null`)
	b.addTodo("app", "check the dashboard")
	b.waitFor("ops", `Number(document.querySelector('#tenants tbody tr[data-tenant="dev"] td:nth-child(3)').textContent) >= 2`)
	b.screenshot("ops", "admin-2-dashboard.png")

	// Compaction from the page runs as a job, listed with its state.
	b.eval("ops", `document.querySelector('#tenants tbody tr[data-tenant="dev"] button[data-path$="/compact"]').click()`, nil)
	b.waitFor("ops", `[...document.querySelectorAll('#jobs tbody tr')].some(tr =>
		tr.children[1].textContent === 'uno_compact' && tr.children[2].textContent.includes('dev') && tr.children[3].textContent === 'completed')`)
	b.screenshot("ops", "admin-3-jobs.png")
	// A finished job can be run again from the page; an unknown one is
	// refused with a code.
	b.eval("ops", `[...document.querySelectorAll('#jobs tbody tr')].find(tr => tr.children[1].textContent === 'uno_compact').querySelector('button').click()`, nil)
	b.waitFor("ops", `document.getElementById('result').textContent.startsWith('Retry: {"job":')`)
	var refused struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	b.eval("ops", `fetch('/admin/api/jobs/999999/cancel', {method: 'POST', headers: {'X-Uno-Admin': '1'}})
		.then(async r => ({status: r.status, code: (await r.json()).code}))`, &refused)
	if refused.Status != 404 || refused.Code != "unknown_job" {
		t.Fatalf("cancel of an unknown job: %+v, want 404 unknown_job", refused)
	}

	var body string
	b.eval("ops", `document.body.innerText`, &body)
	for _, leak := range []string{"write the runbook", "check the dashboard"} {
		if strings.Contains(body, leak) {
			t.Fatalf("the dashboard shows row data %q", leak)
		}
	}
}
