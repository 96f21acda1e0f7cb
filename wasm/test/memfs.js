// An in-memory file system for Go programs built with GOOS=js that run in
// a browser page (wasm_exec.js leaves file calls unimplemented there): Go
// test binaries make temporary directories and files. Load it before
// wasm_exec.js. Standard output and error go to the console and to
// globalThis.goOutput (an array of lines).
(() => {
  const enc = new TextEncoder();
  const dec = new TextDecoder('utf-8');
  const err = (code) => { const e = new Error(code); e.code = code; return e; };
  const S_IFDIR = 0o040000, S_IFREG = 0o100000;
  let ino = 1;
  const nodes = new Map(); // path → {dir, mode, data, mtime, ino}
  const mk = (dir, mode) => ({ dir, mode, data: new Uint8Array(0), size: 0, mtime: Date.now(), ino: ino++ });
  nodes.set('/', mk(true, 0o777));
  nodes.set('/tmp', mk(true, 0o777));
  const norm = (p) => {
    const out = [];
    for (const part of p.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') out.pop(); else out.push(part);
    }
    return '/' + out.join('/');
  };
  const parent = (p) => norm(p + '/..');
  const fds = new Map();
  let nextFD = 100;
  const out = { 1: '', 2: '' };
  globalThis.goOutput = [];
  const stat = (n) => ({
    dev: 1, ino: n.ino, mode: (n.dir ? S_IFDIR : S_IFREG) | n.mode, nlink: 1, uid: 0, gid: 0, rdev: 0,
    size: n.dir ? 0 : n.size, blksize: 4096, blocks: Math.ceil(n.size / 512),
    atimeMs: n.mtime, mtimeMs: n.mtime, ctimeMs: n.mtime, isDirectory: () => n.dir,
  });
  const C = { O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 64, O_EXCL: 128, O_TRUNC: 512, O_APPEND: 1024, O_DIRECTORY: 65536 };
  const grow = (n, size) => {
    if (size > n.data.length) {
      const d = new Uint8Array(Math.max(size, n.data.length * 2));
      d.set(n.data.subarray(0, n.size));
      n.data = d;
    }
  };
  const console_ = (fd, buf) => {
    out[fd] += dec.decode(buf);
    let nl;
    while ((nl = out[fd].indexOf('\n')) !== -1) {
      const line = out[fd].slice(0, nl);
      out[fd] = out[fd].slice(nl + 1);
      globalThis.goOutput.push(line);
      console.log(line);
    }
    return buf.length;
  };
  globalThis.fs = {
    constants: C,
    writeSync(fd, buf) { return console_(fd, buf); },
    write(fd, buf, offset, length, position, cb) {
      if (fd === 1 || fd === 2) { cb(null, console_(fd, buf.subarray(offset, offset + length))); return; }
      const f = fds.get(fd);
      if (!f) { cb(err('EBADF')); return; }
      const n = f.node;
      let pos = position ?? (f.append ? n.size : f.pos);
      grow(n, pos + length);
      n.data.set(buf.subarray(offset, offset + length), pos);
      n.size = Math.max(n.size, pos + length);
      n.mtime = Date.now();
      if (position === null || position === undefined) f.pos = pos + length;
      cb(null, length);
    },
    read(fd, buf, offset, length, position, cb) {
      const f = fds.get(fd);
      if (!f) { cb(err('EBADF')); return; }
      const n = f.node;
      const pos = position ?? f.pos;
      const k = Math.max(0, Math.min(length, n.size - pos));
      buf.set(n.data.subarray(pos, pos + k), offset);
      if (position === null || position === undefined) f.pos = pos + k;
      cb(null, k);
    },
    open(path, flags, mode, cb) {
      path = norm(path);
      let n = nodes.get(path);
      if (n && (flags & C.O_CREAT) && (flags & C.O_EXCL)) { cb(err('EEXIST')); return; }
      if (!n) {
        if (!(flags & C.O_CREAT)) { cb(err('ENOENT')); return; }
        const p = nodes.get(parent(path));
        if (!p || !p.dir) { cb(err('ENOENT')); return; }
        n = mk(false, mode & 0o777);
        nodes.set(path, n);
      }
      if (n.dir && (flags & 3) !== 0) { cb(err('EISDIR')); return; }
      if (flags & C.O_TRUNC) n.size = 0;
      const fd = nextFD++;
      fds.set(fd, { node: n, path, pos: 0, append: !!(flags & C.O_APPEND) });
      cb(null, fd);
    },
    close(fd, cb) { fds.delete(fd); cb(null); },
    fstat(fd, cb) { const f = fds.get(fd); f ? cb(null, stat(f.node)) : cb(err('EBADF')); },
    stat(path, cb) { const n = nodes.get(norm(path)); n ? cb(null, stat(n)) : cb(err('ENOENT')); },
    lstat(path, cb) { this.stat(path, cb); },
    fsync(fd, cb) { cb(null); },
    ftruncate(fd, length, cb) { const f = fds.get(fd); if (!f) { cb(err('EBADF')); return; } grow(f.node, length); f.node.size = length; cb(null); },
    truncate(path, length, cb) { const n = nodes.get(norm(path)); if (!n) { cb(err('ENOENT')); return; } grow(n, length); n.size = length; cb(null); },
    mkdir(path, perm, cb) {
      path = norm(path);
      if (nodes.has(path)) { cb(err('EEXIST')); return; }
      const p = nodes.get(parent(path));
      if (!p || !p.dir) { cb(err('ENOENT')); return; }
      nodes.set(path, mk(true, perm & 0o777));
      cb(null);
    },
    readdir(path, cb) {
      path = norm(path);
      const n = nodes.get(path);
      if (!n) { cb(err('ENOENT')); return; }
      if (!n.dir) { cb(err('ENOTDIR')); return; }
      const prefix = path === '/' ? '/' : path + '/';
      const names = [];
      for (const k of nodes.keys()) if (k !== path && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')) names.push(k.slice(prefix.length));
      cb(null, names);
    },
    rmdir(path, cb) {
      path = norm(path);
      const n = nodes.get(path);
      if (!n) { cb(err('ENOENT')); return; }
      if (!n.dir) { cb(err('ENOTDIR')); return; }
      for (const k of nodes.keys()) if (k.startsWith(path + '/')) { cb(err('ENOTEMPTY')); return; }
      nodes.delete(path);
      cb(null);
    },
    unlink(path, cb) {
      path = norm(path);
      const n = nodes.get(path);
      if (!n) { cb(err('ENOENT')); return; }
      if (n.dir) { cb(err('EISDIR')); return; }
      nodes.delete(path);
      cb(null);
    },
    rename(from, to, cb) {
      from = norm(from); to = norm(to);
      const n = nodes.get(from);
      if (!n) { cb(err('ENOENT')); return; }
      nodes.delete(from);
      nodes.set(to, n);
      cb(null);
    },
    chmod(path, mode, cb) { const n = nodes.get(norm(path)); if (n) n.mode = mode & 0o777; cb(n ? null : err('ENOENT')); },
    fchmod(fd, mode, cb) { cb(null); },
    chown(path, uid, gid, cb) { cb(null); },
    fchown(fd, uid, gid, cb) { cb(null); },
    lchown(path, uid, gid, cb) { cb(null); },
    utimes(path, atime, mtime, cb) { cb(null); },
    link(path, link, cb) { cb(err('ENOSYS')); },
    symlink(path, link, cb) { cb(err('ENOSYS')); },
    readlink(path, cb) { cb(err('EINVAL')); },
  };
  globalThis.process = {
    getuid: () => -1, getgid: () => -1, geteuid: () => -1, getegid: () => -1,
    getgroups: () => [], pid: 1, ppid: 0, umask: () => 0o22, cwd: () => '/', chdir: () => {},
  };
  globalThis.path = { resolve: (...ps) => norm(ps.reduce((a, p) => (p.startsWith('/') ? p : a + '/' + p), '/')) };
})();
