// Types of uno.js, the uno client for browsers.

/** Numeric error codes: protocol codes are 1000–1999, client codes 2000–2099. */
export declare const codes: Readonly<{
  invalidName: 2001; invalidID: 2002; invalidValue: 2003; tooLarge: 2004;
  unknownCollection: 2005; unknownField: 2006; kindMismatch: 2007; notFound: 2008;
  closed: 2009; locked: 2010; badArgument: 2011; noServer: 2012;
  /** A doc path leads nowhere the edit can go: a key of a non-map, an index beyond a list, a splice of something that is not text, a position beyond the text. */
  docPath: 2013;
  /** @automerge/automerge could not be loaded (see useAutomerge), so doc fields cannot be read or edited now. */
  docUnavailable: 2014;
  /** The browser did not keep a write: IndexedDB refused its transaction (storage full, or the site's data was cleared). Nothing of the write is stored; retry it once there is room. */
  notSaved: 2015;
  internal: 2099;
  unauthorized: 1100; tokenExpired: 1101; forbidden: 1102; malformedTx: 1201; invalidTx: 1203; quotaExceeded: 1205;
  rowTooLarge: 1206; shuttingDown: 1402;
}>;

/** Every rejected Promise of this module rejects with an UnoError. */
export declare class UnoError extends Error {
  readonly code: number;
  constructor(code: number, message: string);
}

export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

export interface OpenOptions {
  /** The database's name (one IndexedDB-backed SQLite database per name). */
  name: string;
  /** The sync endpoint, e.g. "ws://localhost:8080/v1/sync". Without it the database stays local. */
  server?: string;
  /** The token, or a function returning a fresh one (called at each connection and before expiry). */
  token?: string | (() => string | Promise<string>);
  /** Collections to receive from the server (default: all the token allows). */
  subscriptions?: string[];
  /** Field filters of subscribed collections, e.g. { todos: { list: "home" } }. */
  where?: Record<string, Record<string, JSONValue>>;
  /** Sync only when sync() is called. */
  manualSync?: boolean;
  /** Interval of heartbeats on an idle connection (default 15000). */
  heartbeatMs?: number;
  /** The longest wait between reconnection attempts (default 30000; attempts back off exponentially with jitter). */
  backoffMaxMs?: number;
  /** Where uno.wasm is (default: beside uno.js; a relative URL is relative to the page). */
  wasmURL?: string | URL;
  /**
   * The directory of the Automerge files (default: automerge/ beside
   * uno.js), downloaded the first time a doc field is used. See useAutomerge.
   */
  automergeURL?: string | URL;
  /**
   * Where the client runs. Unset (the default): in a dedicated Web Worker
   * (uno-worker.js beside uno.js), so the page's thread stays free, or on
   * the page's thread, with a warning on the console, if the worker cannot
   * start. true: in the worker, or open rejects. false: on the page's
   * thread. In the worker, Automerge is loaded there: a loader the page set
   * as globalThis.__unoLoadAutomerge is not used (give automergeURL).
   */
  worker?: boolean;
}

/** A row: its id and its fields' values; multi-value fields' concurrent values in _siblings. */
export type Row = { id: string; _siblings?: Record<string, JSONValue[]> } & Record<string, JSONValue>;

export type Condition = [field: string, op: "=" | "!=" | "<" | "<=" | ">" | ">=", value: JSONValue]
  | { field: string; op: "=" | "!=" | "<" | "<=" | ">" | ">="; value: JSONValue };

export interface Query {
  where?: Condition[];
  /** A field, or "id" (the default order). */
  orderBy?: string;
  desc?: boolean;
  /** 0: no limit. */
  limit?: number;
}

export interface Status {
  state: "offline" | "connecting" | "syncing" | "upToDate";
  /** Local transactions the server has not acknowledged. */
  pending: number;
  /** When the database was last up to date (Unix ms). */
  lastSync?: number;
  /** Why the last connection ended, and its code. */
  error?: string;
  errorCode?: number;
  bootstrap: { Rows: number; TotalRows: number; Done: boolean };
}

/**
 * A place in a doc field's document: map keys (strings) and list indexes
 * (integers from 0) from the root map, as ["items", 0, "title"]; a string
 * is a one-key path ("text" is ["text"]); [] is the root.
 */
export type DocPath = string | (string | number)[];

/**
 * One edit of a doc field. Text positions (pos, del) count UTF-16 code
 * units, as JavaScript strings do ("😀".length is 2; a native Go client
 * counts Unicode code points): take them from string indexes, and never
 * split a surrogate pair.
 */
export type DocEdit =
  /** Deletes del characters at pos of the text at path and inserts text there; a missing value becomes an empty text first. Concurrent splices elsewhere merge character by character. */
  | { splice: { path: DocPath; pos: number; del: number; text: string } }
  /** Sets the value at path, creating missing maps on the way. Strings are stored whole, not as collaborative text (use splice); an index one past the end of a list appends. */
  | { put: { path: DocPath; value: JSONValue } }
  /** Inserts value into the list at path before index. */
  | { insert: { path: DocPath; index: number; value: JSONValue } }
  /** Removes the map key or list element at path. */
  | { delete: { path: DocPath } }
  /** Adds delta to the counter at path, creating it at 0; concurrent increments add up. */
  | { increment: { path: DocPath; delta: number } };

