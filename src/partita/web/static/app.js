// partita monitor: the pages, drawn from the JSON API and kept live by the /ws feed.
// Vanilla JavaScript, no build step. Every text from the server goes through textContent.
"use strict";

const STATES = ["running", "waiting", "done", "failed", "cancelled"];
const STATE_ORDER = { running: 0, waiting: 1, failed: 2, cancelled: 3, done: 4 };
const PAGE_SIZE = 300;

// --- small DOM helpers ------------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props, true);
  append(el, children);
  return el;
}

function setProps(el, props, svg = false) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") {
      if (svg) el.setAttribute("class", value);
      else el.className = value;
    } else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

const $ = (selector, root = document) => root.querySelector(selector);

const ICONS = {
  copy: "M5 2.5A1.5 1.5 0 0 1 6.5 1h6A1.5 1.5 0 0 1 14 2.5v7a1.5 1.5 0 0 1-1.5 1.5h-6A1.5 1.5 0 0 1 5 9.5v-7Zm1.5-.25a.25.25 0 0 0-.25.25v7c0 .14.11.25.25.25h6a.25.25 0 0 0 .25-.25v-7a.25.25 0 0 0-.25-.25h-6ZM2 5.5A1.5 1.5 0 0 1 3.5 4H4v1.25h-.5a.25.25 0 0 0-.25.25v7c0 .14.11.25.25.25h6a.25.25 0 0 0 .25-.25V12h1.25v.5A1.5 1.5 0 0 1 9.5 14h-6A1.5 1.5 0 0 1 2 12.5v-7Z",
  stop: "M5.5 5.5h5v5h-5z M8 1a7 7 0 1 0 0 14A7 7 0 0 0 8 1Zm0 1.5a5.5 5.5 0 1 1 0 11 5.5 5.5 0 0 1 0-11Z",
  wrap: "M2 3.25h12v1.5H2zM2 7.25h9.5a2.75 2.75 0 0 1 0 5.5H9.6l.9.9-1.06 1.06-2.72-2.71 2.72-2.72 1.06 1.06-.9.91h1.9a1.25 1.25 0 0 0 0-2.5H2zM2 11.25h4v1.5H2z",
  down: "M7.25 2h1.5v8.19l2.72-2.72 1.06 1.06L8 13.06 3.47 8.53l1.06-1.06 2.72 2.72z",
};

function icon(name) {
  return s("svg", { viewBox: "0 0 16 16", "aria-hidden": "true" },
    s("path", { d: ICONS[name], fill: "currentColor", "fill-rule": "evenodd" }));
}

// --- formatting -------------------------------------------------------------------------------

function now() { return Date.now() / 1000 + store.skew; }

function pad(n) { return String(n).padStart(2, "0"); }

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${pad(Math.floor(seconds % 60))} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${pad(minutes % 60)} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function fmtAgo(t) {
  if (!t) return "—";
  const d = now() - t;
  if (d < 5) return "just now";
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  if (d < 7 * 86400) return `${Math.floor(d / 86400)} d ago`;
  return new Date(t * 1000).toLocaleDateString();
}

function fmtTime(t) {
  if (!t) return "—";
  return new Date(t * 1000).toLocaleString([], {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function jobDuration(job) {
  if (!job.started) return null;
  const end = job.state === "running" ? now() : job.ended || job.started;
  return end - job.started;
}

function ago(t) {
  return h("span", { dataset: t ? { ago: String(t) } : {}, title: t ? fmtTime(t) : null, text: fmtAgo(t) });
}

// Energy and CO2 of a job, from environment.json's "energy" (an energy meter was installed).
function scaled(value, units) {
  if (value === 0) return "0";
  let scale = 1;
  for (let i = units.length - 1; i >= 0; i--) {
    if (Math.abs(value) * scale >= 1 || i === 0) return `${Number((value * scale).toPrecision(3))} ${units[i]}`;
    scale *= 1000;
  }
  return String(value);
}

function energyText(energy) {
  if (!energy || typeof energy !== "object") return null;
  if (energy.error) return `not measured (${energy.error})`;
  if (typeof energy.energy_kwh !== "number") return null;
  const wh = ["µWh", "mWh", "Wh", "kWh"];
  let text = scaled(energy.energy_kwh, wh);
  const parts = [["cpu", "cpu_energy_kwh"], ["gpu", "gpu_energy_kwh"], ["ram", "ram_energy_kwh"]]
    .filter(([, key]) => typeof energy[key] === "number")
    .map(([name, key]) => `${name} ${scaled(energy[key], wh)}`);
  if (parts.length) text += ` (${parts.join(", ")})`;
  if (typeof energy.emissions_kg === "number") text += ` · ${scaled(energy.emissions_kg, ["µg", "mg", "g", "kg"])} CO₂eq`;
  if (energy.meter) text += ` · ${energy.meter}`;
  return text;
}

function durationEl(job) {
  const running = job.state === "running" && job.started;
  return h("span", { dataset: running ? { since: String(job.started) } : {}, text: fmtDuration(jobDuration(job)) });
}

// Relative times and running durations tick once a second.
setInterval(() => {
  for (const el of document.querySelectorAll("[data-ago]")) el.textContent = fmtAgo(Number(el.dataset.ago));
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = fmtDuration(now() - Number(el.dataset.since));
}, 1000);

// --- pieces -----------------------------------------------------------------------------------

function badge(state, big = false) {
  const known = state || "unknown";
  return h("span", { class: `badge s-${known}${big ? " big" : ""}`, text: known });
}

function transientMark(job) {
  if (!job.transient) return null;
  return h("span", {
    class: "transient",
    title: "Transient: run only while a job that is not done needs it; gc removes it once its dependents are done",
    text: "transient",
  });
}

function taskName(type) {
  if (!type) return h("span", { class: "ns", text: "unknown task" });
  const cut = type.lastIndexOf(".");
  if (cut < 0) return h("span", { text: type });
  return h("span", {}, h("span", { class: "ns", text: type.slice(0, cut + 1) }), type.slice(cut + 1));
}

function tagChip(name, value, onclick, removable = false) {
  return h("button", {
    type: "button",
    class: `tag${removable ? " removable" : ""}`,
    title: removable ? `Remove the filter ${name}=${value}` : `Show jobs tagged ${name}=${value}`,
    onclick: (event) => { event.stopPropagation(); onclick(); },
  }, h("b", { text: `${name}=` }), value);
}

function tagList(tags, onclick) {
  const entries = Object.entries(tags || {});
  if (!entries.length) return h("span", { class: "muted", text: "" });
  return h("div", { class: "tags" },
    entries.map(([k, v]) => tagChip(k, v, () => onclick(k, v))));
}

function addTagFilter(name, value) {
  const params = new URLSearchParams(location.pathname === "/" ? location.search : "");
  const text = `${name}=${value}`;
  if (!params.getAll("tag").includes(text)) params.append("tag", text);
  navigate(`/?${params}`);
}

function progressBar(job, big = false) {
  const running = job.state === "running";
  const fraction = job.progress;
  const known = typeof fraction === "number";
  const cls = ["track"];
  if (big) cls.push("big");
  if (!running && job.state !== "waiting") cls.push(job.state);
  if (running && !known) cls.push("indeterminate");
  const fill = h("div", { class: "fill" });
  if (known) fill.style.width = `${Math.round(fraction * 1000) / 10}%`;
  const bar = h("div", { class: cls.join(" ") }, fill);
  const pct = h("span", { class: "pct", text: known ? `${Math.round(fraction * 100)}%` : "" });
  const wrap = h("div", { class: "progress" }, bar, pct);
  const message = running ? job.message : null;
  if (message) wrap.append(h("div", { class: "msg", title: message, text: message }));
  return wrap;
}

function showsProgress(job) {
  return job.state === "running" || (typeof job.progress === "number" && job.state !== "waiting");
}

function copyButton(text, label = "Copy") {
  return h("button", {
    type: "button", class: "copy", title: label,
    onclick: async (event) => {
      event.stopPropagation();
      try {
        await navigator.clipboard.writeText(text);
        toast("Copied to the clipboard");
      } catch (e) {
        toast("Could not copy (the browser refused)", true);
      }
    },
  }, icon("copy"));
}

function pathEl(path) {
  return h("span", { class: "path" }, h("span", { text: path }), copyButton(path, "Copy the path"));
}

function emptyState(title, text) {
  return h("div", { class: "empty" }, h("strong", { text: title }), text ? h("span", { text }) : null);
}

function toast(text, bad = false) {
  const el = h("div", { class: `toast${bad ? " bad" : ""}`, role: "status", text });
  $("#toasts").append(el);
  setTimeout(() => el.remove(), bad ? 7000 : 3500);
}

function card(title, body, extra) {
  return h("section", { class: "card" },
    h("h2", {}, title, extra || null),
    body);
}

function stackBar(counts, wide = false) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const bar = h("div", { class: `stackbar${wide ? " wide" : ""}`, title: STATES.filter((k) => counts[k]).map((k) => `${counts[k]} ${k}`).join(", ") });
  if (!total) return bar;
  for (const state of ["done", "running", "waiting", "cancelled", "failed"]) {
    if (!counts[state]) continue;
    const seg = h("span", { class: `s-${state}` });
    seg.style.width = `${(counts[state] / total) * 100}%`;
    seg.style.setProperty("--c", `var(--${state})`);
    bar.append(seg);
  }
  return bar;
}

function legend(counts, compact = false) {
  return h("div", { class: `legend${compact ? " compact" : ""}` }, STATES.filter((k) => counts[k]).map((k) => {
    const item = h("span", {}, h("b", { text: String(counts[k]) }), ` ${k}`);
    item.style.setProperty("--c", `var(--${k})`);
    return item;
  }));
}

function countStates(jobs) {
  const counts = {};
  for (const job of jobs) counts[job.state] = (counts[job.state] || 0) + 1;
  return counts;
}

// --- server access ----------------------------------------------------------------------------

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", ...(options.headers || {}) },
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

const store = {
  info: null,
  jobs: new Map(),
  runs: [],
  ready: false,
  skew: 0,
  flashed: new Set(),
  listeners: new Set(),
  emit(kind) { for (const listener of this.listeners) listener(kind); },
};

function setLive(state, text) {
  const el = $("#live");
  el.className = `live ${state}`;
  el.textContent = text;
}

// The live feed: one WebSocket, a snapshot then updates (only what changed); a filter per
// page. Each message says which version of the monitor it brings the page to; an update
// also says which one it starts from. A page that reconnects says what it has, and gets
// only what changed meanwhile; one that finds a gap asks for a snapshot (resync).
const feed = {
  socket: null,
  filter: {},
  seq: 0,
  retry: 0,
  timer: null,
  epoch: null,     // the monitor's epoch and version of what store.jobs holds
  version: null,
  dataSeq: null,   // the filter (seq) store.jobs was built for
  resyncing: false,

  connect() {
    clearTimeout(this.timer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.retry = 0;
      setLive("on", "live");
      this.resyncing = false;
      this.send(true);
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      this.receive(message);
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.reconnect();
    });
  },

  async reconnect() {
    setLive("off", "reconnecting…");
    try {
      await api("/api/info");
    } catch (e) {
      if (e.status === 401) {
        setLive("denied", "access refused");
        showBanner("This monitor no longer accepts this browser's token (it was restarted?). Open the address it printed, with ?token=.");
        return;
      }
    }
    const delay = Math.min(5000, 400 * 2 ** this.retry++);
    this.timer = setTimeout(() => this.connect(), delay);
  },

  setFilter(wanted) {
    const filter = {};
    for (const [key, value] of Object.entries(wanted)) {
      if (Array.isArray(value) ? value.length : value) filter[key] = value;
    }
    const same = JSON.stringify(filter) === JSON.stringify(this.filter);
    if (same) return;
    this.filter = filter;
    this.seq += 1;
    this.send();
  },

  send(resume = false) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      const message = { type: "filter", seq: this.seq, ...this.filter };
      if (resume && store.ready && this.dataSeq === this.seq && this.epoch !== null) {
        message.epoch = this.epoch;
        message.version = this.version;
      }
      this.socket.send(JSON.stringify(message));
    }
  },

  resync() {
    if (this.resyncing || !this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    this.resyncing = true;
    this.socket.send(JSON.stringify({ type: "resync" }));
  },

  receive(message) {
    if (typeof message.now === "number") store.skew = message.now - Date.now() / 1000;
    if (message.type === "error") { toast(message.error, true); return; }
    if ((message.seq || 0) !== this.seq) return;  // computed for an older filter
    if (message.type === "snapshot") {
      store.flashed.clear();
      store.jobs = new Map(message.jobs.map((job) => [job.id, job]));
      store.runs = message.runs || [];
      store.ready = true;
      this.epoch = message.epoch;
      this.version = message.version;
      this.dataSeq = message.seq || 0;
      this.resyncing = false;
      store.emit("snapshot");
    } else if (message.type === "update") {
      if (message.epoch !== this.epoch || message.since !== this.version) {
        this.resync();  // a gap: what this page holds is not what the update starts from
        return;
      }
      this.version = message.version;
      for (const job of message.changed || []) {
        const before = store.jobs.get(job.id);
        if (!before || before.state !== job.state) store.flashed.add(job.id);
        store.jobs.set(job.id, job);
      }
      for (const id of message.removed || []) store.jobs.delete(id);
      if (message.runs) store.runs = message.runs;
      store.emit("update");
    }
  },
};

