// Package browser holds uno's tests in a real browser: Debian's Chromium
// driven through playwright-core (wasm/test/browser.mjs) runs the example
// web app (examples/web on the uno client compiled to WebAssembly) against
// `uno serve` processes on loopback. The test command installs Chromium and
// the npm packages; without them these tests fail, saying what to install.
// Screenshots go to $UNO_ARTIFACTS (default: artifacts/ at the repository's
// root, which git ignores).
//
// # Deadlines
//
// No wait has a fixed deadline: on a busy machine (other tests, other
// users) a page can take 20 times longer to become usable than on a quiet
// one. The harness measures how slow this run is against figures taken on
// a quiet machine (2 cores):
//
//   - a CPU-bound calibration loop in Go (about 0.2 s of one core), run
//     when a test starts its browser;
//   - each launch of Chromium with a fresh profile;
//   - each page becoming usable (navigation, uno.wasm compiled and
//     started, the database opened).
//
// The slowdown is the largest of these ratios so far, at least 1;
// UNO_BROWSER_SLOWDOWN=F replaces it with F. A step that takes q on a
// quiet machine gets margin × slowdown × q (margin 4), at least 20 s (the
// client's own timers: reconnect backoff, dial timeout) and at most 15
// minutes, and it ends 30 s before go test's -timeout so that a failure
// reports the page's console. The first page's deadline comes from the
// calibration and the launch; later ones also from the pages measured.
// The driver gets every deadline with its command. The tests log what was
// measured and the deadlines derived from it, so a failure says how slow
// the machine was.
package browser