/** A doc field's document after a change. */
export interface DocUpdate {
  /** The document as JSON (text as strings); null while the row does not exist. */
  doc: { [key: string]: JSONValue } | null;
  /** The paths the change touched (the leaves, or the smallest lists and texts, whose values differ from the last update); [] in the first update. */
  paths: (string | number)[][];
}

export interface Rejection { ID: number; Seq: number; Code: number; Reason: string }

export interface Collection {
  readonly name: string;
  put(id: string, doc: Record<string, JSONValue>): Promise<void>;
  patch(id: string, fields: Record<string, JSONValue>): Promise<void>;
  delete(id: string): Promise<void>;
  increment(id: string, field: string, delta?: number): Promise<void>;
  add(id: string, field: string, member: JSONValue): Promise<void>;
  remove(id: string, field: string, member: JSONValue): Promise<void>;
  /** Rejects with code notFound when there is no such row. */
  get(id: string): Promise<Row>;
  find(query?: Query): Promise<Row[]>;
  /** Calls cb with the result now and after each change; returns a function that stops it. */
  watch(query: Query | undefined, cb: (rows: Row[]) => void, onError?: (err: UnoError) => void): () => void;

  /*
   * Doc fields: Automerge documents (collaborative text, nested maps and
   * lists, counters) that are edited, never written whole; rows show them
   * as JSON. The first use downloads @automerge/automerge (see
   * useAutomerge); if it cannot be loaded these reject with code
   * docUnavailable. A field that holds another kind rejects with
   * kindMismatch, a bad path (or position) with docPath, a value that is
   * not JSON with invalidValue, a malformed edit with badArgument.
   */
  /**
   * Applies the edits to the doc field, in order, in one transaction (all
   * or none), creating the row if needed. edits may be a function instead:
   * it receives the document as JSON ({} for a new one) inside the
   * transaction and returns the edits (or nothing), so no change merged
   * from elsewhere comes between what it read and what it edits (as Go's
   * Collection.EditDoc). It must not be async; what it throws, editDoc
   * rejects with.
   */
  editDoc(id: string, field: string, edits: DocEdit[] | ((doc: { [key: string]: JSONValue }) => DocEdit[] | void)): Promise<void>;
  /** editDoc with one splice: deletes del UTF-16 code units at pos of the text at path and inserts text there. */
  splice(id: string, field: string, path: DocPath, pos: number, del: number, text: string): Promise<void>;
  /** The value at path (default: the whole document, an object) as JSON; null where nothing is. */
  readDoc(id: string, field: string, path?: DocPath): Promise<JSONValue>;
  /** The text (or string) at path; "" where nothing is. */
  text(id: string, field: string, path: DocPath): Promise<string>;
  /**
   * Calls cb with the document now and after each committed change (local
   * or from the server); updates a slow callback has not taken are
   * coalesced, never lost. Returns a function that stops it.
   */
  watchDoc(id: string, field: string, cb: (update: DocUpdate) => void, onError?: (err: UnoError) => void): () => void;
}

export interface Transaction {
  put(collection: string, id: string, doc: Record<string, JSONValue>): Transaction;
  patch(collection: string, id: string, fields: Record<string, JSONValue>): Transaction;
  delete(collection: string, id: string): Transaction;
  increment(collection: string, id: string, field: string, delta?: number): Transaction;
  add(collection: string, id: string, field: string, member: JSONValue): Transaction;
  remove(collection: string, id: string, field: string, member: JSONValue): Transaction;
  /** Queues edits of a doc field (see Collection.editDoc); they commit with the transaction's other writes. */
  editDoc(collection: string, id: string, field: string, edits: DocEdit[]): Transaction;
  /** Applies the queued writes in one atomic local transaction. */
  commit(): Promise<void>;
}

export interface Database {
  collection(name: string): Collection;
  transaction(): Transaction;
  sync(): Promise<void>;
  pending(): Promise<number>;
  status(): Promise<Status>;
  /** The replica's canonical state hash (hex). */
  hash(): Promise<string>;
  conflicts(after?: number, limit?: number): Promise<unknown[]>;
  rejections(after?: number, limit?: number): Promise<Rejection[]>;
  onStatus(cb: (s: Status) => void): () => void;
  close(): Promise<void>;
}

/**
 * Installs globalThis.__unoLoadAutomerge, the loader of @automerge/automerge
 * the client calls the first time a doc field is used; baseURL is the
 * directory of the Automerge files build.sh copies (default: automerge/
 * beside uno.js). load calls it unless the page set the loader itself.
 */
export declare function useAutomerge(baseURL?: string | URL): void;
/**
 * Starts loading SQLite on this thread (sqlite3/ and uno-sqlite.mjs beside
 * uno.js, as build.sh lays them out) and installs
 * globalThis.__unoLoadSQLite, which uno.wasm calls to open its databases.
 * load calls it; it does nothing if the loader is already set.
 */
export declare function useSQLite(): void;
/**
 * Loads uno.wasm (once) on this thread: open calls it with {worker: false},
 * and the worker (uno-worker.js) calls it. automergeURL: see useAutomerge.
 */
export declare function load(wasmURL?: string | URL, automergeURL?: string | URL): Promise<unknown>;
/** Opens the database; rejects with code locked when another tab has it open. */
export declare function open(options: OpenOptions): Promise<Database>;
