// uno: the offline-first sync engine's client for browsers. The uno client
// (Go, compiled to WebAssembly) keeps a SQLite database in IndexedDB, so
// every read and write works offline and survives reloads; with a server
// it syncs in the background over a WebSocket. See uno.d.ts for the types.
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
 * Loads the WebAssembly client once. wasmURL defaults to uno.wasm beside
 * this module; wasm_exec.js (Go's loader) must be loaded first or sit
 * beside this module as wasm_exec.js. automergeURL is useAutomerge's
 * baseURL, used unless globalThis.__unoLoadAutomerge is already set.
 */
export function load(wasmURL = new URL('./uno.wasm', import.meta.url), automergeURL = undefined) {
  if (loading) return loading;
  if (typeof globalThis.__unoLoadAutomerge !== 'function') useAutomerge(automergeURL);
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

/**
 * Opens (creating if needed) the database `name`. One tab at a time owns a
 * database: in another tab open fails with code `locked`.
 */
export async function open(options) {
  const bridge = await load(options.wasmURL, options.automergeURL);
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