function showBanner(text) {
  const main = $("#main");
  if ($(".error-banner", main)) return;
  main.prepend(h("div", { class: "error-banner", text }));
}

// --- kill -------------------------------------------------------------------------------------

function confirmDialog(title, text) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("#confirm-ok").focus();
  });
}

async function killJob(job, button) {
  const name = `${job.type}/${job.short}`;
  const ok = await confirmDialog(
    `Kill ${name}?`,
    "partita asks the job to stop (SIGTERM), and forces it (SIGKILL) after 10 s. " +
    "The job ends cancelled; submitting it again runs it again.");
  if (!ok) return;
  const label = [...button.childNodes];
  button.disabled = true;
  button.replaceChildren(h("span", { class: "spinner" }), "Killing…");
  try {
    const result = await api(`/api/jobs/${job.id}/kill`, {
      method: "POST",
      headers: { "X-Partita-CSRF": store.info.csrf },
    });
    toast(result.message || `${name} killed`);
  } catch (e) {
    toast(`Could not kill ${name}: ${e.message}`, true);
  } finally {
    if (button.isConnected) {
      button.disabled = false;
      button.replaceChildren(...label);
    }
  }
}

function killButton(job, small = true) {
  const button = h("button", {
    type: "button",
    class: `btn danger${small ? " small" : ""}`,
    title: "Stop this job",
    dataset: { action: "kill" },
    onclick: (event) => { event.stopPropagation(); killJob(job, button); },
  }, icon("stop"), "Kill");
  return button;
}

// --- jobs table (the jobs page and the run page) ---------------------------------------------

function compareJobs(a, b) {
  const order = (STATE_ORDER[a.state] ?? 5) - (STATE_ORDER[b.state] ?? 5);
  if (a.state === "running" || b.state === "running") {
    if (order) return order;
    return (b.started || 0) - (a.started || 0);
  }
  const ta = a.ended || a.started || a.submitted || 0;
  const tb = b.ended || b.started || b.submitted || 0;
  return tb - ta || a.type.localeCompare(b.type);
}

// Reported results as columns: the names the shown jobs reported, at most this many.
const MAX_RESULT_COLUMNS = 8;

function fmtResult(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : String(Number(value.toPrecision(4)));
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  return String(value);
}

