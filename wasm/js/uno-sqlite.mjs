// uno-sqlite.mjs: the SQLite engine of uno's browser client. SQLite is the
// official build (@sqlite.org/sqlite-wasm), compiled to WebAssembly by
// Emscripten and run by the browser's own engine; the Go client (package
// store/sqlitejs, in uno.wasm) drives it through the small API of Engine
// below, a few calls per statement, with arguments and rows passed as
// bytes.
//
// Files live in IndexedDB through the VFS "uno-idb" defined here. A file is
// held in memory while open, cut into CHUNK-byte chunks, one IndexedDB
// record each ("chunks": [name, index] → bytes; "files": name → {size,
// chunk}). SQLite's reads and writes are served from memory, synchronously.
// SQLite's xSync only marks the file pending: the statement that synced
// (a COMMIT) returns with the pending flag set, and the Go driver then
// calls flush(), which writes every dirty chunk and the size in ONE
// IndexedDB readwrite transaction (durability "strict") and resolves once
// it is complete. The Go driver returns from the commit only then. If the
// transaction fails, flush rejects and the file is marked broken: its
// connection must be closed, which drops the memory copy, and the next
// open reads IndexedDB again: as of the last complete flush, all of it and
// never part of one.
//
// Connections use journal_mode=MEMORY (IndexedDB sees nothing between two
// flushes, so an on-disk journal would add nothing); the VFS refuses to
// open journals and WAL files. Temporary files stay in memory.

export const CHUNK = 16 << 10; // a file written with another chunk size does not open
const FILES = 'files';
const CHUNKS = 'chunks';

// SQLite's constants used here.
const ROW = 100;
const DONE = 101;
const OK = 0;
const BUSY = 5;
const NOTFOUND = 12;
const FCNTL_PRAGMA = 14;
const CANTOPEN = 14;
const IOERR_SHORT_READ = 522;
const IOERR_WRITE = 778;
const IOERR_TRUNCATE = 1546;
const IOERR_LOCK = 3850;
const IOERR_DELETE_NOENT = 5898;
const OPEN_READONLY = 0x1;
const OPEN_READWRITE = 0x2;
const OPEN_CREATE = 0x4;
const OPEN_MAIN_DB = 0x100;
const OPEN_TEMP = 0x200 | 0x400 | 0x1000 | 0x2000; // TEMP_DB, TRANSIENT_DB, TEMP_JOURNAL, SUBJOURNAL
const OPEN_MEMORY = 0x80;
const LOCK_SHARED = 1;
const LOCK_RESERVED = 2;
const LOCK_PENDING = 3;
// SAFE_APPEND | SEQUENTIAL | POWERSAFE_OVERWRITE | SUBPAGE_READ: nothing
// reaches IndexedDB between two flushes, so writes are never torn.
const IOCAP = 0x200 | 0x400 | 0x1000 | 0x8000;
const TRANSIENT = -1;
const PREPARE_PERSISTENT = 1;
const REPREPARE = 5; // SQLITE_STMTSTATUS_REPREPARE

// Column tags of the row encoding (and argument tags: INT32 also).
const T_NULL = 0;
const T_INT32 = 1;
const T_INT64 = 2;
const T_FLOAT = 3;
const T_TEXT = 4;
const T_BLOB = 5;
// Terminators of fetch's output.
const END_MORE = 0xfd; // the buffer is full: fetch again
const END_DONE = 0xfe; // the statement is done
const END_ERROR = 0xff; // the statement failed: lastError, code follows (int32)

/**
 * createEngine opens (creating if needed) the IndexedDB database idbName,
 * registers the VFS and returns the Engine over sqlite3, the initialised
 * module of @sqlite.org/sqlite-wasm.
 */
export async function createEngine(sqlite3, idbName = 'uno', indexedDB = globalThis.indexedDB) {
  if (!indexedDB) throw new Error('uno-sqlite: no IndexedDB');
  const idb = await openIDB(indexedDB, idbName);
  return new Engine(sqlite3, idb);
}

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function complete(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(abortError(tx.error));
    tx.onerror = () => {}; // abort follows
  });
}

function abortError(e) {
  const err = new Error('uno-sqlite: IndexedDB transaction aborted' + (e ? `: ${e.name}: ${e.message}` : ''));
  err.aborted = true;
  return err;
}

