// uno: the offline-first sync engine's client for browsers. The uno client
// (Go, compiled to WebAssembly) keeps a SQLite database in IndexedDB, so
// every read and write works offline and survives reloads; with a server
// it syncs in the background over a WebSocket. See uno.d.ts for the types.
// The client runs in a dedicated Web Worker (uno-worker.js beside this
// module), so the page's thread stays free while it works; see "The
// worker" below.
//
//   import { open } from './uno.js';
//   const db = await open({ name: 'todos', server: 'ws://localhost:8080/v1/sync', token });
//   await db.collection('todos').put('t1', { title: 'Buy milk', done: false });
//   db.collection('todos').watch({ orderBy: 'title' }, (rows) => render(rows));
//
// Doc fields (Automerge documents: collaborative text, nested maps and
// lists, counters) are edited, never written whole:
//
//   const notes = db.collection('notes');
//   await notes.editDoc('n1', 'body', [{ splice: { path: ['text'], pos: 0, del: 0, text: 'Hello' } }]);
//   notes.watchDoc('n1', 'body', ({ doc, paths }) => render(doc.text));

/** Error codes of errors that are not protocol errors (those are 1000–1999). */
export const codes = Object.freeze({
  invalidName: 2001, invalidID: 2002, invalidValue: 2003, tooLarge: 2004,
  unknownCollection: 2005, unknownField: 2006, kindMismatch: 2007, notFound: 2008,
  closed: 2009, locked: 2010, badArgument: 2011, noServer: 2012, docPath: 2013, docUnavailable: 2014,
  notSaved: 2015,
  internal: 2099,
  // Protocol codes a web app meets most.
  unauthorized: 1100, tokenExpired: 1101, forbidden: 1102, malformedTx: 1201, invalidTx: 1203, quotaExceeded: 1205,
  rowTooLarge: 1206, shuttingDown: 1402,
});

/** An Error with the numeric code of what went wrong. */
export class UnoError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'UnoError';
    this.code = code;
  }
}

function wrap(e) {
  if (e instanceof Error) return e;
  return new UnoError(e?.code ?? codes.internal, e?.message ?? String(e));
}

let loading = null;

/**
 * Makes doc fields (Automerge documents) loadable: installs
 * globalThis.__unoLoadAutomerge, which the client calls the first time a
 * doc field is used, so an app without doc fields never downloads
 * Automerge. baseURL is the directory of the Automerge files build.sh
 * copies (automerge/ beside this module by default): the ES modules of
 * @automerge/automerge and automerge.wasm. load calls it unless the page
 * has set globalThis.__unoLoadAutomerge itself: an app that bundles
 * @automerge/automerge 3.x can set it to () => import('@automerge/automerge').
 */
export function useAutomerge(baseURL = new URL('./automerge/', import.meta.url)) {
  const base = new URL(baseURL, import.meta.url);
  let loaded = null;
  globalThis.__unoLoadAutomerge = () => {
    loaded ??= (async () => {
      const am = await import(new URL('entrypoints/slim.js', base).href);
      if (!am.isWasmInitialized()) await am.initializeWasm(new URL('automerge.wasm', base).href);
      return am;
    })().catch((e) => {
      loaded = null; // a later use tries again
      throw e;
    });
    return loaded;
  };
}

/**
 * Starts loading SQLite, once per thread: the official WebAssembly build
 * (sqlite3/index.mjs and sqlite3.wasm beside this module, copied by
 * build.sh from @sqlite.org/sqlite-wasm) with uno-sqlite.mjs, the engine
 * and IndexedDB VFS uno.wasm drives. It installs
 * globalThis.__unoLoadSQLite, which uno.wasm calls when it opens its first
 * database; load calls it, so SQLite downloads beside uno.wasm.
 */