function compareValues(a, b) {
  const missing = (v) => v === null || v === undefined || v === "";
  if (missing(a) || missing(b)) return missing(a) - missing(b);
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

const SORT_KEYS = {
  state: (j) => STATE_ORDER[j.state] ?? 5,
  task: (j) => j.type,
  started: (j) => j.started || j.submitted || null,
  duration: (j) => jobDuration(j),
};

function sortValue(job, key) {
  if (key.startsWith("result:")) return (job.results || {})[key.slice(7)];
  return SORT_KEYS[key](job);
}

function resultNames(jobs) {
  const names = new Set();
  for (const job of jobs) for (const name of Object.keys(job.results || {})) names.add(name);
  return [...names].sort().slice(0, MAX_RESULT_COLUMNS);
}

function jobsTable({ empty }) {
  const tbody = h("tbody");
  const headRow = h("tr");
  const table = h("table", { class: "jobs" }, h("thead", {}, headRow), tbody);
  const placeholder = h("div");
  const more = h("div", { class: "more" });
  const el = h("div", {}, h("div", { class: "table-wrap" }, table), placeholder, more);
  const rows = new Map();
  let limit = PAGE_SIZE;
  let columns = [];
  let columnsKey = null;
  let sort = null;  // {key, dir}: null is the default order (running first, then recent)
  let lastJobs = [];

  function header(label, key, cls = "") {
    const on = sort && sort.key === key;
    const th = h("th", {
      class: `${cls}${key ? " sortable" : ""}${on ? " sorted" : ""}`.trim(),
      dataset: key ? { sort: key } : {},
      title: key ? "Sort by this column (again: reverse, then default order)" : "",
      "aria-sort": on ? (sort.dir > 0 ? "ascending" : "descending") : "none",
    }, label, on ? h("span", { class: "arrow", text: sort.dir > 0 ? " ▲" : " ▼" }) : null);
    if (key) {
      th.addEventListener("click", () => {
        if (!on) sort = { key, dir: key.startsWith("result:") || key === "task" ? 1 : -1 };
        else if (sort.dir === (key.startsWith("result:") || key === "task" ? 1 : -1)) sort = { key, dir: -sort.dir };
        else sort = null;
        drawHead();
        update(lastJobs);
      });
    }
    return th;
  }

  function drawHead() {
    headRow.replaceChildren(
      header("State", "state"), header("Task", "task"), h("th", { class: "c-id", text: "Job" }),
      h("th", { text: "Tags" }),
      ...columns.map((name) => header(name, `result:${name}`, "num result")),
      h("th", { text: "Progress" }), header("Started", "started", "c-started"),
      header("Duration", "duration", "num"), h("th", {}));
  }

  function ordered(jobs) {
    if (!sort) return [...jobs].sort(compareJobs);
    const { key, dir } = sort;
    return [...jobs].sort((a, b) => {
      const va = sortValue(a, key);
      const vb = sortValue(b, key);
      const missing = (v) => v === null || v === undefined || v === "";
      if (missing(va) || missing(vb)) return (missing(va) - missing(vb)) || compareJobs(a, b);
      return dir * compareValues(va, vb) || compareJobs(a, b);
    });
  }

  function row(job) {
    const link = h("a", { href: `/jobs/${job.id}`, "data-link": true }, taskName(job.type));
    const state = h("td", {}, badge(job.state));
    if ((job.state === "failed" || job.state === "cancelled") && job.reason) {
      state.append(h("span", { class: "reason", text: ` ${job.reason}` }));
    }
    if (job.transient) state.append(" ", transientMark(job));
    const tr = h("tr", {
      dataset: { id: job.id, type: job.type, state: job.state, transient: job.transient ? "1" : "0" },
      onclick: () => navigate(`/jobs/${job.id}`),
    },
      state,
      h("td", { class: "task", title: job.type }, link),
      h("td", { class: "ident c-id", text: job.short }),
      h("td", {}, tagList(job.tags, addTagFilter)),
      ...columns.map((name) => h("td", {
        class: "num result", dataset: { result: name }, text: fmtResult((job.results || {})[name]),
      })),
      h("td", { class: "prog" }, showsProgress(job) ? progressBar(job) : ""),
      h("td", { class: "time c-started" }, ago(job.started || job.submitted)),
      h("td", { class: "num time" }, durationEl(job)),
      h("td", { class: "actions" }, job.state === "running" ? killButton(job) : null));
    if (store.flashed.has(job.id)) {
      store.flashed.delete(job.id);
      tr.classList.add("flash");
    }
    return tr;
  }

  function update(jobs) {
    lastJobs = jobs;
    const names = resultNames(jobs);
    if (names.join("\n") !== columnsKey) {
      columnsKey = names.join("\n");
      columns = names;
      if (sort && sort.key.startsWith("result:") && !names.includes(sort.key.slice(7))) sort = null;
      drawHead();
    }
    const sorted = ordered(jobs);
    const shown = sorted.slice(0, limit);
    const keep = new Set();
    let previous = null;
    for (const job of shown) {
      const key = columnsKey + JSON.stringify(job);
      let entry = rows.get(job.id);
      if (!entry) {
        entry = { tr: row(job), key };
        rows.set(job.id, entry);
      } else if (entry.key !== key) {
        const tr = row(job);
        entry.tr.replaceWith(tr);
        entry.tr = tr;
        entry.key = key;
      }
      keep.add(job.id);
      const expected = previous ? previous.nextSibling : tbody.firstChild;
      if (entry.tr !== expected) tbody.insertBefore(entry.tr, expected);
      previous = entry.tr;
    }
    for (const [id, entry] of rows) {
      if (!keep.has(id)) { entry.tr.remove(); rows.delete(id); }
    }
    placeholder.replaceChildren(jobs.length ? "" : empty());
    table.hidden = !jobs.length;
    more.replaceChildren();
    more.hidden = sorted.length <= limit;
    if (sorted.length > limit) {
      more.append(h("button", {
        type: "button", class: "btn",
        text: `Show ${Math.min(PAGE_SIZE, sorted.length - limit)} more of ${sorted.length - limit}`,
        onclick: () => { limit += PAGE_SIZE; update(jobs); },
      }));
    }
  }

  return { el, update };
}

// --- page: jobs -------------------------------------------------------------------------------

function jobsPage(main) {
  const params = new URLSearchParams(location.search);
  const filter = {
    states: new Set(params.getAll("state").flatMap((v) => v.split(",")).filter(Boolean)),
    task: params.get("task") || "",
    experiment: params.get("experiment") || "",
    tags: params.getAll("tag").filter(Boolean),
  };

  const chips = h("div", { class: "segmented", role: "group", "aria-label": "Filter by state" });
  const taskInput = h("input", {
    class: "input", type: "search", placeholder: "Task, e.g. train", value: filter.task,
    list: "task-types", "aria-label": "Filter by task", size: 18,
  });
  const types = h("datalist", { id: "task-types" });
  const tagInput = h("input", {
    class: "input", type: "text", placeholder: "Tag: name=value", "aria-label": "Filter by tag", size: 16,
  });
  const xpSelect = h("select", { class: "input", "aria-label": "Filter by experiment" });
  const activeTags = h("div", { class: "tags" });
  const clear = h("button", { type: "button", class: "btn small", text: "Clear filters" });
  const compare = h("a", {
    class: "btn small", id: "compare", href: "/compare", "data-link": true,
    title: "Plot a reported value of these jobs against a tag that varies",
    text: "Compare",
  });
  const table = jobsTable({
    empty: () => (store.ready
      ? (hasFilters()
        ? emptyState("No job matches these filters", "Change or clear the filters.")
        : emptyState("No jobs yet", "Jobs appear here as soon as an experiment launches them."))
      : emptyState("Loading…")),
  });
  const subtitle = h("div", { class: "sub" });

  main.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Jobs" }), subtitle)),
    h("section", { class: "card" },
      h("div", { class: "toolbar" }, chips, taskInput, types, tagInput, activeTags,
        h("span", { class: "grow" }), h("label", {}, "Experiment", xpSelect), clear, compare),
      table.el));

  function hasFilters() {
    return filter.states.size || filter.task || filter.experiment || filter.tags.length;
  }

  function apply() {
    const query = new URLSearchParams();
    for (const state of filter.states) query.append("state", state);
    if (filter.task) query.set("task", filter.task);
    if (filter.experiment) query.set("experiment", filter.experiment);
    for (const tag of filter.tags) query.append("tag", tag);
    const url = `/${query.toString() ? `?${query}` : ""}`;
    if (url !== location.pathname + location.search) history.replaceState({}, "", url);
    compare.setAttribute("href", `/compare${query.toString() ? `?${query}` : ""}`);
    feed.setFilter({ task: filter.task, experiment: filter.experiment, tags: filter.tags });
    update();
  }

  let debounce = null;
  taskInput.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { filter.task = taskInput.value.trim(); apply(); }, 250);
  });
  tagInput.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const text = tagInput.value.trim();
    if (!text) return;
    if (!text.includes("=") || text.startsWith("=")) {
      toast("A tag filter reads name=value, e.g. lr=0.01", true);
      return;
    }
    if (!filter.tags.includes(text)) filter.tags.push(text);
    tagInput.value = "";
    apply();
  });
  xpSelect.addEventListener("change", () => { filter.experiment = xpSelect.value; apply(); });
  clear.addEventListener("click", () => {
    filter.states.clear();
    filter.task = "";
    filter.experiment = "";
    filter.tags = [];
    taskInput.value = "";
    apply();
  });

  function drawChips(counts, total) {
    const chip = (state, label, n) => {
      const on = state === null ? filter.states.size === 0 : filter.states.has(state);
      const el = h("button", {
        type: "button", class: `chip${on ? " on" : ""}`, "aria-pressed": on ? "true" : "false",
        dataset: { state: state || "all" },
        onclick: (event) => {
          if (state === null) filter.states.clear();
          else if (event.shiftKey || event.metaKey || event.ctrlKey) {
            if (filter.states.has(state)) filter.states.delete(state); else filter.states.add(state);
          } else if (filter.states.size === 1 && filter.states.has(state)) filter.states.clear();
          else { filter.states.clear(); filter.states.add(state); }
          apply();
        },
      }, state ? h("span", { class: "dot" }) : null, label, h("span", { class: "n", text: String(n) }));
      if (state) el.style.setProperty("--c", `var(--${state})`);
      return el;
    };
    chips.replaceChildren(chip(null, "All", total),
      ...STATES.map((state) => chip(state, state[0].toUpperCase() + state.slice(1), counts[state] || 0)));
  }

  function drawExperiments() {
    const names = [...new Set(store.runs.map((r) => r.experiment))].sort();
    if (filter.experiment && !names.includes(filter.experiment)) names.push(filter.experiment);
    const current = [...xpSelect.options].map((o) => o.value).join("\n");
    const wanted = ["", ...names].join("\n");
    if (current !== wanted) {
      xpSelect.replaceChildren(h("option", { value: "", text: "all" }),
        ...names.map((n) => h("option", { value: n, text: n })));
    }
    xpSelect.value = filter.experiment;
  }

  function update() {
    const all = [...store.jobs.values()];
    const counts = countStates(all);
    drawChips(counts, all.length);
    drawExperiments();
    const knownTypes = [...new Set(all.map((j) => j.type))].sort();
    if (types.childElementCount !== knownTypes.length) {
      types.replaceChildren(...knownTypes.map((t) => h("option", { value: t })));
    }
    activeTags.replaceChildren(...filter.tags.map((text) => {
      const [name, ...rest] = text.split("=");
      return tagChip(name, rest.join("="), () => {
        filter.tags = filter.tags.filter((t) => t !== text);
        apply();
      }, true);
    }));
    clear.hidden = !hasFilters();
    const shown = filter.states.size ? all.filter((j) => filter.states.has(j.state)) : all;
    table.update(shown);
    const running = counts.running || 0;
    subtitle.textContent = store.ready
      ? `${all.length} job${all.length === 1 ? "" : "s"}${hasFilters() ? " match" : ""}${running ? ` · ${running} running` : ""}`
      : "Loading…";
    document.title = `${running ? `(${running}) ` : ""}Jobs · partita`;
  }

  apply();
  return { update };
}