function openIDB(indexedDB, name) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => {
    const db = r.result;
    for (const s of [FILES, CHUNKS]) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
  };
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new Error(`uno-sqlite: IndexedDB ${name} is blocked by another connection`));
  });
}

function chunkRange(name) {
  return IDBKeyRange.bound([name, 0], [name, Infinity]);
}

const chunkCount = (size) => Math.ceil(size / CHUNK);

// Data is a file's contents, shared by the connections that opened it.
class Data {
  constructor(name) {
    this.name = name;
    this.refs = 0;
    this.chunks = []; // Uint8Array(CHUNK) or null (zeros)
    this.size = 0;
    this.dirty = new Set(); // chunk indexes changed since the last flush
    this.stored = 0; // the size IndexedDB holds
    this.known = false; // IndexedDB has a record of the file
    this.broken = false; // a flush failed: memory is ahead of IndexedDB
    this.shared = 0;
    this.reserved = false;
    this.pending = false;
  }

  grow(size) {
    if (size <= this.size) return;
    const n = chunkCount(size);
    while (this.chunks.length < n) this.chunks.push(null);
    // Chunks that were in the file before a truncation may still be in
    // IndexedDB: they are dirty (to be deleted or rewritten).
    for (let i = chunkCount(this.size); i < n; i++) if (!this.chunks[i]) this.dirty.add(i);
    this.size = size;
  }

  read(dst, off) {
    let n = 0;
    while (n < dst.length && off + n < this.size) {
      const p = off + n;
      const m = Math.min(dst.length - n, this.size - p, CHUNK - (p % CHUNK));
      const c = this.chunks[Math.floor(p / CHUNK)];
      if (c) dst.set(c.subarray(p % CHUNK, (p % CHUNK) + m), n);
      else dst.fill(0, n, n + m);
      n += m;
    }
    return n;
  }

  write(src, off) {
    this.grow(off + src.length);
    for (let n = 0; n < src.length; ) {
      const p = off + n;
      const i = Math.floor(p / CHUNK);
      let c = this.chunks[i];
      if (!c) c = this.chunks[i] = new Uint8Array(CHUNK);
      const m = Math.min(src.length - n, CHUNK - (p % CHUNK));
      c.set(src.subarray(n, n + m), p % CHUNK);
      this.dirty.add(i);
      n += m;
    }
  }

  truncate(size) {
    if (size >= this.size) {
      this.grow(size);
      return;
    }
    const n = chunkCount(size);
    for (let i = n; i < this.chunks.length; i++) this.dirty.add(i); // deleted at the next flush
    this.chunks.length = n;
    const r = size % CHUNK;
    if (r !== 0 && this.chunks[n - 1]) {
      this.chunks[n - 1].fill(0, r);
      this.dirty.add(n - 1);
    }
    this.size = size;
  }

  needsFlush() {
    return this.dirty.size > 0 || !this.known || this.stored !== this.size;
  }
}

/**
 * Engine runs SQLite for the Go driver. Every method but open, flush and
 * remove is synchronous. Numbers it returns that may be negative are
 * -(SQLite's extended result code) on failure, with the message in
 * lastError. args and out are byte buffers the Go side writes arguments
 * into and reads rows from; they are replaced when grown.
 */
export class Engine {
  constructor(sqlite3, idb) {
    this.sqlite3 = sqlite3;
    this.idb = idb;
    this.x = sqlite3.wasm.exports;
    this.wasm = sqlite3.wasm;
    this.files = new Map(); // name → Data, open files
    this.handles = new Map(); // sqlite3_file pointer → {data, lock, reserved, readOnly}
    this.pending = new Set(); // Data synced by SQLite, not yet flushed
    this.lastError = '';
    this.commits = 0; // completed flushes
    this.beforeCommit = null; // tests: called with each flush's transaction
    this.args = new Uint8Array(4096);
    this.argsView = new DataView(this.args.buffer);
    this.out = new Uint8Array(64 << 10);
    this.outView = new DataView(this.out.buffer);
    this.scratchSize = 4096;
    this.scratch = this.x.sqlite3_malloc(this.scratchSize);
    this.ptr = this.x.sqlite3_malloc(16); // out-parameters
    this.enc = new TextEncoder();
    this.installVFS();
  }

