// The JavaScript end of the Automerge interop test (crdt/interop_test.go):
// automerge-go (native) and @automerge/automerge (this package's pinned
// version) must read each other's documents and changes. The Go test
// writes files to DIR and runs this script twice:
//
//   node automerge-interop.mjs DIR edit
//     reads go.save and go.changes (a document and its changes, made in
//     Go), checks them against go.json, then edits as actor js.actor:
//     text, a counter, a list, a scalar string, a new text and a mark on
//     text. Writes js.save (the whole document), js.changes (its changes
//     after Go's), js.json (its JSON, as uno's Document.JSON writes it),
//     js.heads and js.marks.
//   node automerge-interop.mjs DIR marks
//     reads go2.save (Go's save of js.save) and checks the marks survived.
//   node automerge-interop.mjs DIR alltypes
//     writes alltypes.bin, a document holding every Automerge datatype
//     through the low-level API (crdt/testdata/automerge-alltypes.bin,
//     which both Go bindings must show as the same JSON, is its output).
//
// It exits non-zero with a message on the first mismatch.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as A from '@automerge/automerge';

const [dir, phase] = process.argv.slice(2);
if (!dir || !['edit', 'marks', 'alltypes'].includes(phase)) {
  console.error('usage: node automerge-interop.mjs DIR edit|marks|alltypes');
  process.exit(2);
}
const read = (name) => new Uint8Array(readFileSync(join(dir, name)));
const write = (name, data) => writeFileSync(join(dir, name), data);

function fail(msg) {
  console.error('automerge-interop: ' + msg);
  process.exit(1);
}

// plain returns v as uno's Document.JSON shows it: text and scalar
// strings as strings, counters as numbers, map keys sorted.
function plain(v) {
  if (v instanceof A.Counter) return v.value;
  if (A.isImmutableString(v)) return v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, plain(v[k])]));
  }
  return v;
}

const json = (doc) => JSON.stringify(plain(doc));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

if (phase === 'edit') {
  const want = JSON.stringify(JSON.parse(readFileSync(join(dir, 'go.json'), 'utf8')));
  const actor = readFileSync(join(dir, 'js.actor'), 'utf8').trim();

  // Go's saved document, and Go's changes loaded one by one.
  let doc = A.load(read('go.save'), { actor });
  if (json(doc) !== want) fail(`go.save reads ${json(doc)}, want ${want}`);
  const fromChanges = A.loadIncremental(A.init(), read('go.changes'));
  if (json(fromChanges) !== want) fail(`go.changes read ${json(fromChanges)}, want ${want}`);
  if (!same(A.getHeads(fromChanges), A.getHeads(doc))) fail('go.changes and go.save have different heads');
  const goHeads = A.getHeads(doc);
  if (!A.isImmutableString(doc.title)) fail(`title is a ${typeof doc.title}, want a scalar string (ImmutableString)`);
  if (typeof doc.body !== 'string') fail('body is not text');
  if (!(doc.likes instanceof A.Counter)) fail('likes is not a counter');

  // JavaScript's edits: two changes.
  doc = A.change(doc, (d) => {
    A.splice(d, ['body'], 0, 0, '>> ');
    d.likes.increment(3);
    d.meta.tags.push('js');
    d.meta.owner.name = new A.ImmutableString('bea');
    d.note = new A.ImmutableString('a scalar from JavaScript');
    d.jsText = 'collaborative text from JavaScript';
  });
  doc = A.change(doc, (d) => {
    A.mark(d, ['body'], { start: 3, end: 8, expand: 'both' }, 'bold', true);
    A.mark(d, ['body'], { start: 0, end: 2 }, 'link', 'https://example.com');
  });
  const marks = A.marks(doc, ['body']);
  if (marks.length !== 2) fail(`marks ${JSON.stringify(marks)}, want 2`);
  write('js.save', A.save(doc));
  write('js.changes', Buffer.concat(A.getChangesSince(doc, goHeads)));
  write('js.json', json(doc));
  write('js.heads', JSON.stringify(A.getHeads(doc)));
  write('js.marks', JSON.stringify(marks));
} else if (phase === 'alltypes') {
  const h = A.getBackend(A.init({ actor: '0d000000000000000000000000000000' }));
  h.put('_root', 'str', 'scalar "quoted" <tag> & é', 'str');
  const t = h.putObject('_root', 'text', '');
  h.splice(t, 0, 0, 'text with 😀');
  h.putObject('_root', 'emptyText', '');
  h.put('_root', 'int', -42, 'int');
  h.put('_root', 'big', 9007199254740993n, 'int');
  h.put('_root', 'uint', 18446744073709551615n, 'uint');
  h.put('_root', 'f64', 0.1, 'f64');
  h.put('_root', 'f64int', 3, 'f64');
  h.put('_root', 'yes', true, 'boolean');
  h.put('_root', 'nothing', null, 'null');
  h.put('_root', 'when', new Date(1700000000123), 'timestamp');
  h.put('_root', 'counter', 10, 'counter');
  h.increment('_root', 'counter', -15);
  h.put('_root', 'bytes', new Uint8Array([0, 1, 2, 250, 255]), 'bytes');
  const l = h.putObject('_root', 'list', []);
  h.insert(l, 0, 'first', 'str');
  const m = h.insertObject(l, 1, {});
  h.put(m, 'z', 1, 'int');
  h.put(m, 'a', 2, 'int');
  h.insertObject(l, 2, []);
  h.insert(l, 3, 7, 'counter');
  const tl = h.insertObject(l, 4, '');
  h.splice(tl, 0, 0, 'text in a list');
  h.putObject('_root', 'emptyMap', {});
  h.commit(null, 1700000000000);
  write('alltypes.bin', h.save());
} else {
  const doc = A.load(read('go2.save'));
  const want = readFileSync(join(dir, 'js.marks'), 'utf8');
  const got = JSON.stringify(A.marks(doc, ['body']));
  if (got !== want) fail(`marks after Go's save: ${got}, want ${want}`);
  const heads = JSON.parse(readFileSync(join(dir, 'go2.heads'), 'utf8'));
  if (!same(A.getHeads(doc), heads)) fail(`heads of go2.save ${A.getHeads(doc)}, want ${heads}`);
  const wantJSON = JSON.stringify(JSON.parse(readFileSync(join(dir, 'go2.json'), 'utf8')));
  if (json(doc) !== wantJSON) fail(`go2.save reads ${json(doc)}, want ${wantJSON}`);
}