export function useSQLite() {
  if (typeof globalThis.__unoLoadSQLite === 'function') return;
  const loaded = (async () => {
    const [{ default: init }, { createEngine }] = await Promise.all([
      import(new URL('./sqlite3/index.mjs', import.meta.url).href),
      import(new URL('./uno-sqlite.mjs', import.meta.url).href),
    ]);
    return createEngine(await init({ print: () => {}, printErr: (...a) => console.warn(...a) }));
  })();
  loaded.catch(() => {}); // reported to uno.wasm when it asks
  globalThis.__unoLoadSQLite = () => loaded;
}

/**
 * Loads the WebAssembly client once on this thread: what open({worker:
 * false}) uses, and what uno-worker.js runs in the worker. wasmURL
 * defaults to uno.wasm beside this module; wasm_exec.js (Go's loader) must
 * be loaded first or sit beside this module as wasm_exec.js. automergeURL
 * is useAutomerge's baseURL, used unless globalThis.__unoLoadAutomerge is
 * already set.
 */
export function load(wasmURL = new URL('./uno.wasm', import.meta.url), automergeURL = undefined) {
  if (loading) return loading;
  if (typeof globalThis.__unoLoadAutomerge !== 'function') useAutomerge(automergeURL);
  useSQLite();
  loading = (async () => {
    if (typeof globalThis.Go !== 'function') {
      await import(new URL('./wasm_exec.js', import.meta.url).href);
    }
    const go = new globalThis.Go();
    const resp = fetch(wasmURL);
    const { instance } = await WebAssembly.instantiateStreaming(resp, go.importObject);
    go.run(instance); // runs until the page goes away
    for (let i = 0; !globalThis.__uno; i++) {
      if (i > 1000) throw new UnoError(codes.internal, 'uno.wasm did not start');
      await new Promise((r) => setTimeout(r, 5));
    }
    return globalThis.__uno;
  })();
  return loading;
}

// The worker.
//
// open() starts one dedicated module Worker per page (uno-worker.js, which
// imports this module and calls load there) and every database of the page
// lives in it. The classes below talk to a bridge with the same methods
// whether the client runs in the worker (RemoteBridge) or on this thread
// (Go's globalThis.__uno itself, open({worker: false})):
//
//   open(optionsJSON, tokenFn?) → Promise<id JSON>
//   call(id, method, argsJSON) → Promise<result JSON>
//   watch(id, collection, queryJSON, cb) → listener id   (cb(json) or cb(null, message, code))
//   watchDoc(id, collection, rowID, field, cb) → listener id
//   onStatus(id, cb) → listener id
//   editDocWith(id, collection, rowID, field, fn) → Promise  (fn(docJSON) → editsJSON | null)
//   stop(listener id)
//
// Arguments are JSON text made on this thread, as the client has always
// received them (so toJSON methods, dropped functions and the TypeError of
// a BigInt behave as before); a 1,000-row transaction is ~1 ms of
// JSON.stringify here, the rest of the work is the worker's. Messages:
//
//   page → worker  {t: 'init', wasmURL, automergeURL}
//                  {t: 'req', q, fn: 'open'|'call'|'editDocWith', args}
//                  {t: 'listen', w, fn: 'watch'|'watchDoc'|'onStatus', args}
//                  {t: 'stop', w}
//                  {t: 'answer', a, v} | {t: 'answer', a, e}
//   worker → page  {t: 'ready'} | {t: 'failed', e}
//                  {t: 'res', q, v} | {t: 'res', q, e: {code, message}}
//                  {t: 'cb', w, a: [callback arguments]}
//                  {t: 'ask', a, k: 'token', q} | {t: 'ask', a, k: 'edits', c, doc}
//
// q numbers requests, w listeners (numbered here, so watch returns its stop
// function at once), a the worker's questions. Two things the client needs
// from the page are functions that cannot cross to the worker: a token
// function (asked at each connection: one round trip) and editDoc's edits
// function, which runs inside the transaction: the worker's transaction
// waits (holding the database's write lock) while the page runs the
// function on the document and answers with its edits — one round trip per
// call, and the function still sees the document exactly as its edits will
// change it. Transactions (transaction().put(...).commit()) need no such
// trip: their writes are queued here and go in one request.

