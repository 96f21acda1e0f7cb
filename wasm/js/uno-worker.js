// uno-worker.js: the dedicated Web Worker in which uno.js runs the uno
// client. open() in uno.js starts it (one per page) as a module worker
// beside uno.js; it loads wasm_exec.js and uno.wasm here with uno.js's
// load, installs the Automerge loader here (useAutomerge: doc fields load
// @automerge/automerge inside the worker, from automerge/ beside uno.js
// unless the page gave automergeURL), and relays the page's messages to
// the Go client (globalThis.__uno). The protocol is described in uno.js
// ("The worker"); this file only relays, the page makes every argument.
import { load, useAutomerge } from './uno.js';

let go = null; // globalThis.__uno once loaded
const listeners = new Map(); // the page's listener id → the client's
const asks = new Map(); // a → {resolve, reject}
let nextAsk = 0;

// ask sends the page a question (a token, or an edits function's result)
// and returns a Promise of its answer: the Go client waits on it.
function ask(m) {
  const a = ++nextAsk;
  return new Promise((resolve, reject) => {
    asks.set(a, { resolve, reject });
    postMessage({ t: 'ask', a, ...m });
  });
}

// failure makes a thrown value cloneable: the client's errors are objects
// with a code and a message already.
function failure(e) {
  return { code: e?.code ?? 2099, message: String(e?.message ?? e) };
}

function request(m) {
  const [id, a1, a2, a3, a4] = m.args;
  switch (m.fn) {
    case 'open': return go.open(id, a1 ? () => ask({ k: 'token', q: m.q }) : undefined);
    case 'call': return go.call(id, a1, a2);
    case 'editDocWith': return go.editDocWith(id, a1, a2, a3, (doc) => ask({ k: 'edits', c: a4, doc }));
  }
  return Promise.reject({ code: 2011, message: `uno worker: unknown request ${m.fn}` });
}

self.onmessage = async ({ data: m }) => {
  switch (m.t) {
    case 'req':
      request(m).then((v) => postMessage({ t: 'res', q: m.q, v }), (e) => postMessage({ t: 'res', q: m.q, e: failure(e) }));
      return;
    case 'listen':
      listeners.set(m.w, go[m.fn](...m.args, (...a) => postMessage({ t: 'cb', w: m.w, a })));
      return;
    case 'stop':
      go.stop(listeners.get(m.w) ?? -1);
      listeners.delete(m.w);
      return;
    case 'answer': {
      const r = asks.get(m.a);
      asks.delete(m.a);
      if ('e' in m) r?.reject(m.e); else r?.resolve(m.v);
      return;
    }
    case 'init':
      try {
        if (m.automergeURL !== undefined) useAutomerge(m.automergeURL);
        go = await load(m.wasmURL);
        postMessage({ t: 'ready' });
      } catch (e) {
        postMessage({ t: 'failed', e: failure(e) });
      }
  }
};
