// A Chromium driver for uno's browser tests: the Go tests
// (internal/browser) run it and send it one JSON command per line on
// stdin; it answers each with one JSON line on stdout, {"ok": true,
// "value": ...} or {"ok": false, "error": "..."}. It drives Debian's
// Chromium through playwright-core (never a downloaded browser), each
// profile a persistent context in its own directory, so a profile's
// IndexedDB survives closing and relaunching it.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const executablePath = process.env.UNO_CHROMIUM || '/usr/bin/chromium';
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Extra flags for measurements, e.g. UNO_CHROMIUM_ARGS=--js-flags=--no-liftoff.
  ...(process.env.UNO_CHROMIUM_ARGS ?? '').split(' ').filter(Boolean)];

const profiles = new Map(); // name → { context, page, logs }

function profile(name) {
  const p = profiles.get(name);
  if (!p) throw new Error(`no profile ${name}: launch it first`);
  return p;
}

function watchPage(p, page) {
  page.on('console', (m) => p.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => p.logs.push(`pageerror: ${e.message}`));
}

const commands = {
  async launch({ profile: name, dir }) {
    const context = await chromium.launchPersistentContext(dir, { executablePath, headless: true, args });
    const p = { context, page: context.pages()[0] ?? await context.newPage(), logs: [] };
    watchPage(p, p.page);
    profiles.set(name, p);
  },
  async goto({ profile: name, url, ready }) {
    const p = profile(name);
    await p.page.goto(url);
    if (ready) await p.page.waitForFunction(ready, null, { timeout: 30000 });
  },
  async newPage({ profile: name, url, ready }) {
    const p = profile(name);
    p.page = await p.context.newPage();
    watchPage(p, p.page);
    if (url) await p.page.goto(url);
    if (ready) await p.page.waitForFunction(ready, null, { timeout: 30000 });
  },
  // Makes the profile's index-th open page (tab) the one commands go to.
  async switchPage({ profile: name, index }) {
    const p = profile(name);
    p.page = p.context.pages()[index];
    await p.page.bringToFront();
  },
  async reload({ profile: name, ready }) {
    const p = profile(name);
    await p.page.reload();
    if (ready) await p.page.waitForFunction(ready, null, { timeout: 30000 });
  },
  // Crashes the tab's renderer, as a tab crash would.
  async crash({ profile: name }) {
    const p = profile(name);
    await p.page.goto('chrome://crash').catch(() => {});
    await p.page.close().catch(() => {});
  },
  async eval({ profile: name, js }) {
    return await profile(name).page.evaluate(js);
  },
  async waitFor({ profile: name, js, timeout }) {
    await profile(name).page.waitForFunction(js, null, { timeout: timeout ?? 30000 });
  },
  async screenshot({ profile: name, path }) {
    await profile(name).page.screenshot({ path, fullPage: true });
  },
  // Runs js under the CPU profiler and returns the functions with the most
  // self time (for investigations).
  async cpuProfile({ profile: name, js, top }) {
    const p = profile(name);
    const cdp = await p.context.newCDPSession(p.page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
    const value = await p.page.evaluate(js);
    const { profile: prof } = await cdp.send('Profiler.stop');
    const dt = {};
    const ids = new Map(prof.nodes.map((n) => [n.id, n]));
    const counts = {};
    for (const s of prof.samples) counts[s] = (counts[s] ?? 0) + 1;
    let total = 0;
    for (const [id, c] of Object.entries(counts)) {
      const n = ids.get(Number(id));
      const fn = n.callFrame.functionName || `(${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber})`;
      dt[fn] = (dt[fn] ?? 0) + c;
      total += c;
    }
    const rows = Object.entries(dt).sort((a, b) => b[1] - a[1]).slice(0, top ?? 40).map(([f, c]) => `${(100 * c / total).toFixed(1)}% ${f}`);
    return { value, rows };
  },
  async logs({ profile: name }) {
    return profile(name).logs;
  },
  // Drops a profile whose browser was killed from outside.
  async forget({ profile: name }) {
    const p = profiles.get(name);
    profiles.delete(name);
    p?.context.close().catch(() => {});
  },
  async close({ profile: name }) {
    const p = profiles.get(name);
    profiles.delete(name);
    await p?.context.close();
  },
  async quit() {
    for (const p of profiles.values()) await p.context.close().catch(() => {});
    process.exit(0);
  },
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  let out;
  try {
    const cmd = JSON.parse(line);
    const fn = commands[cmd.cmd];
    if (!fn) throw new Error(`unknown command ${cmd.cmd}`);
    const value = await fn(cmd);
    out = { ok: true, value: value === undefined ? null : value };
  } catch (e) {
    out = { ok: false, error: String(e?.stack ?? e) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
for (const p of profiles.values()) await p.context.close().catch(() => {});
