// Package browser holds uno's tests in a real browser: Debian's Chromium
// driven through playwright-core (wasm/test/browser.mjs) runs the example
// web app (examples/web on the uno client compiled to WebAssembly) against
// `uno serve` processes on loopback. The test command installs Chromium and
// the npm packages; without them these tests fail, saying what to install.
// Screenshots go to $UNO_ARTIFACTS (default: artifacts/ at the repository's
// root, which git ignores).
package browser
