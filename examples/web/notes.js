// Collaborative notes on uno's doc fields, the browser twin of the
// terminal app examples/notes (same schema, so both edit the same notes):
// collection "notes", fields title and created (registers) and body, a
// doc holding {"text": <collaborative text>, "editors": {name: RFC 3339
// time}}. Each keystroke becomes one splice of the text, so edits made
// elsewhere at the same time (or offline) merge character by character.
// Open it from `uno serve --web examples/web`: the todo page links here
// with the development token.
import { open, codes } from './uno/uno.js';
import { apply, diff, mapPos, rebase } from './splice.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token') ?? '';
const server = params.get('server') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/sync`;
const text = ['text'];

function showError(e) {
  $('error').hidden = false;
  $('error').textContent = `${e.message} (code ${e.code ?? '?'})`;
}

$('todos-link').href = 'index.html#' + new URLSearchParams([...params].filter(([k]) => k === 'token' || k === 'server'));

// The name edits are shown under, kept on this device.
let me = localStorage.getItem('uno-notes-name') || `guest-${crypto.randomUUID().slice(0, 4)}`;
$('name').value = me;
$('name').onchange = () => {
  me = $('name').value.trim() || me;
  $('name').value = me;
  localStorage.setItem('uno-notes-name', me);
};

const name = params.get('db') ?? 'notes';
const options = { name, server: token ? server : '', token, backoffMaxMs: 3000 };
let db;
try {
  db = await open(options);
} catch (e) {
  if (e.code !== codes.locked || !token) {
    showError(e);
    throw e;
  }
  // Another tab owns this database: keep a replica of this tab's own.
  let tab = sessionStorage.getItem('uno-tab');
  if (!tab) sessionStorage.setItem('uno-tab', tab = crypto.randomUUID().slice(0, 8));
  db = await open({ ...options, name: `${name}-tab-${tab}` });
  $('tabnote').hidden = false;
}
window.uno = db; // for the console (and the browser tests)
const notes = db.collection('notes');

db.onStatus((s) => {
  const el = $('status');
  el.dataset.state = s.state;
  el.textContent = { offline: 'offline', connecting: 'connecting…', syncing: 'syncing…', upToDate: 'up to date' }[s.state];
  $('offline').hidden = !token || s.state !== 'offline';
  $('pending').textContent = `${s.pending} pending`;
});

// now is an RFC 3339 time to the second, as the terminal app writes.
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

// The notes, oldest first.
let current = null; // the open note's ID
let rows = [];
notes.watch({ orderBy: 'created' }, (rs) => {
  rows = rs;
  $('notes').replaceChildren(...rs.map((n) => {
    const li = document.createElement('li');
    li.dataset.id = n.id;
    li.className = n.id === current ? 'selected' : '';
    const span = document.createElement('span');
    span.textContent = n.title || '(untitled)';
    const first = document.createElement('small');
    first.textContent = [...(typeof n.body?.text === 'string' ? n.body.text : '').split('\n')[0]].slice(0, 40).join('');
    li.append(span, first);
    li.onclick = () => select(n.id);
    return li;
  }));
  $('count').textContent = `${rs.length} note${rs.length === 1 ? '' : 's'}`;
  if (current) $('note-title').textContent = rs.find((n) => n.id === current)?.title ?? '';
}, showError);

$('new').onsubmit = async (ev) => {
  ev.preventDefault();
  const title = $('title').value.trim();
  if (!title) return;
  $('title').value = '';
  const id = crypto.randomUUID();
  // The text is made once, with the note (a splice of nothing makes an
  // empty one): two replicas that each made it would hold two texts, and
  // Automerge keeps one.
  const tx = db.transaction()
    .put('notes', id, { title, created: now() })
    .editDoc('notes', id, 'body', [
      { splice: { path: text, pos: 0, del: 0, text: '' } },
      { put: { path: ['editors'], value: { [me]: now() } } },
    ]);
  try {
    await tx.commit();
    select(id);
  } catch (e) {
    showError(e);
  }
};

// The open note's text. base is the text the textarea showed when it last
// caught up with the document: the document's text is base with the
// local edits sent since and the changes from elsewhere not shown yet.
const area = $('text');
let base = null;
let stopWatch = null;

function select(id) {
  if (id === current) return;
  stopWatch?.();
  current = id;
  base = null;
  area.value = '';
  area.disabled = true;
  $('editor').hidden = false;
  $('editors').textContent = '';
  $('note-title').textContent = rows.find((n) => n.id === id)?.title ?? '';
  for (const li of $('notes').children) li.className = li.dataset.id === id ? 'selected' : '';
  const p = new URLSearchParams(location.hash.slice(1));
  p.set('note', id);
  history.replaceState(null, '', '#' + p);
  stopWatch = notes.watchDoc(id, 'body', ({ doc }) => {
    if (id !== current) return;
    showEditors(doc?.editors ?? {});
    catchUp();
  }, showError);
}

function showEditors(editors) {
  $('editors').replaceChildren(...Object.keys(editors).sort().flatMap((n, i) => {
    const el = document.createElement('span');
    el.className = n === me ? 'editor you' : 'editor';
    el.textContent = n === me ? `${n} (you)` : n;
    el.title = `last edit ${editors[n]}`;
    return i ? [', ', el] : [el];
  }));
}

// catchUp sends the textarea's edits and shows the document's text, one
// pass at a time: a pass asked for while one runs follows it.
let running = false;
let again = false;
async function catchUp() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  try {
    do {
      again = false;
      await pass(current);
    } while (again);
  } catch (e) {
    showError(e);
  } finally {
    running = false;
  }
}

async function pass(id) {
  if (!id) return;
  const typed = area.value;
  let shown = null;
  if (base !== null && typed !== base) {
    // One splice, made inside the transaction on the document as it is
    // there, so a change merged from elsewhere meanwhile is allowed for.
    const local = diff(base, typed);
    const from = base;
    await notes.editDoc(id, 'body', (doc) => {
      const t = doc.text;
      const splices = rebase(local, diff(from, t));
      shown = splices.reduce(apply, t);
      const edits = splices.map((s) => ({ splice: { path: text, pos: s.pos, del: s.del, text: s.ins } }));
      // Who edited, at most once a minute each.
      if (!(Date.parse(doc.editors?.[me]) > Date.now() - 60000)) edits.push({ put: { path: ['editors', me], value: now() } });
      return edits;
    });
    if (id !== current) return; // another note was opened meanwhile
    base = typed;
  } else {
    const doc = await notes.readDoc(id, 'body');
    if (id !== current) return;
    if (typeof doc.text !== 'string') {
      // The note has not arrived yet: typing now would make a second
      // text (see the new note form).
      return;
    }
    shown = doc.text;
  }
  if (area.value !== typed) {
    again = true; // typed meanwhile: send that first
    return;
  }
  show(shown);
  base = shown;
  area.disabled = false;
}

// show puts t in the textarea, keeping the selection where it was
// relative to the text around it.
function show(t) {
  if (area.value === t) return;
  const d = diff(area.value, t);
  const { selectionStart: s, selectionEnd: e, selectionDirection: dir, scrollTop } = area;
  area.value = t;
  area.setSelectionRange(mapPos(s, d), mapPos(e, d), dir);
  area.scrollTop = scrollTop;
}

area.addEventListener('input', catchUp);

const start = params.get('note');
if (start) select(start);
window.unoReadyAt = performance.now();
