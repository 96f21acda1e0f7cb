// The dashboard: follows /admin/api/events (Server-Sent Events) and
// renders each overview; actions are POSTs with the X-Uno-Admin header.
"use strict";
const $ = (id) => document.getElementById(id);
const history = { appended: [], delivered: [], append: [], delivery: [] };
const keep = 60;

function fmt(n) {
  if (n === undefined || n === null) return "–";
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en");
  return (Math.round(n * 100) / 100).toLocaleString("en");
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function rows(id, items, fill) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  for (const it of items) {
    const tr = document.createElement("tr");
    fill(tr, it);
    body.appendChild(tr);
  }
}

function line(svg, series, w, h, color) {
  const max = Math.max(1, ...series);
  const pts = series.map((v, i) => `${(i * w) / (keep - 1)},${h - (v / max) * (h - 2) - 1}`).join(" ");
  const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  pl.setAttribute("points", pts);
  pl.setAttribute("stroke", color);
  svg.appendChild(pl);
}

function push(name, v) {
  history[name].push(v || 0);
  if (history[name].length > keep) history[name].shift();
}

function button(td, label, path, confirmText) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.path = path;
  b.addEventListener("click", async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    b.disabled = true;
    try {
      const r = await fetch(path, { method: "POST", headers: { "X-Uno-Admin": "1" } });
      const body = await r.json();
      $("result").className = r.ok ? "result" : "error";
      $("result").textContent = `${label}: ${r.ok ? JSON.stringify(body) : body.error}`;
    } catch (e) {
      $("result").className = "error";
      $("result").textContent = `${label}: ${e}`;
    } finally {
      b.disabled = false;
    }
  });
  td.appendChild(b);
}

function render(o) {
  $("sessions").textContent = fmt(o.sessions);
  $("streams").textContent = fmt(o.live_streams);
  $("appended").textContent = fmt(o.rates.appended);
  $("delivered").textContent = fmt(o.rates.delivered);
  $("cache").textContent = `${Math.round((o.cache_hit_ratio || 0) * 100)}%`;
  push("appended", o.rates.appended);
  push("delivered", o.rates.delivered);
  push("append", (o.latency_ms.append || {}).p99);
  push("delivery", (o.latency_ms.delivery || {}).p99);
  for (const name of ["appended", "delivered"]) {
    const svg = $(`spark-${name}`);
    svg.replaceChildren();
    line(svg, history[name], 120, 30, "#2b6cd4");
  }
  const chart = $("chart-latency");
  chart.replaceChildren();
  line(chart, history.append, 600, 120, "#2b6cd4");
  line(chart, history.delivery, 600, 120, "#d4622b");
  rows("latency", Object.entries(o.latency_ms).sort(), (tr, [k, q]) => {
    cell(tr, k); cell(tr, fmt(q.p50), "num"); cell(tr, fmt(q.p99), "num"); cell(tr, fmt(q.count), "num");
  });
  rows("tenants", o.tenants || [], (tr, t) => {
    tr.dataset.tenant = t.id;
    cell(tr, t.id); cell(tr, fmt(t.sessions), "num"); cell(tr, fmt(t.head), "num");
    cell(tr, fmt(t.rows), "num"); cell(tr, fmt(t.bytes), "num");
    const lim = [];
    if (t.max_rows) lim.push(`rows ≤ ${fmt(t.max_rows)}`);
    if (t.max_bytes) lim.push(`bytes ≤ ${fmt(t.max_bytes)}`);
    if (t.ops_per_second) lim.push(`${t.ops_per_second} tx/s`);
    if (t.retention_days) lim.push(`kept ${t.retention_days} d`);
    cell(tr, lim.join(", ") || "none");
    cell(tr, t.suspended ? "suspended" : "active", t.suspended ? "suspended" : "");
    const td = cell(tr, "");
    const id = encodeURIComponent(t.id);
    if (t.suspended) button(td, "Resume", `/admin/api/tenants/${id}/resume`);
    else button(td, "Suspend", `/admin/api/tenants/${id}/suspend`, `Suspend tenant ${t.id}? Its clients are disconnected.`);
    button(td, "Compact", `/admin/api/tenants/${id}/compact`);
  });
  rows("projections", o.projections || [], (tr, p) => {
    cell(tr, p.name);
    cell(tr, p.name === "rows" ? "rows read model (inline)" : p.async ? "async" : "inline");
    cell(tr, p.lag ? Object.entries(p.lag).map(([t, n]) => `${t}: ${n}`).join(", ") || "–" : "never lags");
    const td = cell(tr, "");
    if (p.name !== "rows") button(td, "Rebuild", `/admin/api/projections/${encodeURIComponent(p.name)}/rebuild`, `Rebuild ${p.name}?`);
  });
  rows("live", o.live || [], (tr, s) => {
    cell(tr, s.tenant); cell(tr, s.user || "–"); cell(tr, s.site.slice(0, 12)); cell(tr, s.remote);
    cell(tr, new Date(s.since).toLocaleTimeString()); cell(tr, fmt(s.position), "num");
  });
  if (o.jobs || o.job_counts) {
    $("jobs-section").hidden = false;
    const byState = {};
    for (const c of o.job_counts || []) byState[c.State] = (byState[c.State] || 0) + c.N;
    $("job-counts").textContent = Object.entries(byState).sort().map(([s, n]) => `${s}: ${n}`).join(" · ") || "no jobs";
    rows("jobs", o.jobs || [], (tr, j) => {
      tr.dataset.job = j.ID;
      cell(tr, String(j.ID)); cell(tr, j.Kind); cell(tr, j.Args); cell(tr, j.State);
      cell(tr, `${j.Attempt}/${j.MaxAttempts}`, "num"); cell(tr, (j.AttemptedBy || []).join(", ") || "–");
      cell(tr, new Date(j.CreatedAt).toLocaleTimeString());
      cell(tr, j.FinishedAt && !j.FinishedAt.startsWith("0001") ? new Date(j.FinishedAt).toLocaleTimeString() : "–");
      cell(tr, j.LastError || "", j.LastError ? "error" : "");
      const td = cell(tr, "");
      if (["retryable", "discarded", "cancelled", "completed"].includes(j.State)) button(td, "Retry", `/admin/api/jobs/${j.ID}/retry`);
      if (["available", "scheduled", "pending", "retryable", "running"].includes(j.State)) button(td, "Cancel", `/admin/api/jobs/${j.ID}/cancel`, `Cancel job ${j.ID}?`);
    });
  }
  rows("errors", Object.entries(o.errors_total || {}).sort(), (tr, [code, n]) => { cell(tr, code); cell(tr, fmt(n), "num"); });
  $("notes").textContent = (o.notes || []).join("; ");
  document.body.dataset.updated = o.time;
}

function follow() {
  const es = new EventSource("/admin/api/events");
  es.addEventListener("overview", (e) => {
    $("status").textContent = "live";
    $("status").className = "status live";
    render(JSON.parse(e.data));
  });
  es.onerror = () => {
    $("status").textContent = "reconnecting…";
    $("status").className = "status down";
  };
}
follow();