  heap() {
    return this.wasm.heap8u();
  }

  // cstr copies s into SQLite's memory, NUL-terminated: free it.
  cstr(s) {
    const b = this.enc.encode(s);
    const p = this.x.sqlite3_malloc(b.length + 1);
    const h = this.heap();
    h.set(b, p);
    h[p + b.length] = 0;
    return [p, b.length];
  }

  fail(db, rc) {
    this.lastError = db ? this.sqlite3.capi.sqlite3_errmsg(db) : this.sqlite3.capi.sqlite3_errstr(rc);
    return -(db ? this.x.sqlite3_extended_errcode(db) || rc : rc);
  }

  // growArgs makes args hold at least n bytes.
  growArgs(n) {
    if (n <= this.args.length) return;
    this.args = new Uint8Array(Math.max(n, this.args.length * 2));
    this.argsView = new DataView(this.args.buffer);
  }

  growOut(n) {
    const b = new Uint8Array(Math.max(n + (n >> 1), this.out.length * 2));
    b.set(this.out);
    this.out = b;
    this.outView = new DataView(b.buffer);
  }

  /** open loads file name from IndexedDB and opens a connection to it: the
   * sqlite3* pointer, or a negative code. */
  async open(name) {
    let d = this.files.get(name);
    if (!d) {
      d = await this.load(name);
      if (this.files.has(name)) d = this.files.get(name); // opened meanwhile
      else this.files.set(name, d);
    }
    const [zName] = this.cstr(name);
    const zVfs = this.cstr('uno-idb')[0];
    d.refs++; // held across sqlite3_open_v2, which opens its own handle
    const rc = this.x.sqlite3_open_v2(zName, this.ptr, OPEN_READWRITE | OPEN_CREATE, zVfs);
    this.x.sqlite3_free(zName);
    this.x.sqlite3_free(zVfs);
    const db = this.wasm.peekPtr(this.ptr);
    this.release(d);
    if (rc !== OK) {
      const code = this.fail(db, rc);
      if (db) this.x.sqlite3_close_v2(db);
      return code;
    }
    return db;
  }

  async load(name) {
    const tx = this.idb.transaction([FILES, CHUNKS], 'readonly');
    const meta = request(tx.objectStore(FILES).get(name));
    const keys = request(tx.objectStore(CHUNKS).getAllKeys(chunkRange(name)));
    const values = request(tx.objectStore(CHUNKS).getAll(chunkRange(name)));
    await complete(tx);
    const d = new Data(name);
    const m = await meta;
    if (m === undefined) return d;
    if (m.chunk !== CHUNK) throw new Error(`uno-sqlite: cannot open ${name}: chunk size ${m.chunk}, want ${CHUNK}`);
    d.size = m.size;
    d.stored = m.size;
    d.known = true;
    d.chunks = new Array(chunkCount(d.size)).fill(null);
    const ks = await keys;
    const vs = await values;
    for (let i = 0; i < ks.length; i++) {
      const idx = ks[i][1];
      if (idx >= d.chunks.length) {
        d.dirty.add(idx); // beyond the end: deleted at the next flush
        continue;
      }
      const c = new Uint8Array(CHUNK);
      c.set(new Uint8Array(vs[i].buffer ?? vs[i], vs[i].byteOffset ?? 0, Math.min(CHUNK, vs[i].byteLength)));
      d.chunks[idx] = c;
    }
    return d;
  }

  release(d) {
    if (--d.refs === 0 && this.files.get(d.name) === d) this.files.delete(d.name);
  }

  /** close closes connection db (after every statement is finalized). */
  close(db) {
    const rc = this.x.sqlite3_close_v2(db);
    return rc === OK ? 0 : this.fail(0, rc);
  }

  /** exec runs sql (any number of statements, no arguments): the last
   * statement's changes×2, plus 1 if a flush is pending; or a negative
   * code. */
  exec(db, sql) {
    const [p] = this.cstr(sql);
    const rc = this.x.sqlite3_exec(db, p, 0, 0, 0);
    this.x.sqlite3_free(p);
    if (rc !== OK) return this.fail(db, rc);
    return this.x.sqlite3_changes(db) * 2 + (this.pending.size ? 1 : 0);
  }