// --- page: one job ----------------------------------------------------------------------------

function renderValue(value) {
  if (value === null || value === undefined) return h("span", { class: "v v-none", text: "None" });
  if (typeof value === "boolean") return h("span", { class: "v v-bool", text: value ? "True" : "False" });
  if (typeof value === "number") return h("span", { class: "v v-num", text: String(value) });
  if (typeof value === "string") return h("span", { class: "v v-str", text: JSON.stringify(value) });
  if (Array.isArray(value)) return renderList(value, "[", "]");
  if ("$job" in value) return jobRef(value.$job.id, value.$job.type);
  if ("$config" in value) return renderConfig(value.$config);
  if ("$float" in value) return h("span", { class: "v v-num", text: value.$float });
  if ("$path" in value) {
    const text = value.base === "workspace" ? `WORKDIR/${value.$path}` : value.$path;
    return h("span", { class: "v v-path", title: "a path" }, h("span", { class: "v-kind", text: "path" }), text);
  }
  if ("$enum" in value) {
    const cls = String(value.$enum).split(":").pop();
    return h("span", { class: "v" }, h("span", { class: "v-kind", text: "enum" }), `${cls}.${value.name}`);
  }
  if ("$tuple" in value) return renderList(value.$tuple, "(", ")");
  if ("$set" in value) return renderList(value.$set, "{", "}");
  if ("$dict" in value) return fieldsTable(value.$dict);
  if ("$missing" in value) return h("span", { class: "v v-none", text: "?" });
  if (Object.keys(value).length === 0) return h("span", { class: "v", text: "{}" });
  return fieldsTable(value);
}

function renderList(items, open, close) {
  const simple = items.every((v) => v === null || typeof v !== "object" || "$float" in v);
  if (simple) {
    const el = h("span", { class: "v" }, open);
    items.forEach((item, i) => { if (i) el.append(", "); el.append(renderValue(item)); });
    el.append(close);
    return el;
  }
  return h("div", { class: "v-list" }, items.map(renderValue));
}

function renderConfig(config) {
  const fields = config.fields || {};
  return h("div", { class: "nested" },
    h("div", { class: "head" }, h("span", { class: "mono", text: config.type || "config" }),
      config.id ? ` · ${config.id.slice(0, 12)}` : "",
      config.instance ? ` · distinct instance ${config.instance}` : ""),
    Object.keys(fields).length ? fieldsTable(fields, config.ignored) : h("span", { class: "v v-none", text: "no fields" }),
    config.producer ? h("div", { class: "head" }, "produced by ", renderValue(config.producer)) : null);
}

function fieldsTable(fields, ignored) {
  // ignored: the fields held with ignore(), which are not part of the identity
  const skip = new Set(Array.isArray(ignored) ? ignored : []);
  return h("table", {}, h("tbody", {}, Object.entries(fields).map(([k, v]) =>
    h("tr", {}, h("td", { class: "k", text: skip.has(k) ? `${k} (ignored)` : k,
      title: skip.has(k) ? "held with ignore(): not part of the identity" : null }),
    h("td", {}, renderValue(v))))));
}

function jobRef(id, type) {
  const live = store.jobs.get(id);
  const state = live ? live.state : null;
  return h("a", { class: "jobref", href: `/jobs/${id}`, "data-link": true, dataset: { ref: id } },
    badge(state || "unknown"),
    h("span", { text: type || (live && live.type) || "job" }),
    h("span", { class: "id", text: id.slice(0, 12) }));
}

function logViewer(id, isRunning, initial = "stdout") {
  const pre = h("pre", { class: "log", tabindex: "0", "aria-label": "Job output" });
  const status = h("span", { class: "log-status" });
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const wrapButton = h("button", { type: "button", class: "btn small", title: "Wrap long lines" }, icon("wrap"), "Wrap");
  const bottomButton = h("button", { type: "button", class: "btn small", title: "Scroll to the end" }, icon("down"), "End");
  const el = h("section", { class: "card mt", id: "logs" },
    h("h2", {}, tabs, h("span", { class: "right" }, status, wrapButton, bottomButton)),
    pre);
  let stream = "stdout";
  let offset = null;
  let timer = null;
  let generation = 0;
  let sizes = {};
  let stopped = false;

  wrapButton.addEventListener("click", () => pre.classList.toggle("wrap"));
  bottomButton.addEventListener("click", () => { pre.scrollTop = pre.scrollHeight; });

  function drawTabs() {
    tabs.replaceChildren(...["stdout", "stderr"].map((name) => h("button", {
      type: "button", role: "tab", class: `tab${name === stream ? " on" : ""}`,
      "aria-selected": name === stream ? "true" : "false", dataset: { stream: name },
      onclick: () => select(name),
    }, name, sizes[name] ? h("span", { class: "n", text: fmtBytes(sizes[name]) }) : null)));
  }

  function placeholder(text) {
    pre.replaceChildren(h("span", { class: "placeholder", text }));
  }

  async function poll() {
    const mine = generation;
    clearTimeout(timer);
    let delay = 1000;
    try {
      const query = offset === null ? "" : `&offset=${offset}`;
      const result = await api(`/api/jobs/${id}/log?stream=${stream}${query}`);
      if (mine !== generation || stopped) return;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      if (offset === null || result.reset) {
        pre.replaceChildren();
        if (result.start > 0) pre.append(h("span", { class: "placeholder", text: `… ${fmtBytes(result.start)} earlier not shown\n` }));
      }
      if (result.content) {
        if ($(".placeholder", pre) && !result.start) pre.replaceChildren();
        pre.append(result.content);
        if (pre.textContent.length > 4_000_000) pre.textContent = pre.textContent.slice(-2_000_000);
      } else if (!pre.textContent) {
        const yet = isRunning() ? " yet" : "";
        placeholder(result.exists ? `No output on ${stream}${yet}.` : `No ${stream} file${yet}.`);
      }
      offset = result.offset;
      if (atBottom || result.reset) pre.scrollTop = pre.scrollHeight;
      if (sizes[stream] !== result.size) { sizes[stream] = result.size; drawTabs(); }
      const running = isRunning();
      status.className = `log-status${running ? " following" : ""}`;
      status.textContent = running ? "following" : "";
      if (result.offset < result.size) delay = 50;
      else if (!running) delay = 5000;
    } catch (e) {
      if (mine !== generation || stopped) return;
      status.textContent = e.message;
      delay = 3000;
    }
    if (!stopped) timer = setTimeout(poll, delay);
  }

  function select(name) {
    stream = name;
    offset = null;
    generation += 1;
    placeholder("Loading…");
    drawTabs();
    poll();
  }

  function setSizes(logs) {
    sizes = { ...sizes, ...logs };
    drawTabs();
  }

  select(initial);
  return {
    el,
    setSizes,
    kick() { if (!stopped) { clearTimeout(timer); poll(); } },
    destroy() { stopped = true; clearTimeout(timer); },
  };
}

