// A small todo app on uno: every write goes to the local database first
// (it works offline and survives reloads), and syncs with the server in
// the background. Open it from `uno serve --web examples/web`, which
// prints the URL with a development token.
import { open, codes } from './uno/uno.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token') ?? '';
const server = params.get('server') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/sync`;

function showError(e) {
  $('error').hidden = false;
  $('error').textContent = `${e.message} (code ${e.code ?? '?'})`;
}

// The notes page shares the server and the token, not the database.
$('notes-link').href = 'notes.html#' + new URLSearchParams([...params].filter(([k]) => k === 'token' || k === 'server'));

const name = params.get('db') ?? 'todos';
// An app in front of a person retries sooner than the 30 s default.
const options = { name, server: token ? server : '', token, backoffMaxMs: 3000 };
let db;
try {
  db = await open(options);
} catch (e) {
  if (e.code !== codes.locked || !token) {
    showError(e);
    throw e;
  }
  // Another tab owns this database. With a server, this tab keeps a
  // replica of its own (kept across its reloads) and both stay live
  // through the server.
  let tab = sessionStorage.getItem('uno-tab');
  if (!tab) sessionStorage.setItem('uno-tab', tab = crypto.randomUUID().slice(0, 8));
  db = await open({ ...options, name: `${name}-tab-${tab}` });
  $('tabnote').hidden = false;
}
window.uno = db; // for the console (and the browser tests)
window.unoReadyAt = performance.now(); // ms from navigation to a usable database
const todos = db.collection('todos');

db.onStatus((s) => {
  window.unoStatus = s; // for the browser tests
  const el = $('status');
  el.dataset.state = s.state;
  el.textContent = { offline: 'offline', connecting: 'connecting…', syncing: 'syncing…', upToDate: 'up to date' }[s.state];
  if (s.state === 'syncing' && s.bootstrap.TotalRows > 0 && !s.bootstrap.Done) {
    el.textContent = `loading ${s.bootstrap.Rows.toLocaleString()} / ${s.bootstrap.TotalRows.toLocaleString()}…`;
  }
  $('offline').hidden = !token || s.state !== 'offline';
  $('pending').textContent = `${s.pending} pending`;
});

todos.watch({ orderBy: 'created' }, (rows) => {
  const list = $('list');
  list.replaceChildren(...rows.map((t) => {
    const li = document.createElement('li');
    li.dataset.id = t.id;
    li.className = t.done ? 'done' : '';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = !!t.done;
    box.onchange = () => todos.patch(t.id, { done: box.checked }).catch(showError);
    const span = document.createElement('span');
    span.textContent = t.title;
    const del = document.createElement('button');
    del.textContent = '×';
    del.title = 'Delete';
    del.onclick = () => todos.delete(t.id).catch(showError);
    li.append(box, span, del);
    return li;
  }));
  $('count').textContent = `${rows.length} item${rows.length === 1 ? '' : 's'}`;
}, showError);

$('new').onsubmit = async (ev) => {
  ev.preventDefault();
  const title = $('title').value.trim();
  if (!title) return;
  $('title').value = '';
  const id = crypto.randomUUID();
  await todos.put(id, { title, done: false, created: Date.now() }).catch(showError);
};

$('clear').onclick = async () => {
  const done = await todos.find({ where: [['done', '=', true]] });
  const tx = db.transaction();
  for (const t of done) tx.delete('todos', t.id);
  await tx.commit().catch(showError);
};