  /** prepare compiles the first statement of sql: the sqlite3_stmt
   * pointer (0 for an empty statement) or a negative code; tail is the
   * byte offset of what follows it. */
  prepare(db, sql) {
    const [p, n] = this.cstr(sql);
    const rc = this.x.sqlite3_prepare_v3(db, p, n, PREPARE_PERSISTENT, this.ptr, this.ptr + 8);
    const st = this.wasm.peekPtr(this.ptr);
    this.tail = this.wasm.peekPtr(this.ptr + 8) - p;
    this.x.sqlite3_free(p);
    if (rc !== OK) return this.fail(db, rc);
    return st;
  }

  /** params is the number of parameters statement st takes. */
  params(st) {
    return this.x.sqlite3_bind_parameter_count(st);
  }

  /** columns is st's column names, each followed by a NUL. */
  columns(st) {
    const capi = this.sqlite3.capi;
    let s = '';
    for (let i = 0, n = this.x.sqlite3_column_count(st); i < n; i++) s += capi.sqlite3_column_name(st, i) + '\0';
    return s;
  }

  finalize(st) {
    this.x.sqlite3_finalize(st);
  }

  // bind binds the n bytes of args to st: OK or SQLite's code.
  bind(st, n) {
    const x = this.x;
    x.sqlite3_clear_bindings(st);
    if (n === 0) return OK;
    if (n > this.scratchSize) {
      x.sqlite3_free(this.scratch);
      this.scratchSize = Math.max(n, this.scratchSize * 2);
      this.scratch = x.sqlite3_malloc(this.scratchSize);
      if (!this.scratch) return 7; // NOMEM
    }
    const a = this.args;
    const v = this.argsView;
    const base = this.scratch;
    this.heap().set(a.subarray(0, n), base);
    let rc = OK;
    for (let off = 0, i = 1; off < n && rc === OK; i++) {
      switch (a[off++]) {
        case T_NULL:
          rc = x.sqlite3_bind_null(st, i);
          break;
        case T_INT32:
          rc = x.sqlite3_bind_int(st, i, v.getInt32(off, true));
          off += 4;
          break;
        case T_INT64:
          rc = x.sqlite3_bind_int64(st, i, v.getBigInt64(off, true));
          off += 8;
          break;
        case T_FLOAT:
          rc = x.sqlite3_bind_double(st, i, v.getFloat64(off, true));
          off += 8;
          break;
        case T_TEXT: {
          const len = v.getUint32(off, true);
          rc = x.sqlite3_bind_text(st, i, base + off + 4, len, TRANSIENT);
          off += 4 + len;
          break;
        }
        case T_BLOB: {
          const len = v.getUint32(off, true);
          rc = x.sqlite3_bind_blob(st, i, base + off + 4, len, TRANSIENT);
          off += 4 + len;
          break;
        }
        default:
          this.lastError = `uno-sqlite: bad argument tag ${a[off - 1]}`;
          return 1;
      }
    }
    return rc;
  }

  /** run binds n bytes of args to st and steps it to the end: changes×2,
   * plus 1 if a flush is pending; or a negative code. */
  run(st, n) {
    const x = this.x;
    let rc = this.bind(st, n);
    const db = x.sqlite3_db_handle(st);
    if (rc !== OK) {
      const code = this.lastError && rc === 1 ? -1 : this.fail(db, rc);
      x.sqlite3_reset(st);
      return code;
    }
    do rc = x.sqlite3_step(st);
    while (rc === ROW);
    if (rc !== DONE) {
      const code = this.fail(db, rc);
      x.sqlite3_reset(st);
      return code;
    }
    const changes = x.sqlite3_changes(db);
    x.sqlite3_reset(st);
    return changes * 2 + (this.pending.size ? 1 : 0);
  }

  /** lastRowid is connection db's last inserted rowid. */
  lastRowid(db) {
    return Number(this.x.sqlite3_last_insert_rowid(db));
  }

  /** query binds n bytes of args to st and fetches its first rows: the
   * bytes written to out, starting with an int32 (how many times SQLite
   * has prepared st again, after a schema change, when its columns may
   * have changed) and then as fetch writes them; or a negative code. */
  query(st, n) {
    const rc = this.bind(st, n);
    if (rc !== OK) {
      const code = this.lastError && rc === 1 ? -1 : this.fail(this.x.sqlite3_db_handle(st), rc);
      this.x.sqlite3_reset(st);
      return code;
    }
    return this.fetch(st, 4);
  }