let workerLoading = null;

// workerBridge starts the page's worker once; it rejects if the worker
// cannot start (no Worker, a blocked script, uno.wasm failing in it).
function workerBridge(options) {
  workerLoading ??= (async () => {
    if (typeof Worker !== 'function') throw new UnoError(codes.internal, 'Web Workers are not available here');
    const w = new Worker(new URL('./uno-worker.js', import.meta.url), { type: 'module', name: 'uno' });
    const b = new RemoteBridge(w);
    try {
      await b.init({
        wasmURL: new URL(options.wasmURL ?? './uno.wasm', options.wasmURL ? globalThis.document?.baseURI ?? import.meta.url : import.meta.url).href,
        automergeURL: options.automergeURL === undefined ? undefined : new URL(options.automergeURL, import.meta.url).href,
      });
    } catch (e) {
      w.terminate();
      throw e;
    }
    return b;
  })().catch((e) => {
    workerLoading = null; // a later open tries again
    throw e instanceof UnoError ? e : new UnoError(codes.internal, `uno worker: ${e?.message ?? e}`);
  });
  return workerLoading;
}

// RemoteBridge is the bridge of a client running in a worker.
class RemoteBridge {
  constructor(w) {
    this._w = w;
    this._n = 0;
    this._reqs = new Map(); // q → {resolve, reject}
    this._cbs = new Map(); // w → callback
    this._tokens = new Map(); // q of open → token function
    this._tokenOf = new Map(); // database id → q of its open
    this._edits = new Map(); // c → edits function
    this._ready = null;
    w.onmessage = (ev) => this._on(ev.data);
    w.onerror = (ev) => {
      // Before it is ready the worker failed to start; later an error
      // escaped its script (the client's own errors answer requests).
      if (this._ready) this._fail(new UnoError(codes.internal, `uno worker: ${ev.message ?? 'failed to load'}`));
      else console.error(`uno worker: ${ev.message}`);
    };
    w.onmessageerror = () => this._fail(new UnoError(codes.internal, 'uno worker: a message could not be decoded'));
  }

  init(urls) {
    return new Promise((resolve, reject) => {
      this._ready = { resolve, reject };
      this._w.postMessage({ t: 'init', ...urls });
    });
  }

  // _fail rejects what waits: the worker is gone (or never started).
  _fail(err) {
    this._ready?.reject(err);
    this._ready = null;
    for (const r of this._reqs.values()) r.reject(err);
    this._reqs.clear();
  }

  _on(m) {
    switch (m.t) {
      case 'cb': this._cbs.get(m.w)?.(...m.a); return;
      case 'res': {
        const r = this._reqs.get(m.q);
        this._reqs.delete(m.q);
        if ('e' in m) r?.reject(m.e); else r?.resolve(m.v);
        return;
      }
      case 'ask': this._answer(m); return;
      case 'ready': this._ready?.resolve(); this._ready = null; return;
      case 'failed': this._fail(wrap(m.e)); return;
    }
  }

  async _answer(m) {
    try {
      let v;
      if (m.k === 'token') v = String(await this._tokens.get(m.q)());
      else v = this._edits.get(m.c)(m.doc);
      this._w.postMessage({ t: 'answer', a: m.a, v });
    } catch (e) {
      this._w.postMessage({ t: 'answer', a: m.a, e: String(e?.message ?? e) });
    }
  }

  _req(fn, args, q = ++this._n) {
    return new Promise((resolve, reject) => {
      this._reqs.set(q, { resolve, reject });
      this._w.postMessage({ t: 'req', q, fn, args });
    });
  }

  _listen(fn, args, cb) {
    const w = ++this._n;
    this._cbs.set(w, cb);
    this._w.postMessage({ t: 'listen', w, fn, args });
    return w;
  }