function jobPage(main, [ident]) {
  feed.setFilter({});
  const head = h("div");
  const body = h("div");
  let detail = null;
  let logs = null;
  let results = null;
  let reloading = false;
  let lastKey = null;
  main.append(head, body);
  head.append(emptyState("Loading…"));

  async function load() {
    if (reloading) return;
    reloading = true;
    try {
      detail = await api(`/api/jobs/${ident}`);
      draw();
    } catch (e) {
      head.replaceChildren(emptyState(e.status === 404 ? "No such job" : "Could not load the job", e.message));
      body.replaceChildren();
    } finally {
      reloading = false;
    }
  }

  function live() {
    return (detail && store.jobs.get(detail.id)) || detail;
  }

  function draw() {
    const job = { ...detail, ...(store.jobs.get(detail.id) || {}) };
    lastKey = `${job.state}|${job.attempt}`;
    document.title = `${job.type}/${job.short} · partita`;
    const actions = h("div", { class: "actions" }, transientMark(job), badge(job.state, true),
      job.state === "running" ? killButton(job, false) : null);
    head.replaceChildren(
      h("div", { class: "crumbs" },
        h("a", { href: "/", "data-link": true, text: "Jobs" }), h("span", { class: "sep", text: "/" }),
        h("a", { href: `/?task=${encodeURIComponent(job.type)}`, "data-link": true, text: job.type })),
      h("div", { class: "page-head" },
        h("div", {},
          h("h1", {}, taskName(job.type)),
          h("div", { class: "sub" }, h("span", { class: "path" }, h("span", { text: job.id }), copyButton(job.id, "Copy the identifier")))),
        actions));

    const overview = h("dl", { class: "kv" });
    const row = (label, ...value) => overview.append(h("dt", { text: label }), h("dd", {}, ...value));
    const stateText = [badge(job.state)];
    if (job.reason) stateText.push(" ", h("span", { class: "muted", text: job.reason }));
    if (job.detail) stateText.push(h("div", { class: "muted", text: job.detail }));
    if (job.transient) {
      stateText.push(h("div", { class: "muted" }, transientMark(job),
        " kept only while a job that is not done needs it"));
    }
    row("State", ...stateText);
    if (job.state === "running" || (typeof job.progress === "number" && job.state !== "done")) {
      row("Progress", h("div", { id: "job-progress" }, progressBar(job, true)));
    }
    row("Attempt", job.attempt ? String(job.attempt) : "—",
      detail.attempts.length ? h("span", { class: "muted", text: ` (earlier: ${detail.attempts.join(", ")} in .attempts/)` }) : "");
    if (detail.exit_code !== null && detail.exit_code !== undefined) row("Exit code", String(detail.exit_code));
    row("Submitted", h("span", { text: fmtTime(job.submitted) }));
    row("Started", h("span", { text: fmtTime(job.started) }), job.started ? h("span", { class: "muted" }, " · ", ago(job.started)) : "");
    if (job.ended) row("Ended", h("span", { text: fmtTime(job.ended) }));
    row("Duration", durationEl(job));
    const energy = energyText((detail.environment || {}).energy);
    if (energy) row("Energy", energy);
    const handle = detail.launcher_handle || {};
    row("Runs on", [job.host || "—", job.launcher ? ` · ${job.launcher}` : "", handle.pid ? ` · pid ${handle.pid}` : "", handle.job_id ? ` · Slurm job ${handle.job_id}` : ""].join(""));
    row("Experiments", job.experiments.length
      ? h("span", {}, job.experiments.map((name, i) => [i ? ", " : "", h("a", { href: `/?experiment=${encodeURIComponent(name)}`, "data-link": true, text: name })]))
      : "—");
    row("Tags", Object.keys(job.tags).length ? tagList(job.tags, addTagFilter) : h("span", { class: "muted", text: "none" }));
    row("Folder", pathEl(detail.paths.folder));
    if ((detail.migration || []).length) row("Migration", h("div", {}, detail.migration.map((line) => h("div", { class: "muted", text: line }))));
    if (detail.shared === null) {
      row("Shared folders", h("span", { class: "muted", text: "shared.json cannot be read" }));
    } else if (detail.shared && detail.shared.length) {
      row("Shared folders", h("ul", { class: "shared-list" }, detail.shared.map((folder) =>
        h("li", { dataset: { group: folder.group } },
          h("span", { class: "group", text: folder.group }), " ", pathEl(folder.path),
          folder.exists ? null : h("span", { class: "muted", text: " (not created yet)" })))));
    }

    const params = detail.params
      ? h("div", { class: "params" },
        detail.params.class ? h("div", { class: "class", title: "The class of the task", text: detail.params.class }) : null,
        Object.keys(detail.params.fields || {}).length
          ? fieldsTable(detail.params.fields, detail.params.ignored)
          : h("span", { class: "muted", text: "This task has no parameters." }),
        (detail.params.pretasks || []).length
          ? h("div", { class: "pretasks" },
            h("div", { class: "section-label", title: "Light configs whose execute() runs before the task's, in this order", text: `Pre-tasks (${detail.params.pretasks.length})` }),
            fieldsTable(Object.fromEntries(detail.params.pretasks.map((p, i) => [String(i + 1), p]))))
          : null)
      : h("span", { class: "muted", text: "params.json cannot be read." });

    const deps = h("div", {},
      h("div", { class: "section-label", text: `Depends on (${detail.dependencies.length})` }),
      detail.dependencies.length
        ? h("ul", { class: "deplist" }, detail.dependencies.map((d) => h("li", {}, jobRef(d.id, d.type))))
        : h("p", { class: "muted", text: "Nothing: this job needs no other job." }),
      h("div", { class: "section-label", text: `Needed by (${detail.dependents.length})` }),
      detail.dependents.length
        ? h("ul", { class: "deplist" }, detail.dependents.map((d) => h("li", {}, jobRef(d.id, d.type))))
        : h("p", { class: "muted", text: "No job depends on this one." }));

    const history = detail.history.length
      ? h("ul", { class: "timeline" }, detail.history.map((entry) => {
        const li = h("li", {},
          h("span", { class: "what", text: entry.state }),
          h("span", { class: "muted", text: `attempt ${entry.attempt ?? "—"}${entry.reason ? ` · ${entry.reason}` : ""}` }),
          h("span", { class: "when", title: fmtTime(entry.time), text: fmtTime(entry.time) }));
        li.style.setProperty("--c", `var(--${entry.state}, var(--muted))`);
        return li;
      }))
      : h("p", { class: "muted", text: "Not launched yet." });

    const outputs = (detail.outputs || []).length
      ? card("Outputs", h("div", { class: "body outputs" }, detail.outputs.map((output) =>
        h("div", { class: "output" },
          h("div", { class: "section-label" },
            h("span", { text: `${output.name} #${output.seq ?? "?"}` }),
            h("span", { class: "muted", title: fmtTime(output.time), text: ` · ${fmtTime(output.time)}` })),
          output.config
            ? fieldsTable(output.config.fields || {})
            : h("div", {}, renderValue(output.value))))),
        h("span", { class: "count", text: `${detail.outputs.length} published` }))
      : null;

    body.replaceChildren(
      h("div", { class: "grid-2" },
        h("div", { class: "stack" },
          card("Overview", h("div", { class: "body" }, overview)),
          card("Parameters", h("div", { class: "body" }, params)),
          outputs),
        h("div", { class: "stack" },
          card("Dependencies", h("div", { class: "body" }, deps)),
          card("History", h("div", { class: "body" }, history), h("span", { class: "count", text: detail.history.length ? `${detail.history.length} event${detail.history.length === 1 ? "" : "s"}` : "" })))));
    if (!logs) {
      // A failure's traceback is on stderr: show it first.
      const initial = job.state === "failed" && detail.logs.stderr ? "stderr" : "stdout";
      logs = logViewer(detail.id, () => (live() || {}).state === "running", initial);
    }
    logs.setSizes(detail.logs);
    if (!results) results = resultsView(detail.id, () => (live() || {}).state === "running");
    body.append(results.el, logs.el);
  }

  function update() {
    if (!detail) return;
    const job = store.jobs.get(detail.id);
    if (!job) return;
    const key = `${job.state}|${job.attempt}`;
    if (key !== lastKey) {
      lastKey = key;
      load().then(() => { if (logs) logs.kick(); if (results) results.kick(); });
      return;
    }
    const progress = $("#job-progress", body);
    if (progress) progress.replaceChildren(progressBar(job, true));
    for (const ref of body.querySelectorAll("a.jobref")) {
      const other = store.jobs.get(ref.dataset.ref);
      const current = ref.querySelector(".badge");
      if (other && current && current.textContent !== other.state) current.replaceWith(badge(other.state));
    }
  }

  load();
  return { update, destroy() { if (logs) logs.destroy(); if (results) results.destroy(); } };
}

// --- page: experiments ------------------------------------------------------------------------