  /** fetch steps st, encoding its rows into out, and returns the bytes
   * written. Each row is its columns, each a tag and a value; the output
   * ends with END_MORE (fetch again), END_DONE (then the statement is
   * reset; a byte follows: 1 if a flush is pending) or END_ERROR (an
   * int32 code follows; the statement is reset). */
  fetch(st, o = 0) {
    const x = this.x;
    let first = o > 0;
    for (;;) {
      if (o > this.out.length >> 1) {
        this.reserve(o, 1);
        this.out[o++] = END_MORE;
        return o;
      }
      const rc = x.sqlite3_step(st);
      if (first) {
        // SQLite prepares st again, if the schema changed, in its first step.
        this.outView.setInt32(0, x.sqlite3_stmt_status(st, REPREPARE, 0), true);
        first = false;
      }
      if (rc === DONE) {
        x.sqlite3_reset(st);
        this.reserve(o, 2);
        this.out[o++] = END_DONE;
        this.out[o++] = this.pending.size ? 1 : 0;
        return o;
      }
      if (rc !== ROW) {
        const code = this.fail(x.sqlite3_db_handle(st), rc);
        x.sqlite3_reset(st);
        this.reserve(o, 5);
        this.out[o++] = END_ERROR;
        this.outView.setInt32(o, code, true);
        return o + 4;
      }
      for (let c = 0, cols = x.sqlite3_column_count(st); c < cols; c++) o = this.column(st, c, o);
    }
  }

  reserve(o, n) {
    if (o + n > this.out.length) this.growOut(o + n);
  }

  column(st, c, o) {
    const x = this.x;
    switch (x.sqlite3_column_type(st, c)) {
      case 1: {
        this.reserve(o, 9);
        const v = x.sqlite3_column_int64(st, c);
        if (v >= -2147483648n && v <= 2147483647n) {
          this.out[o] = T_INT32;
          this.outView.setInt32(o + 1, Number(v), true);
          return o + 5;
        }
        this.out[o] = T_INT64;
        this.outView.setBigInt64(o + 1, v, true);
        return o + 9;
      }
      case 2:
        this.reserve(o, 9);
        this.out[o] = T_FLOAT;
        this.outView.setFloat64(o + 1, x.sqlite3_column_double(st, c), true);
        return o + 9;
      case 3:
      case 4: {
        const text = x.sqlite3_column_type(st, c) === 3;
        const p = text ? x.sqlite3_column_text(st, c) : x.sqlite3_column_blob(st, c);
        const n = x.sqlite3_column_bytes(st, c);
        this.reserve(o, 5 + n);
        this.out[o] = text ? T_TEXT : T_BLOB;
        this.outView.setUint32(o + 1, n, true);
        if (n) this.out.set(this.heap().subarray(p, p + n), o + 5);
        return o + 5 + n;
      }
      default:
        this.reserve(o, 1);
        this.out[o] = T_NULL;
        return o + 1;
    }
  }

  /** reset ends a query early: 1 if a flush is pending, else 0. */
  reset(st) {
    this.x.sqlite3_reset(st);
    return this.pending.size ? 1 : 0;
  }

  /** flush writes every file SQLite synced to IndexedDB in one
   * transaction; it resolves when the transaction is complete. If it
   * fails, the files are broken (see the file's comment). */
  async flush() {
    if (this.pending.size === 0) return;
    const files = [...this.pending];
    this.pending.clear();
    try {
      const tx = this.idb.transaction([FILES, CHUNKS], 'readwrite', { durability: 'strict' });
      const done = complete(tx);
      const chunks = tx.objectStore(CHUNKS);
      for (const d of files) {
        const n = chunkCount(d.size);
        for (const i of d.dirty) {
          if (i >= n || !d.chunks[i]) {
            chunks.delete([d.name, i]);
            continue;
          }
          const len = Math.min(CHUNK, d.size - i * CHUNK);
          chunks.put(d.chunks[i].slice(0, len), [d.name, i]);
        }
        tx.objectStore(FILES).put({ size: d.size, chunk: CHUNK }, d.name);
      }
      this.beforeCommit?.(tx);
      await done;
      for (const d of files) {
        d.dirty.clear();
        d.stored = d.size;
        d.known = true;
      }
      this.commits++;
    } catch (e) {
      for (const d of files) d.broken = true;
      throw e;
    }
  }