  open(opts, token) {
    const q = ++this._n;
    if (!token) return this._req('open', [opts, false], q);
    this._tokens.set(q, token);
    return this._req('open', [opts, true], q).then((id) => {
      this._tokenOf.set(JSON.parse(id), q);
      return id;
    }, (e) => {
      this._tokens.delete(q);
      throw e;
    });
  }
  call(id, method, args) {
    const p = this._req('call', [id, method, args]);
    if (method === 'close') p.finally(() => this._tokens.delete(this._tokenOf.get(id))).catch(() => {});
    return p;
  }
  editDocWith(id, collection, rowID, field, fn) {
    const c = ++this._n;
    this._edits.set(c, fn);
    return this._req('editDocWith', [id, collection, rowID, field, c]).finally(() => this._edits.delete(c));
  }
  watch(id, collection, query, cb) { return this._listen('watch', [id, collection, query], cb); }
  watchDoc(id, collection, rowID, field, cb) { return this._listen('watchDoc', [id, collection, rowID, field], cb); }
  onStatus(id, cb) { return this._listen('onStatus', [id], cb); }
  stop(w) {
    this._cbs.delete(w);
    this._w.postMessage({ t: 'stop', w });
  }
}

/**
 * Opens (creating if needed) the database `name`. One tab at a time owns a
 * database: in another tab open fails with code `locked`. The client runs
 * in a Web Worker unless options.worker is false; when the worker cannot
 * start it runs on the page's thread (with a warning on the console)
 * unless options.worker is true.
 */
export async function open(options) {
  let bridge;
  if (options.worker === false || (options.worker === undefined && typeof Worker !== 'function')) {
    bridge = await load(options.wasmURL, options.automergeURL);
  } else {
    try {
      bridge = await workerBridge(options);
    } catch (e) {
      if (options.worker === true) throw wrap(e);
      console.warn(`uno: running on the page's thread: the worker did not start (${e?.message ?? e})`);
      bridge = await load(options.wasmURL, options.automergeURL);
    }
  }
  const name = options.name;
  if (!name) throw new UnoError(codes.badArgument, 'open: options.name is required');
  let release = null;
  if (globalThis.navigator?.locks) {
    // Hold the database's Web Lock until close: a second tab cannot get it.
    const held = await new Promise((resolve) => {
      navigator.locks.request('uno:' + name, { ifAvailable: true }, (lock) => {
        if (!lock) { resolve(false); return undefined; }
        resolve(true);
        return new Promise((r) => { release = r; });
      });
    });
    if (!held) throw new UnoError(codes.locked, `database ${name} is open in another tab: use it there, or close that tab`);
  }
  const opts = {
    name, server: options.server ?? '', token: typeof options.token === 'string' ? options.token : '',
    subscriptions: options.subscriptions ?? [], where: options.where ?? {},
    manualSync: !!options.manualSync, heartbeatMs: options.heartbeatMs ?? 0, backoffMaxMs: options.backoffMaxMs ?? 0,
  };
  let id;
  try {
    id = JSON.parse(await bridge.open(JSON.stringify(opts), typeof options.token === 'function' ? options.token : undefined));
  } catch (e) {
    release?.();
    throw wrap(e);
  }
  return new Database(bridge, id, release);
}

class Database {
  constructor(bridge, id, release) {
    this._b = bridge;
    this._id = id;
    this._release = release;
    this._stops = new Set();
  }

  async _call(method, ...args) {
    try {
      const out = await this._b.call(this._id, method, JSON.stringify(args));
      return out === undefined ? undefined : JSON.parse(out);
    } catch (e) {
      throw wrap(e);
    }
  }

  /** The collection `name`. */
  collection(name) { return new Collection(this, name); }

  /** Starts a transaction: queue writes on it, then commit() applies them atomically. */
  transaction() { return new Transaction(this); }