function experimentsPage(main) {
  feed.setFilter({});
  const list = h("div", { class: "xp-list" });
  const subtitle = h("div", { class: "sub" });
  const expanded = new Set();
  main.append(h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Experiments" }), subtitle)), list);
  document.title = "Experiments · partita";

  function update() {
    if (!store.ready) { list.replaceChildren(emptyState("Loading…")); return; }
    const byName = new Map();
    for (const run of store.runs) {
      if (!byName.has(run.experiment)) byName.set(run.experiment, []);
      byName.get(run.experiment).push(run);
    }
    const perExperiment = new Map();
    for (const job of store.jobs.values()) {
      for (const name of job.experiments) {
        if (!perExperiment.has(name)) perExperiment.set(name, []);
        perExperiment.get(name).push(job);
      }
    }
    const names = [...byName.keys()].sort((a, b) => (byName.get(b)[0].started || 0) - (byName.get(a)[0].started || 0));
    subtitle.textContent = `${names.length} experiment${names.length === 1 ? "" : "s"} · ${store.runs.length} run${store.runs.length === 1 ? "" : "s"}`;
    if (!names.length) {
      list.replaceChildren(h("section", { class: "card" }, emptyState("No experiments yet", "Runs of experiment() scripts appear here.")));
      return;
    }
    list.replaceChildren(...names.map((name) => {
      const runs = byName.get(name);
      const latest = runs.find((run) => !run.dry_run) || runs[0];
      const counts = countStates(perExperiment.get(name) || []);
      const shown = expanded.has(name) ? runs : runs.slice(0, 5);
      const rows = shown.map((run) => h("tr", {
        class: "link", dataset: { run: run.run },
        onclick: () => navigate(`/experiments/${encodeURIComponent(name)}/${encodeURIComponent(run.run)}`),
      },
        h("td", {}, h("a", { href: `/experiments/${encodeURIComponent(name)}/${encodeURIComponent(run.run)}`, "data-link": true, class: "mono", text: run.run })),
        h("td", {}, badge(run.status), run.dry_run ? h("span", { class: "muted", text: " dry run" }) : null),
        h("td", { class: "time" }, ago(run.started)),
        h("td", { class: "num time" }, run.status === "running" && run.started
          ? h("span", { dataset: { since: String(run.started) }, text: fmtDuration(now() - run.started) })
          : fmtDuration(run.ended && run.started ? run.ended - run.started : null)),
        h("td", { class: "muted", text: `${run.host || "—"}${run.pid ? ` · pid ${run.pid}` : ""}` }),
        h("td", { class: "num", text: String(run.jobs) })));
      const toggle = runs.length > 5
        ? h("div", { class: "more" }, h("button", {
          type: "button", class: "btn small",
          text: expanded.has(name) ? "Show fewer runs" : `Show all ${runs.length} runs`,
          onclick: () => { if (expanded.has(name)) expanded.delete(name); else expanded.add(name); update(); },
        }))
        : null;
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      return h("section", { class: "card", dataset: { experiment: name } },
        h("div", { class: "xp-head" },
          h("h3", {}, h("a", { href: `/?experiment=${encodeURIComponent(name)}`, "data-link": true, text: name })),
          h("span", { class: "meta" }, `${runs.length} run${runs.length === 1 ? "" : "s"} · ${total} job${total === 1 ? "" : "s"} · latest `, ago(latest.started)),
          h("span", { class: "right" }, legend(counts, true), stackBar(counts), badge(latest.status))),
        h("div", { class: "table-wrap" }, h("table", { class: "plain" },
          h("thead", {}, h("tr", {}, h("th", { text: "Run" }), h("th", { text: "Status" }), h("th", { text: "Started" }),
            h("th", { class: "num", text: "Duration" }), h("th", { text: "Host" }), h("th", { class: "num", text: "Jobs" }))),
          h("tbody", {}, rows))),
        toggle);
    }));
  }

  update();
  return { update };
}

// --- page: one run, with its dependency graph -------------------------------------------------

const NODE_W = 224;
const NODE_H = 54;
const GAP_X = 72;
const GAP_Y = 18;
const DUMMY_H = 6;
const PAD = 24;

// A layered (Sugiyama-style) layout: longest-path layers, dummy nodes on long edges,
// barycenter ordering sweeps, then vertical placement near the neighbours' mean.
function layoutGraph(ids, edges) {
  const preds = new Map(ids.map((id) => [id, []]));
  const succs = new Map(ids.map((id) => [id, []]));
  for (const [from, to] of edges) {
    if (!preds.has(from) || !preds.has(to) || from === to) continue;
    preds.get(to).push(from);
    succs.get(from).push(to);
  }
  const layer = new Map();
  const visiting = new Set();
  function depth(id) {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0;  // a cycle cannot happen, but never loop
    visiting.add(id);
    let d = 0;
    for (const p of preds.get(id)) d = Math.max(d, depth(p) + 1);
    visiting.delete(id);
    layer.set(id, d);
    return d;
  }
  ids.forEach(depth);
  const count = Math.max(0, ...layer.values()) + 1;
  const layers = Array.from({ length: count }, () => []);
  const up = new Map();
  const down = new Map();
  const items = new Map();
  for (const id of ids) {
    const item = { id, dummy: false, layer: layer.get(id), h: NODE_H };
    items.set(id, item);
    layers[item.layer].push(item);
    up.set(id, []);
    down.set(id, []);
  }
  const chains = [];
  let dummies = 0;
  for (const [from, to] of edges) {
    if (!items.has(from) || !items.has(to) || from === to) continue;
    const chain = [from];
    let previous = from;
    for (let l = layer.get(from) + 1; l < layer.get(to); l++) {
      const id = `~${dummies++}`;
      const item = { id, dummy: true, layer: l, h: DUMMY_H };
      items.set(id, item);
      layers[l].push(item);
      up.set(id, [previous]);
      down.set(id, []);
      down.get(previous).push(id);
      chain.push(id);
      previous = id;
    }
    up.get(to).push(previous);
    down.get(previous).push(to);
    chain.push(to);
    chains.push({ from, to, chain });
  }
  const position = new Map();
  const index = () => layers.forEach((items) => items.forEach((item, i) => position.set(item.id, i)));
  index();
  const sweep = (range, neighbours) => {
    for (const l of range) {
      const bary = new Map();
      for (const item of layers[l]) {
        const ns = neighbours.get(item.id);
        bary.set(item.id, ns.length ? ns.reduce((a, n) => a + position.get(n), 0) / ns.length : position.get(item.id));
      }
      layers[l].sort((a, b) => bary.get(a.id) - bary.get(b.id));
      layers[l].forEach((item, i) => position.set(item.id, i));
    }
  };
  const forward = [...Array(count).keys()].slice(1);
  const backward = [...Array(count).keys()].reverse().slice(1);
  for (let i = 0; i < 6; i++) { sweep(forward, up); sweep(backward, down); }

  // Vertical placement: each item wants the mean centre of its neighbours; keep order and gaps.
  const centre = new Map();
  const stackLayer = (items) => {
    let y = 0;
    for (const item of items) { centre.set(item.id, y + item.h / 2); y += item.h + GAP_Y; }
  };
  layers.forEach(stackLayer);
  const place = (items, neighbours) => {
    const wanted = items.map((item) => {
      const ns = neighbours.get(item.id);
      return ns.length ? ns.reduce((a, n) => a + centre.get(n), 0) / ns.length : centre.get(item.id);
    });
    const ys = [];
    items.forEach((item, i) => {
      const min = i ? ys[i - 1] + items[i - 1].h / 2 + GAP_Y + item.h / 2 : -Infinity;
      ys.push(Math.max(wanted[i], min));
    });
    for (let i = items.length - 2; i >= 0; i--) {
      const max = ys[i + 1] - items[i + 1].h / 2 - GAP_Y - items[i].h / 2;
      if (ys[i] > max) ys[i] = max;
    }
    const shift = items.length ? wanted.reduce((a, w, i) => a + (w - ys[i]), 0) / items.length : 0;
    items.forEach((item, i) => centre.set(item.id, ys[i] + shift));
  };
  for (let i = 0; i < 4; i++) {
    for (const l of forward) place(layers[l], up);
    for (const l of backward) place(layers[l], down);
  }
  let top = Infinity;
  let bottom = -Infinity;
  for (const item of items.values()) {
    top = Math.min(top, centre.get(item.id) - item.h / 2);
    bottom = Math.max(bottom, centre.get(item.id) + item.h / 2);
  }
  if (!isFinite(top)) { top = 0; bottom = 0; }
  const nodes = new Map();
  for (const item of items.values()) {
    nodes.set(item.id, {
      x: PAD + item.layer * (NODE_W + GAP_X),
      y: PAD + centre.get(item.id) - top - item.h / 2,
      dummy: item.dummy,
    });
  }
  const paths = chains.map(({ from, to, chain }) => {
    const points = [];
    const a = nodes.get(from);
    points.push([a.x + NODE_W, a.y + NODE_H / 2]);
    for (const id of chain.slice(1, -1)) {
      const d = nodes.get(id);
      points.push([d.x, d.y + DUMMY_H / 2], [d.x + NODE_W, d.y + DUMMY_H / 2]);
    }
    const b = nodes.get(to);
    points.push([b.x - 6, b.y + NODE_H / 2]);
    let path = `M${points[0][0]},${points[0][1]}`;
    for (let i = 1; i < points.length; i++) {
      const [x0, y0] = points[i - 1];
      const [x1, y1] = points[i];
      if (i % 2 === 0 && i < points.length - 1) path += ` L${x1},${y1}`;
      else {
        const dx = (x1 - x0) / 2;
        path += ` C${x0 + dx},${y0} ${x1 - dx},${y1} ${x1},${y1}`;
      }
    }
    return { from, to, path };
  });
  return {
    nodes,
    paths,
    width: PAD * 2 + count * NODE_W + (count - 1) * GAP_X,
    height: PAD * 2 + (bottom - top),
  };
}

function fit(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function dependencyGraph(jobs, external, edges) {
  const all = [...jobs, ...external];
  if (!all.length) return { el: emptyState("No jobs in this run"), update() {} };
  if (all.length > 800) {
    return { el: emptyState("Too many jobs to draw", `${all.length} jobs; use the table below.`), update() {} };
  }
  const externalIds = new Set(external.map((j) => j.id));
  const layout = layoutGraph(all.map((j) => j.id), edges);
  const svg = s("svg", {
    class: "graph", width: layout.width, height: layout.height,
    viewBox: `0 0 ${layout.width} ${layout.height}`, role: "img", "aria-label": "Dependency graph of the run",
  });
  svg.append(s("defs", {},
    s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "1", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" })),
    s("clipPath", { id: "node-clip" }, s("rect", { width: NODE_W, height: NODE_H, rx: 8 }))));
  const edgeEls = [];
  const edgeGroup = s("g", {});
  for (const p of layout.paths) {
    const path = s("path", { d: p.path, class: "edge", "marker-end": "url(#arrow)" });
    edgeEls.push({ ...p, el: path });
    edgeGroup.append(path);
  }
  svg.append(edgeGroup);
  const nodeEls = new Map();
  const highlight = (id, on) => {
    for (const e of edgeEls) if (e.from === id || e.to === id) e.el.classList.toggle("hot", on);
  };
  for (const job of all) {
    const pos = layout.nodes.get(job.id);
    const fill = s("rect", { class: "pfill", x: 14, y: NODE_H - 9, height: 3, rx: 1.5, width: 0 });
    const tags = Object.entries(job.tags || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    const title = s("title", {});
    const stateText = s("text", { class: "state", x: NODE_W - 12, y: 21, "text-anchor": "end" });
    const track = s("rect", { class: "ptrack", x: 14, y: NODE_H - 9, height: 3, rx: 1.5, width: NODE_W - 28 });
    const g = s("g", {
      class: `node s-${job.state}${externalIds.has(job.id) ? " external" : ""}`,
      transform: `translate(${pos.x},${pos.y})`, tabindex: "0", role: "link",
      dataset: { id: job.id },
      onclick: () => navigate(`/jobs/${job.id}`),
      onkeydown: (event) => { if (event.key === "Enter") navigate(`/jobs/${job.id}`); },
      onmouseenter: () => highlight(job.id, true),
      onmouseleave: () => highlight(job.id, false),
    },
      title,
      s("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 8 }),
      s("g", { "clip-path": "url(#node-clip)" }, s("rect", { class: "stripe", width: 4, height: NODE_H })),
      s("text", { class: "title", x: 14, y: 21, text: fit(job.type || job.short, 22) }),
      stateText,
      s("text", { class: "subtitle", x: 14, y: 38, text: fit(`${job.short.slice(0, 8)}${tags ? `  ${tags}` : ""}`, 30) }),
      track,
      fill);
    g.style.setProperty("--c", `var(--${job.state}, var(--muted))`);
    nodeEls.set(job.id, { g, fill, track, title, stateText, external: externalIds.has(job.id) });
    svg.append(g);
  }
  function update() {
    for (const [id, el] of nodeEls) {
      const job = store.jobs.get(id) || all.find((j) => j.id === id);
      el.g.setAttribute("class", `node s-${job.state}${el.external ? " external" : ""}`);
      el.g.style.setProperty("--c", `var(--${job.state}, var(--muted))`);
      const showProgress = job.state === "running" && typeof job.progress === "number";
      el.fill.setAttribute("width", showProgress ? String(job.progress * (NODE_W - 28)) : "0");
      el.track.style.display = showProgress ? "" : "none";
      el.stateText.textContent = showProgress ? `${Math.round(job.progress * 100)}%` : job.state;
      el.title.textContent = `${job.type}/${job.short}: ${job.state}${job.message ? ` (${job.message})` : ""}${el.external ? " (from another run)" : ""}`;
    }
  }
  update();
  return { el: h("div", { class: "graph-wrap" }, svg), update };
}

function runPage(main, [name, run]) {
  feed.setFilter({});
  const head = h("div");
  const body = h("div");
  main.append(head, body);
  head.append(emptyState("Loading…"));
  let data = null;
  let graph = null;
  let table = null;
  let summary = null;
  let loading = false;
  document.title = `${name} · ${run} · partita`;

  async function load() {
    if (loading) return;
    loading = true;
    try {
      data = await api(`/api/experiments/${encodeURIComponent(name)}/runs/${encodeURIComponent(run)}`);
      draw();
    } catch (e) {
      head.replaceChildren(emptyState(e.status === 404 ? "No such run" : "Could not load the run", e.message));
    } finally {
      loading = false;
    }
  }

  function runRecord() {
    return store.runs.find((r) => r.experiment === name && r.run === run) || data;
  }

  function jobsOfRun() {
    return data.jobs.map((job) => store.jobs.get(job.id) || job);
  }

  function drawHead() {
    const record = runRecord();
    head.replaceChildren(
      h("div", { class: "crumbs" },
        h("a", { href: "/experiments", "data-link": true, text: "Experiments" }), h("span", { class: "sep", text: "/" }),
        h("a", { href: `/?experiment=${encodeURIComponent(name)}`, "data-link": true, text: name })),
      h("div", { class: "page-head" },
        h("div", {}, h("h1", { text: name }), h("div", { class: "sub mono", text: `run ${run}` })),
        h("div", { class: "actions" }, badge(record.status, true),
          record.dry_run ? h("span", { class: "muted", text: " dry run" }) : null)));
  }

  function draw() {
    drawHead();
    const record = runRecord();
    const info = h("dl", { class: "kv" });
    const row = (label, ...value) => info.append(h("dt", { text: label }), h("dd", {}, ...value));
    row("Started", fmtTime(record.started), record.started ? h("span", { class: "muted" }, " · ", ago(record.started)) : "");
    row("Duration", record.status === "running" && record.started
      ? h("span", { dataset: { since: String(record.started) }, text: fmtDuration(now() - record.started) })
      : fmtDuration(record.ended && record.started ? record.ended - record.started : null));
    row("Host", `${record.host || "—"}${record.pid ? ` · pid ${record.pid}` : ""}`);
    if (data.argv) row("Command", h("code", { text: ["python", ...data.argv].join(" ") }));
    if (data.cwd) row("Directory", pathEl(data.cwd));
    if (data.git) row("Git", h("code", { text: (data.git.commit || "").slice(0, 12) }), data.git.dirty ? h("span", { class: "muted", text: " · uncommitted changes" }) : "");
    if (data.python) row("Python", String(data.python).split(" ")[0]);
    for (const service of data.services || []) {
      const live = service.state === "running" && record.status === "running";
      const url = service.url && /^https?:\/\//.test(service.url) ? service.url : null;
      row(`Service ${service.name}`,
        live && url ? h("a", { href: url, target: "_blank", rel: "noopener", class: "service-link", text: url })
          : h("span", { class: "muted", text: url || "—" }),
        h("span", { class: "muted", text: ` · ${live ? "running" : (service.state === "running" ? "gone" : service.state)}` }));
    }
    summary = h("div");
    graph = dependencyGraph(data.jobs, data.external, data.edges);
    table = jobsTable({ empty: () => emptyState("No jobs in this run") });
    body.replaceChildren(
      h("div", { class: "grid-2" },
        card("Run", h("div", { class: "body" }, info)),
        card("Jobs", h("div", { class: "body" }, summary))),
      h("section", { class: "card mt" },
        h("h2", {}, "Dependency graph", h("span", { class: "count", text: `${data.jobs.length} jobs · ${data.edges.length} dependencies` })),
        graph.el),
      h("section", { class: "card mt" }, h("h2", {}, "Jobs of this run"), table.el));
    update();
  }

  function update() {
    if (!data) return;
    const record = runRecord();
    if (record && typeof record.jobs === "number" && record.jobs !== data.submitted) {
      load();
      return;
    }
    drawHead();
    const jobs = jobsOfRun();
    const counts = countStates(jobs);
    summary.replaceChildren(stackBar(counts, true), legend(counts));
    graph.update();
    table.update(jobs);
  }

  load();
  return { update };
}

// --- plots (plotly.js, served from the installed plotly Python package) ---------------------

let plotlyLoading = null;

function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = h("script", { src: "/static/vendor/plotly.min.js" });
      script.addEventListener("load", () => resolve(window.Plotly));
      script.addEventListener("error", () => {
        plotlyLoading = null;
        reject(new Error("plots need the plotly package next to the monitor: pip install 'partita[web]'"));
      });
      document.head.append(script);
    });
  }
  return plotlyLoading;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function plotLayout(xTitle, yTitle) {
  const text = cssVar("--text-2");
  const grid = cssVar("--border");
  const axis = (title) => ({
    title: { text: title, font: { size: 12 } }, gridcolor: grid, zerolinecolor: grid,
    linecolor: grid, color: text, automargin: true,
  });
  return {
    margin: { l: 56, r: 16, t: 12, b: 44 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: cssVar("--font"), color: text, size: 12 },
    xaxis: axis(xTitle), yaxis: axis(yTitle),
    showlegend: false, hovermode: "closest", height: 260,
    legend: { orientation: "h", y: -0.25 },
  };
}

const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

async function drawPlot(el, traces, layout) {
  try {
    const Plotly = await loadPlotly();
    await Plotly.react(el, traces, layout, PLOT_CONFIG);
    el.dataset.points = String(traces.reduce((n, t) => n + t.x.length, 0));
    el.dataset.traces = String(traces.length);
  } catch (e) {
    el.replaceChildren(h("p", { class: "muted", text: e.message }));
  }
}

// What a job reported (its page): values, and a plot per series, live while it runs.
function resultsView(id, isRunning) {
  const values = h("div");
  const plots = h("div", { class: "series" });
  const count = h("span", { class: "count" });
  const el = h("section", { class: "card mt", id: "results" },
    h("h2", {}, "Results", count), h("div", { class: "body" }, values, plots));
  el.hidden = true;
  const charts = new Map();
  let timer = null;
  let stopped = false;
  let busy = false;
  let lastKey = null;

  async function refresh() {
    if (busy || stopped) return;
    busy = true;
    try {
      const data = await api(`/api/jobs/${id}/results`);
      const key = JSON.stringify([data.values, data.series, data.damage]);
      if (key !== lastKey) {
        lastKey = key;
        draw(data);
      }
    } catch (e) {
      /* the job page says what is wrong with the job itself */
    } finally {
      busy = false;
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (!stopped && isRunning()) timer = setTimeout(refresh, 1000);
  }

  function draw(data) {
    const names = Object.keys(data.values);
    const series = Object.entries(data.series).filter(([, points]) => points.length);
    el.hidden = !names.length && !series.length && !data.damage.length;
    count.textContent = names.length ? `${names.length} value${names.length === 1 ? "" : "s"}` : "";
    const kv = h("dl", { class: "kv results" });
    for (const name of names) {
      const value = data.values[name];
      const shown = value !== null && typeof value === "object" ? JSON.stringify(value) : fmtResult(value);
      kv.append(h("dt", { text: name }), h("dd", { class: "mono", dataset: { result: name }, text: shown }));
    }
    values.replaceChildren(names.length ? kv : "",
      ...data.damage.map((line) => h("p", { class: "damage", text: line })));
    for (const [name, points] of series) {
      let chart = charts.get(name);
      if (!chart) {
        const plot = h("div", { class: "series-plot", dataset: { name } });
        chart = h("figure", { class: "series-figure" }, h("figcaption", { text: name }), plot);
        charts.set(name, chart);
        plots.append(chart);
      }
      drawPlot(chart.lastChild, [{
        x: points.map((p) => p[0]), y: points.map((p) => p[1]), name,
        type: "scatter", mode: points.length > 200 ? "lines" : "lines+markers",
        line: { color: cssVar("--accent"), width: 2 }, marker: { size: 5 },
        hovertemplate: `step %{x}<br>${name} %{y}<extra></extra>`,
      }], plotLayout("step", name));
    }
  }

  refresh();
  return {
    el,
    kick() { clearTimeout(timer); refresh(); },
    destroy() { stopped = true; clearTimeout(timer); },
  };
}

// --- page: compare a selection ----------------------------------------------------------------

function comparePage(main) {
  const params = new URLSearchParams(location.search);
  const filter = {
    task: params.get("task") || "",
    experiment: params.get("experiment") || "",
    tags: params.getAll("tag").filter(Boolean),
    states: new Set(params.getAll("state").flatMap((v) => v.split(",")).filter(Boolean)),
  };
  const choice = { metric: params.get("metric") || "", x: params.get("x") || "", by: params.get("by") || "" };
  feed.setFilter({ task: filter.task, experiment: filter.experiment, tags: filter.tags });
  const metricSelect = h("select", { class: "input", id: "compare-metric", "aria-label": "Metric" });
  const xSelect = h("select", { class: "input", id: "compare-x", "aria-label": "Against" });
  const bySelect = h("select", { class: "input", id: "compare-by", "aria-label": "One line per" });
  const plot = h("div", { class: "compare-plot", id: "compare-plot" });
  const note = h("div", { class: "sub" });
  const selection = [filter.task && `task ${filter.task}`, filter.experiment && `experiment ${filter.experiment}`,
    ...filter.tags, filter.states.size && `state ${[...filter.states].join(",")}`].filter(Boolean).join(" · ");
  const back = new URLSearchParams(location.search);
  for (const key of ["metric", "x", "by"]) back.delete(key);
  main.append(
    h("div", { class: "crumbs" },
      h("a", { href: `/${back.toString() ? `?${back}` : ""}`, "data-link": true, text: "Jobs" }),
      h("span", { class: "sep", text: "/" }), h("span", { text: "Compare" })),
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Compare" }),
      h("div", { class: "sub", text: selection ? `Jobs of ${selection}` : "Every job" }))),
    h("section", { class: "card" },
      h("div", { class: "toolbar" },
        h("label", {}, "Metric", metricSelect), h("label", {}, "against", xSelect),
        h("label", {}, "one line per", bySelect), h("span", { class: "grow" }), note),
      h("div", { class: "body" }, plot)));

  for (const [select, key] of [[metricSelect, "metric"], [xSelect, "x"], [bySelect, "by"]]) {
    select.addEventListener("change", () => {
      choice[key] = select.value;
      const query = new URLSearchParams(location.search);
      if (select.value) query.set(key, select.value); else query.delete(key);
      history.replaceState({}, "", `/compare?${query}`);
      update();
    });
  }

  function options(select, names, current, none) {
    const wanted = [...(none ? [""] : []), ...names];
    if ([...select.options].map((o) => o.value).join("\n") !== wanted.join("\n")) {
      select.replaceChildren(...wanted.map((n) => h("option", { value: n, text: n || none })));
    }
    select.value = current;
  }

  // A tag's value as the page shows it ("0.1"), or a reported value; numbers stay numbers.
  function valueOf(job, name) {
    if (name in (job.tags || {})) {
      const text = job.tags[name];
      const number = Number(text);
      return text !== "" && Number.isFinite(number) ? number : text;
    }
    return (job.results || {})[name];
  }

  let lastKey = null;

  function update() {
    let jobs = [...store.jobs.values()];
    if (filter.states.size) jobs = jobs.filter((j) => filter.states.has(j.state));
    const metrics = resultNames(jobs).filter((name) =>
      jobs.some((j) => typeof (j.results || {})[name] === "number"));
    const tagNames = [...new Set(jobs.flatMap((j) => Object.keys(j.tags || {})))].sort();
    const varying = tagNames.filter((name) => new Set(jobs.map((j) => j.tags[name])).size > 1);
    if (!choice.metric || !metrics.includes(choice.metric)) choice.metric = metrics[0] || "";
    const xs = [...varying, ...metrics.filter((m) => m !== choice.metric)];
    if (!choice.x || !xs.includes(choice.x)) choice.x = xs[0] || "";
    const bys = varying.filter((name) => name !== choice.x);
    if (choice.by && !bys.includes(choice.by)) choice.by = "";
    options(metricSelect, metrics, choice.metric);
    options(xSelect, xs, choice.x);
    options(bySelect, bys, choice.by, "(one line)");
    if (!store.ready) { plot.replaceChildren(emptyState("Loading…")); lastKey = null; return; }
    if (!choice.metric || !choice.x) {
      lastKey = null;
      plot.replaceChildren(emptyState("Nothing to compare",
        metrics.length ? "No tag varies within these jobs: select jobs that differ in a tag."
          : "No job of this selection reported a number (partita.report in the task)."));
      return;
    }
    const lines = new Map();
    let used = 0;
    for (const job of jobs) {
      const y = (job.results || {})[choice.metric];
      const x = valueOf(job, choice.x);
      if (typeof y !== "number" || x === undefined || x === null) continue;
      const line = choice.by ? String(job.tags[choice.by] ?? "(none)") : choice.metric;
      if (!lines.has(line)) lines.set(line, []);
      lines.get(line).push([x, y, job.short]);
      used += 1;
    }
    const names = [...lines.keys()].sort((a, b) => compareValues(Number(a) || a, Number(b) || b));
    const traces = names.map((line) => {
      const points = lines.get(line).sort((a, b) => compareValues(a[0], b[0]));
      return {
        x: points.map((p) => p[0]), y: points.map((p) => p[1]), text: points.map((p) => p[2]),
        name: choice.by ? `${choice.by}=${line}` : line, type: "scatter", mode: "lines+markers",
        marker: { size: 7 }, hovertemplate: `${choice.x} %{x}<br>${choice.metric} %{y}<br>job %{text}<extra>%{fullData.name}</extra>`,
      };
    });
    note.textContent = `${used} job${used === 1 ? "" : "s"} · ${traces.length} line${traces.length === 1 ? "" : "s"}`;
    const key = JSON.stringify([traces, cssVar("--text")]);
    if (key === lastKey) return;
    lastKey = key;
    if (plot.querySelector(".empty")) plot.replaceChildren();
    const layout = plotLayout(choice.x, choice.metric);
    layout.showlegend = Boolean(choice.by);
    layout.height = 420;
    if (traces.every((t) => t.x.every((v) => typeof v !== "number"))) layout.xaxis.type = "category";
    drawPlot(plot, traces, layout);
  }

  update();
  document.title = "Compare · partita";
  return { update };
}