  /** remove deletes file name from IndexedDB: false if there was none.
   * An open file is not removed. */
  async remove(name) {
    if (this.files.has(name)) throw new Error(`uno-sqlite: cannot remove ${name}: open`);
    const tx = this.idb.transaction([FILES, CHUNKS], 'readwrite', { durability: 'strict' });
    const n = request(tx.objectStore(FILES).count(name));
    tx.objectStore(FILES).delete(name);
    tx.objectStore(CHUNKS).delete(chunkRange(name));
    await complete(tx);
    return (await n) > 0;
  }

  installVFS() {
    const { capi, wasm } = this.sqlite3;
    const engine = this;
    const handle = (pFile) => engine.handles.get(pFile);
    const io = new capi.sqlite3_io_methods();
    io.$iVersion = 1;
    const ioMethods = {
      xClose(pFile) {
        const f = handle(pFile);
        engine.handles.delete(pFile);
        if (f?.data && !f.temp) {
          unlock(f, 0);
          engine.release(f.data);
        }
        return OK;
      },
      xRead(pFile, pDest, n, off64) {
        const f = handle(pFile);
        const dst = engine.heap().subarray(pDest, pDest + n);
        const got = f.data.read(dst, Number(off64));
        if (got < n) {
          dst.fill(0, got);
          return IOERR_SHORT_READ;
        }
        return OK;
      },
      xWrite(pFile, pSrc, n, off64) {
        const f = handle(pFile);
        if (f.readOnly) return IOERR_WRITE;
        f.data.write(engine.heap().subarray(pSrc, pSrc + n), Number(off64));
        return OK;
      },
      xTruncate(pFile, sz64) {
        const f = handle(pFile);
        if (f.readOnly) return IOERR_TRUNCATE;
        f.data.truncate(Number(sz64));
        return OK;
      },
      xSync(pFile) {
        const f = handle(pFile);
        if (!f.temp && f.data.needsFlush()) engine.pending.add(f.data);
        return OK;
      },
      xFileSize(pFile, pSize) {
        wasm.poke64(pSize, BigInt(handle(pFile).data.size));
        return OK;
      },
      xLock(pFile, lock) {
        const f = handle(pFile);
        if (f.temp || f.lock >= lock) return OK;
        if (f.readOnly && lock >= LOCK_RESERVED) return IOERR_LOCK;
        const d = f.data;
        switch (lock) {
          case LOCK_SHARED:
            if (d.pending) return BUSY; // a writer waits for readers to leave
            d.shared++;
            break;
          case LOCK_RESERVED:
            if (d.reserved) return BUSY;
            d.reserved = f.reserved = true;
            break;
          default: // EXCLUSIVE
            if (f.lock < LOCK_PENDING) {
              if (d.pending) return BUSY;
              d.pending = true;
              f.lock = LOCK_PENDING;
            }
            if (d.shared > 1) return BUSY; // other readers: stay PENDING
        }
        f.lock = lock;
        return OK;
      },
      xUnlock(pFile, lock) {
        const f = handle(pFile);
        if (!f.temp) unlock(f, lock);
        return OK;
      },
      xCheckReservedLock(pFile, pOut) {
        const f = handle(pFile);
        wasm.poke32(pOut, f.reserved || f.data?.reserved ? 1 : 0);
        return OK;
      },
      // xFileControl refuses journal_mode=WAL, which SQLite would accept
      // in EXCLUSIVE locking mode and then fail to open the WAL file.
      xFileControl(pFile, op, pArg) {
        if (op !== FCNTL_PRAGMA) return NOTFOUND;
        const name = wasm.peekPtr(pArg + 4);
        const value = wasm.peekPtr(pArg + 8);
        if (!name || !value || wasm.cstrToJs(name).toLowerCase() !== 'journal_mode' || wasm.cstrToJs(value).toLowerCase() !== 'wal') return NOTFOUND;
        wasm.pokePtr(pArg, engine.cstr('uno-sqlite: journal_mode=WAL is not supported (use MEMORY)')[0]);
        return 1; // SQLITE_ERROR
      },
      xSectorSize() {
        return 4096;
      },
      xDeviceCharacteristics() {
        return IOCAP;
      },
    };
    function unlock(f, lock) {
      if (f.lock <= lock) return;
      const d = f.data;
      if (f.reserved && lock < LOCK_RESERVED) d.reserved = f.reserved = false;
      if (f.lock >= LOCK_PENDING) d.pending = false;
      if (lock < LOCK_SHARED) d.shared--;
      f.lock = lock;
    }

    const vfs = new capi.sqlite3_vfs();
    const pDefault = capi.sqlite3_vfs_find(null);
    const dflt = pDefault ? new capi.sqlite3_vfs(pDefault) : null;
    vfs.$iVersion = 2;
    vfs.$szOsFile = capi.sqlite3_file.structInfo.sizeof;
    vfs.$mxPathname = 1024;
    vfs.$xRandomness = dflt?.$xRandomness ?? 0;
    dflt?.dispose();
    const vfsMethods = {
      xOpen(pVfs, zName, pFile, flags, pOutFlags) {
        let f;
        if (flags & OPEN_MAIN_DB) {
          const name = wasm.cstrToJs(zName);
          const d = engine.files.get(name);
          if (!d) {
            engine.vfsError = `uno-sqlite: ${name} was not loaded (open it through Engine.open)`;
            return CANTOPEN;
          }
          if (d.broken) {
            engine.vfsError = `uno-sqlite: ${name} failed to save; close every connection to it`;
            return CANTOPEN;
          }
          if (!d.known && d.size === 0 && !(flags & OPEN_CREATE)) return CANTOPEN;
          d.refs++;
          f = { data: d, lock: 0, reserved: false, readOnly: !!(flags & OPEN_READONLY) };
        } else if (flags & OPEN_TEMP) {
          f = { data: new Data(''), lock: 0, reserved: false, readOnly: false, temp: true };
          flags |= OPEN_MEMORY;
        } else {
          engine.vfsError = `uno-sqlite: ${zName ? wasm.cstrToJs(zName) : 'a file'}: journals and WAL files are not kept (use journal_mode=MEMORY)`;
          return CANTOPEN;
        }
        engine.handles.set(pFile, f);
        const sf = new capi.sqlite3_file(pFile);
        sf.$pMethods = io.pointer;
        sf.dispose();
        if (pOutFlags) wasm.poke32(pOutFlags, flags);
        return OK;
      },
      xDelete(pVfs, zName) {
        // Journals are never kept; a database is removed with Engine.remove.
        return engine.files.has(wasm.cstrToJs(zName)) ? IOERR_DELETE_NOENT : OK;
      },
      xAccess(pVfs, zName, flags, pOut) {
        wasm.poke32(pOut, engine.files.has(wasm.cstrToJs(zName)) ? 1 : 0);
        return OK;
      },
      xFullPathname(pVfs, zName, nOut, pOut) {
        return wasm.cstrncpy(pOut, zName, nOut) < nOut ? OK : CANTOPEN;
      },
      xSleep() {
        return 0; // one thread: waiting cannot free a lock
      },
      xCurrentTime(pVfs, pOut) {
        wasm.poke(pOut, 2440587.5 + Date.now() / 864e5, 'double');
        return OK;
      },
      xCurrentTimeInt64(pVfs, pOut) {
        wasm.poke(pOut, 210866760000000 + Date.now(), 'i64');
        return OK;
      },
      xGetLastError(pVfs, nOut, pOut) {
        const msg = engine.vfsError ?? '';
        engine.vfsError = undefined;
        if (pOut && nOut > 0) {
          const b = engine.enc.encode(msg).subarray(0, nOut - 1);
          const h = engine.heap();
          h.set(b, pOut);
          h[pOut + b.length] = 0;
        }
        return msg ? CANTOPEN : OK;
      },
    };
    if (!vfs.$xRandomness) {
      vfsMethods.xRandomness = (pVfs, n, pOut) => {
        const h = engine.heap();
        crypto.getRandomValues(h.subarray(pOut, pOut + n));
        return n;
      };
    }
    this.sqlite3.vfs.installVfs({ io: { struct: io, methods: ioMethods }, vfs: { struct: vfs, methods: vfsMethods, name: 'uno-idb' } });
  }
}
