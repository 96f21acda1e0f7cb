// A Chromium driver for uno's browser tests: the Go tests
// (internal/browser) run it and send it one JSON command per line on
// stdin; it answers each with one JSON line on stdout, {"ok": true,
// "value": ...} or {"ok": false, "error": "..."}. It drives Debian's
// Chromium through playwright-core (never a downloaded browser), each
// profile a persistent context in its own directory, so a profile's
// IndexedDB survives closing and relaunching it. Every command carries
// its deadline in ms ("timeout"), which the Go harness derives from what
// the run measured (a loaded machine gets longer ones); the driver has no
// deadline of its own.
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

// ms is a command's deadline: it must have one.
function ms(timeout) {
  if (!(timeout > 0)) throw new Error('the command has no timeout (ms): the Go harness sends one with every command');
  return timeout;
}

// within rejects if promise has not settled after timeout ms.
function within(promise, timeout, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${timeout} ms`)), timeout);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function watchPage(p, page) {
  page.on('console', (m) => p.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => p.logs.push(`pageerror: ${e.message}`));
}

const commands = {
  async launch({ profile: name, dir, timeout }) {
    // bypassCSP: waitFor and eval run the test's expressions from
    // strings, which a page's Content-Security-Policy (the admin
    // dashboard's: script-src 'self') would refuse; the pages' own
    // scripts need no such allowance.
    const context = await chromium.launchPersistentContext(dir, { executablePath, headless: true, args, bypassCSP: true, timeout: ms(timeout) });
    const p = { context, page: context.pages()[0] ?? await context.newPage(), logs: [], requests: [] };
    context.on('request', (r) => p.requests.push(r.url())); // the pages' and their workers'
    watchPage(p, p.page);
    profiles.set(name, p);
  },
  // Loads url, then waits until ready is true; timeout bounds both.
  async goto({ profile: name, url, ready, timeout }) {
    const p = profile(name);
    const end = Date.now() + ms(timeout);
    await p.page.goto(url, { timeout });
    if (ready) await p.page.waitForFunction(ready, null, { timeout: Math.max(1, end - Date.now()) });
  },
  async newPage({ profile: name, url, ready, timeout }) {
    const p = profile(name);
    const end = Date.now() + ms(timeout);
    p.page = await within(p.context.newPage(), timeout, 'newPage');
    watchPage(p, p.page);
    if (url) await p.page.goto(url, { timeout: Math.max(1, end - Date.now()) });
    if (ready) await p.page.waitForFunction(ready, null, { timeout: Math.max(1, end - Date.now()) });
  },
  // Makes the profile's index-th open page (tab) the one commands go to.
  async switchPage({ profile: name, index, timeout }) {
    const p = profile(name);
    p.page = p.context.pages()[index];
    await within(p.page.bringToFront(), ms(timeout), 'switchPage');
  },
  async reload({ profile: name, ready, timeout }) {
    const p = profile(name);
    const end = Date.now() + ms(timeout);
    await p.page.reload({ timeout });
    if (ready) await p.page.waitForFunction(ready, null, { timeout: Math.max(1, end - Date.now()) });
  },
  // Crashes the tab's renderer, as a tab crash would.
  async crash({ profile: name, timeout }) {
    const p = profile(name);
    await p.page.goto('chrome://crash', { timeout: ms(timeout) }).catch(() => {});
    await within(p.page.close(), timeout, 'close the crashed page').catch(() => {});
  },
  async eval({ profile: name, js, timeout }) {
    return await within(profile(name).page.evaluate(js), ms(timeout), 'eval');
  },
  async waitFor({ profile: name, js, timeout }) {
    await profile(name).page.waitForFunction(js, null, { timeout: ms(timeout) });
  },
  async screenshot({ profile: name, path, timeout }) {
    await profile(name).page.screenshot({ path, fullPage: true, timeout: ms(timeout) });
  },
  // Runs js under the CPU profiler and returns the functions with the most
  // self time and, for the functions whose names contain one of the strings
  // inclusive lists, their inclusive time (for investigations).
  async cpuProfile({ profile: name, js, top, inclusive }) {
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
    if (!inclusive) return { value, rows };
    // Inclusive time: the share of samples with the function anywhere on
    // the stack, for the functions whose names contain one of inclusive.
    const parent = new Map();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const incl = {};
    for (const [id, c] of Object.entries(counts)) {
      const seen = new Set();
      for (let n = Number(id); n !== undefined; n = parent.get(n)) {
        const f = ids.get(n).callFrame.functionName;
        if (f && !seen.has(f) && inclusive.some((s) => f.includes(s))) { seen.add(f); incl[f] = (incl[f] ?? 0) + c; }
      }
    }
    const inclRows = Object.entries(incl).sort((a, b) => b[1] - a[1]).slice(0, top ?? 40).map(([f, c]) => `${(100 * c / total).toFixed(1)}% ${f}`);
    return { value, rows, inclusive: inclRows };
  },
  // The URLs the profile's pages and their workers requested so far.
  async requests({ profile: name }) {
    return profile(name).requests;
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