  /** Waits until every local write is acknowledged and remote ones are in. */
  sync() { return this._call('sync'); }
  /** Local transactions no server has acknowledged yet. */
  pending() { return this._call('pending'); }
  /** The sync status now. */
  status() { return this._call('status'); }
  /** The replica's canonical state hash (hex): equal on replicas with the same state. */
  hash() { return this._call('hash'); }
  /** Conflicts resolved so far, after position `after`. */
  conflicts(after = 0, limit = 100) { return this._call('conflicts', after, limit); }
  /** Local transactions the server refused (rolled back), after position `after`. */
  rejections(after = 0, limit = 100) { return this._call('rejections', after, limit); }

  /** Calls cb with the sync status now and at each change; returns a function that stops it. */
  onStatus(cb) {
    const lid = this._b.onStatus(this._id, (s) => cb(JSON.parse(s)));
    const stop = () => { this._b.stop(lid); this._stops.delete(stop); };
    this._stops.add(stop);
    return stop;
  }

  /** Closes the database (and releases it for other tabs). */
  async close() {
    for (const stop of [...this._stops]) stop();
    try {
      await this._call('close');
    } finally {
      this._release?.();
    }
  }
}

// docPath accepts a key for a one-key path.
function docPath(path) {
  if (path === undefined || path === null) return [];
  return typeof path === 'string' ? [path] : path;
}

// docEdit lists the members each kind of doc edit needs besides its path.
const docEdit = { splice: ['pos', 'del', 'text'], put: ['value'], insert: ['index', 'value'], delete: [], increment: ['delta'] };

// docEdits checks the shape of doc edits and normalises their paths.
function docEdits(edits) {
  if (!Array.isArray(edits)) throw new UnoError(codes.badArgument, 'editDoc: edits must be an array of {splice|put|insert|delete|increment: {...}}');
  return edits.map((e, i) => {
    const kinds = Object.keys(e ?? {});
    if (kinds.length !== 1 || !(kinds[0] in docEdit)) {
      throw new UnoError(codes.badArgument, `editDoc: edit ${i + 1} has keys ${JSON.stringify(kinds)}: want one of splice, put, insert, delete or increment`);
    }
    const op = { ...e[kinds[0]], path: docPath(e[kinds[0]]?.path) };
    for (const k of docEdit[kinds[0]]) {
      if (op[k] === undefined) throw new UnoError(codes.badArgument, `editDoc: edit ${i + 1} (${kinds[0]}) has no ${k}${k === 'value' ? ' (null stores null)' : ''}`);
    }
    return { [kinds[0]]: op };
  });
}

function row(d) {
  const out = { ...d.fields, id: d.id };
  if (d.siblings) out._siblings = d.siblings;
  return out;
}

function normQuery(q = {}) {
  const where = (q.where ?? []).map((w) => Array.isArray(w) ? { field: w[0], op: w[1], value: w[2] } : w);
  return { where, orderBy: q.orderBy ?? '', desc: !!q.desc, limit: q.limit ?? 0 };
}

class Collection {
  constructor(db, name) {
    this.db = db;
    this.name = name;
  }

  _write(op) { return this.db._call('tx', [{ collection: this.name, ...op }]); }

  /** Replaces the row's fields with doc's (creating it if needed). */
  put(id, doc) { return this._write({ op: 'put', id, doc }); }
  /** Sets the given fields of an existing row. */
  patch(id, fields) { return this._write({ op: 'patch', id, doc: fields }); }
  /** Deletes the row. */
  delete(id) { return this._write({ op: 'delete', id }); }
  /** Adds delta to a counter field. */
  increment(id, field, delta = 1) { return this._write({ op: 'increment', id, field, delta }); }
  /** Adds a member to a set field. */
  add(id, field, member) { return this._write({ op: 'add', id, field, member }); }
  /** Removes a member from a set field. */
  remove(id, field, member) { return this._write({ op: 'remove', id, field, member }); }