// --- routing ----------------------------------------------------------------------------------

const ROUTES = [
  [/^\/$/, jobsPage, "jobs"],
  [/^\/experiments\/?$/, experimentsPage, "experiments"],
  [/^\/experiments\/([^/]+)\/([^/]+)\/?$/, runPage, "experiments"],
  [/^\/jobs\/([0-9a-fA-F]+)\/?$/, jobPage, "jobs"],
  [/^\/compare\/?$/, comparePage, "jobs"],
];

let page = null;

function render() {
  if (page && page.destroy) page.destroy();
  page = null;
  const main = $("#main");
  main.replaceChildren();
  for (const [pattern, view, nav] of ROUTES) {
    const match = location.pathname.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("[data-nav]")) {
      link.classList.toggle("active", link.dataset.nav === nav);
    }
    page = view(main, match.slice(1).map(decodeURIComponent));
    return;
  }
  main.append(h("section", { class: "card" }, emptyState("No such page", location.pathname)));
}

function navigate(url, replace = false) {
  if (url === location.pathname + location.search && !replace) return;
  history[replace ? "replaceState" : "pushState"]({}, "", url);
  render();
  window.scrollTo(0, 0);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || link.target || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/static/") || url.pathname.startsWith("/api/")) return;
  event.preventDefault();
  event.stopPropagation();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", render);

store.listeners.add((kind) => { if (page && page.update) page.update(kind); });

$("#theme").addEventListener("click", () => {
  const root = document.documentElement;
  const dark = root.dataset.theme
    ? root.dataset.theme === "dark"
    : window.matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = dark ? "light" : "dark";
  try { localStorage.setItem("partita-theme", root.dataset.theme); } catch (e) { /* ignore */ }
});

async function start() {
  try {
    store.info = await api("/api/info");
  } catch (e) {
    setLive("denied", "access refused");
    $("#main").replaceChildren(h("section", { class: "card" }, emptyState(
      e.status === 401 ? "This monitor needs its token" : "The monitor does not answer",
      e.status === 401 ? "Open the address partita printed (it ends with ?token=…)." : e.message)));
    return;
  }
  const workdir = $("#workdir");
  workdir.textContent = store.info.workdir;
  workdir.title = `Work directory: ${store.info.workdir} (on ${store.info.host})`;
  render();
  feed.connect();
}

start();