  /**
   * Applies edits to the doc field `field` of the row (creating the row if
   * needed), in order, in one transaction: all or none. Each edit is one
   * of {splice: {path, pos, del, text}}, {put: {path, value}},
   * {insert: {path, index, value}}, {delete: {path}},
   * {increment: {path, delta}}; see uno.d.ts. edits may also be a
   * function of the document (as JSON) returning the edits: it runs inside
   * the transaction, so no change merged from elsewhere comes between what
   * it read and its edits.
   */
  async editDoc(id, field, edits) {
    if (typeof edits !== 'function') return this._write({ op: 'doc', id, field, edits: docEdits(edits) });
    // The function runs inside the transaction, on the document as the
    // edits will change it; what it throws is rethrown here.
    let thrown = null;
    const fn = (doc) => {
      thrown = null;
      try {
        return JSON.stringify(docEdits(edits(JSON.parse(doc)) ?? []));
      } catch (e) {
        thrown = { e };
        return null;
      }
    };
    try {
      await this.db._b.editDocWith(this.db._id, this.name, id, field, fn);
    } catch (e) {
      if (thrown) throw thrown.e;
      throw wrap(e);
    }
  }
  /** Deletes del characters at pos of the text at path, and inserts text there. */
  splice(id, field, path, pos, del, text) { return this.editDoc(id, field, [{ splice: { path, pos, del, text } }]); }
  /** The value at path (default: the whole document) of a doc field, as JSON (null where nothing is). */
  readDoc(id, field, path) { return this.db._call('readDoc', this.name, id, field, docPath(path)); }
  /** The text at path of a doc field ('' where nothing is). */
  text(id, field, path) { return this.db._call('text', this.name, id, field, docPath(path)); }

  /**
   * Calls cb with the doc field's document ({doc, paths}: the document as
   * JSON, null while the row does not exist, and the paths that changed
   * since the last call, [] the first time) now and after each change,
   * local or from the server; returns a function that stops it.
   */
  watchDoc(id, field, cb, onError) {
    const b = this.db._b;
    const wid = b.watchDoc(this.db._id, this.name, id, field, (update, err, code) => {
      if (update === null) { onError?.(new UnoError(code, err)); return; }
      cb(JSON.parse(update));
    });
    const stop = () => { b.stop(wid); this.db._stops.delete(stop); };
    this.db._stops.add(stop);
    return stop;
  }

  /** The row, or an error with code notFound. */
  async get(id) { return row(await this.db._call('get', this.name, id)); }
  /** The rows matching the query. */
  async find(query) { return (await this.db._call('find', this.name, normQuery(query))).map(row); }

  /**
   * Calls cb with the query's result now and after each change (local or
   * from the server); returns a function that stops it.
   */
  watch(query, cb, onError) {
    const b = this.db._b;
    const wid = b.watch(this.db._id, this.name, JSON.stringify(normQuery(query)), (rows, err, code) => {
      if (rows === null) { onError?.(new UnoError(code, err)); return; }
      cb(JSON.parse(rows).map(row));
    });
    const stop = () => { b.stop(wid); this.db._stops.delete(stop); };
    this.db._stops.add(stop);
    return stop;
  }
}

class Transaction {
  constructor(db) {
    this.db = db;
    this.ops = [];
  }
  put(collection, id, doc) { this.ops.push({ op: 'put', collection, id, doc }); return this; }
  patch(collection, id, fields) { this.ops.push({ op: 'patch', collection, id, doc: fields }); return this; }
  delete(collection, id) { this.ops.push({ op: 'delete', collection, id }); return this; }
  increment(collection, id, field, delta = 1) { this.ops.push({ op: 'increment', collection, id, field, delta }); return this; }
  add(collection, id, field, member) { this.ops.push({ op: 'add', collection, id, field, member }); return this; }
  remove(collection, id, field, member) { this.ops.push({ op: 'remove', collection, id, field, member }); return this; }
  /** Queues edits of a doc field (see Collection.editDoc). */
  editDoc(collection, id, field, edits) { this.ops.push({ op: 'doc', collection, id, field, edits: docEdits(edits) }); return this; }
  /** Applies every queued write in one atomic local transaction. */
  commit() { return this.db._call('tx', this.ops); }
}
