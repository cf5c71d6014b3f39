// kvgate web console: plain JavaScript, no framework, no build step.  It talks to the
// database's REST API like any client (POST <base>/ and <base>/pipeline with a token).
// Every value is put into the page with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
const STORE = "kvgate-console";
const HISTORY = "kvgate-console-history";
const SIZE = { string: "STRLEN", hash: "HLEN", list: "LLEN", set: "SCARD", zset: "ZCARD", stream: "XLEN" };
const PAGE = 100; // elements of a collection shown at once
const MAX_EDIT = 1 << 20; // bytes of a string value shown (and editable) at most

const state = {
  token: null, db: null, readOnly: true,
  cursors: ["0"], page: 0, next: "0",
  key: null, type: null,
  history: [], historyAt: 0,
};

// --- the REST API ----------------------------------------------------------------------
async function call(path, body) {
  const res = await fetch(state.db.path + path, {
    method: "POST",
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON: shown raw */ }
  return { status: res.status, text, json };
}

async function run(...args) {
  const { json, text } = await call("/", args);
  if (!json || "error" in json) throw new Error(json ? json.error : text);
  return json.result;
}

async function pipeline(commands) {
  if (!commands.length) return [];
  const { json, text } = await call("/pipeline", commands);
  if (!Array.isArray(json)) throw new Error(json ? json.error : text);
  return json;
}

// --- small DOM helpers -----------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function show(id, on) { $(id).hidden = !on; }
// body[data-busy] while requests of the page are under way (a cue for people and tests).
let pending = 0;
async function busy(work) {
  pending += 1;
  document.body.dataset.busy = "1";
  try { return await work(); } finally {
    pending -= 1;
    if (!pending) delete document.body.dataset.busy;
  }
}
function fail(id, err) { $(id).textContent = err ? String(err.message || err) : ""; }
function ttlText(ms) {
  if (ms === -1) return "no expiry";
  if (ms === -2) return "gone";
  if (typeof ms !== "number") return "?";
  return ms >= 10000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}

function confirmThen(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    const done = (ok) => () => { dialog.close(); resolve(ok); };
    $("confirm-ok").onclick = done(true);
    $("confirm-cancel").onclick = done(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
  });
}

// --- signing in ------------------------------------------------------------------------
async function signIn(token) {
  const res = await fetch("/_kvgate/console/session", {
    method: "POST", headers: { Authorization: `Bearer ${token}` },
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body.databases;
}

function open(token, db) {
  state.token = token; state.db = db; state.readOnly = db.access !== "read-write";
  sessionStorage.setItem(STORE, JSON.stringify({ token, db }));
  document.body.classList.toggle("readonly", state.readOnly);
  $("who").textContent = `${db.name} (${db.path || "/"}) · ${db.backend} · ${db.access}`;
  show("signin", false); show("app", true); show("signout", true);
  scan(true);
}

function signOut() {
  sessionStorage.removeItem(STORE);
  location.reload();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  fail("signin-error");
  const token = $("token").value.trim();
  try {
    const dbs = await signIn(token);
    if (dbs.length === 1) return open(token, dbs[0]);
    const select = $("database");
    select.replaceChildren(...dbs.map((db, i) => el("option", { value: i, text: `${db.name} (${db.path || "/"})` })));
    show("choose", true);
    $("choose-ok").onclick = () => open(token, dbs[Number(select.value)]);
  } catch (err) { fail("signin-error", err); }
});
$("signout").addEventListener("click", signOut);

// --- the key browser -------------------------------------------------------------------
function scan(fresh) { return busy(() => scanPage(fresh)); }

async function scanPage(fresh) {
  if (fresh) { state.cursors = ["0"]; state.page = 0; }
  const cursor = state.cursors[state.page];
  const args = ["SCAN", cursor, "MATCH", $("match").value || "*", "COUNT", $("count").value, "WITHTYPE"];
  if ($("type-filter").value) args.push("TYPE", $("type-filter").value);
  const body = $("keys").tBodies[0];
  try {
    const [next, flat] = await run(...args);
    const keys = [];
    for (let i = 0; i < flat.length; i += 2) keys.push({ name: flat[i], type: flat[i + 1] });
    const details = await pipeline(keys.flatMap((k) => [["PTTL", k.name], SIZE[k.type] ? [SIZE[k.type], k.name] : ["TYPE", k.name]]));
    body.replaceChildren(...keys.map((k, i) => {
      const ttl = details[2 * i]?.result;
      const size = SIZE[k.type] ? details[2 * i + 1]?.result : "—";
      const row = el("tr", { onclick: () => select(k.name, row) },
        el("td", { text: k.name }), el("td", { text: k.type }), el("td", { text: ttlText(ttl) }), el("td", { text: String(size) }));
      row.dataset.key = k.name;
      return row;
    }));
    state.next = next;
    $("page").textContent = `page ${state.page + 1} · ${keys.length} keys${next === "0" ? " · end of scan" : ""}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = next === "0";
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { class: "error", colSpan: 4, text: String(err.message) })));
  }
}

$("scan-form").addEventListener("submit", (event) => { event.preventDefault(); scan(true); });
$("next").addEventListener("click", () => { state.cursors[state.page + 1] = state.next; state.page += 1; scan(false); });
$("prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); scan(false); });

// --- one key ---------------------------------------------------------------------------
async function select(name, row) {
  for (const r of $("keys").tBodies[0].rows) r.classList.toggle("selected", r === row);
  state.key = name;
  await refresh();
}

function refresh() { return busy(showKey); }

async function showKey() {
  const key = state.key;
  fail("detail-error");
  show("hint", false);
  show("detail", true);
  $("detail-key").textContent = key;
  try {
    const [type, pttl] = (await pipeline([["TYPE", key], ["PTTL", key]])).map((e) => e.result);
    state.type = type;
    $("detail-type").textContent = type;
    $("detail-ttl").textContent = `TTL: ${ttlText(pttl)}`;
    const size = SIZE[type] ? await run(SIZE[type], key) : null;
    $("detail-size").textContent = size === null ? "" : `size: ${size}`;
    const viewer = $("viewer");
    viewer.replaceChildren();
    if (type === "none") { viewer.append(el("p", { class: "muted", text: "This key no longer exists." })); return; }
    await (VIEWERS[type] || rawViewer)(key, viewer, 0);
  } catch (err) { fail("detail-error", err); }
}

function act(fn) {
  return () => busy(async () => {
    fail("detail-error");
    try { await fn(); await showKey(); } catch (err) { fail("detail-error", err); }
  });
}

function editor(value, rows = 1) {
  return rows > 1 ? el("textarea", { value, rows, spellcheck: false }) : el("input", { value, spellcheck: false });
}

function table(head, rows) {
  return el("table", { class: "elements" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows));
}

function moreButton(viewer, key, start, hasMore, viewerFn) {
  if (!hasMore) return;
  viewer.append(el("button", { type: "button", text: `Next ${PAGE}`, onclick: () => { viewer.replaceChildren(); viewerFn(key, viewer, start); } }));
}

const VIEWERS = {
  async string(key, viewer) {
    // A big value is shown in part, and a value that is not UTF-8 text cannot round-trip
    // through a text box: both are read-only here (the command line still writes them).
    const length = await run("STRLEN", key);
    const whole = length <= MAX_EDIT;
    const value = whole ? await run("GET", key) : await run("GETRANGE", key, "0", String(MAX_EDIT - 1));
    const binary = (value ?? "").includes("\uFFFD");
    const box = editor(value ?? "", 8);
    box.id = "string-value";
    box.readOnly = state.readOnly || !whole || binary;
    if (!whole) viewer.append(el("p", { class: "muted", text: `The first ${MAX_EDIT} of ${length} bytes, read-only.` }));
    if (binary) viewer.append(el("p", { class: "muted", text: "Not UTF-8 text (shown with U+FFFD): read-only here." }));
    viewer.append(box);
    if (whole && !binary) {
      viewer.append(el("div", { class: "row rw" },
        el("button", { type: "button", id: "string-save", text: "Save", onclick: act(() => run("SET", key, box.value, "KEEPTTL")) })));
    }
  },

  async hash(key, viewer, cursor = "0") {
    const [next, flat] = await run("HSCAN", key, String(cursor || 0), "COUNT", String(PAGE));
    const rows = [];
    for (let i = 0; i < flat.length; i += 2) {
      const field = flat[i]; const box = editor(flat[i + 1]); box.readOnly = state.readOnly;
      rows.push(el("tr", {}, el("td", { text: field }), el("td", {}, box), el("td", { class: "actions rw" },
        el("button", { type: "button", text: "Save", onclick: act(() => run("HSET", key, field, box.value)) }),
        el("button", { type: "button", class: "danger", text: "Delete", onclick: act(async () => {
          if (await confirmThen(`Delete field ${field} of ${key}?`)) await run("HDEL", key, field);
        }) }))));
    }
    viewer.append(table(["field", "value", ""], rows));
    const f = el("input", { placeholder: "field" }); const v = el("input", { placeholder: "value" });
    viewer.append(el("div", { class: "row rw" }, f, v, el("button", { type: "button", text: "Add field", onclick: act(() => run("HSET", key, f.value, v.value)) })));
    if (next !== "0") viewer.append(el("button", { type: "button", text: "More fields", onclick: () => { viewer.replaceChildren(); VIEWERS.hash(key, viewer, next); } }));
  },

  async list(key, viewer, start = 0) {
    const items = await run("LRANGE", key, String(start), String(start + PAGE - 1));
    const rows = items.map((item, i) => {
      const index = start + i; const box = editor(item); box.readOnly = state.readOnly;
      return el("tr", {}, el("td", { text: String(index) }), el("td", {}, box), el("td", { class: "actions rw" },
        el("button", { type: "button", text: "Save", onclick: act(() => run("LSET", key, String(index), box.value)) }),
        el("button", { type: "button", class: "danger", text: "Remove", onclick: act(async () => {
          if (!(await confirmThen(`Remove element ${index} of ${key}?`))) return;
          const mark = `__kvgate_console_removed_${Date.now()}__`;
          await pipeline([["LSET", key, String(index), mark], ["LREM", key, "1", mark]]);
        }) })));
    });
    viewer.append(table(["index", "element", ""], rows));
    const v = el("input", { placeholder: "element" });
    viewer.append(el("div", { class: "row rw" }, v,
      el("button", { type: "button", text: "Push at head", onclick: act(() => run("LPUSH", key, v.value)) }),
      el("button", { type: "button", text: "Push at tail", onclick: act(() => run("RPUSH", key, v.value)) })));
    if (start > 0) viewer.append(el("button", { type: "button", text: "Previous", onclick: () => { viewer.replaceChildren(); VIEWERS.list(key, viewer, Math.max(0, start - PAGE)); } }));
    moreButton(viewer, key, start + PAGE, items.length === PAGE, VIEWERS.list);
  },

  async set(key, viewer, cursor = "0") {
    const [next, members] = await run("SSCAN", key, String(cursor || 0), "COUNT", String(PAGE));
    const rows = members.map((m) => el("tr", {}, el("td", { text: m }), el("td", { class: "actions rw" },
      el("button", { type: "button", class: "danger", text: "Remove", onclick: act(async () => {
        if (await confirmThen(`Remove ${m} from ${key}?`)) await run("SREM", key, m);
      }) }))));
    viewer.append(table(["member", ""], rows));
    const v = el("input", { placeholder: "member" });
    viewer.append(el("div", { class: "row rw" }, v, el("button", { type: "button", text: "Add member", onclick: act(() => run("SADD", key, v.value)) })));
    if (next !== "0") viewer.append(el("button", { type: "button", text: "More members", onclick: () => { viewer.replaceChildren(); VIEWERS.set(key, viewer, next); } }));
  },

  async zset(key, viewer, start = 0) {
    const flat = await run("ZRANGE", key, String(start), String(start + PAGE - 1), "WITHSCORES");
    const rows = [];
    for (let i = 0; i < flat.length; i += 2) {
      const member = flat[i]; const box = editor(flat[i + 1]); box.readOnly = state.readOnly;
      rows.push(el("tr", {}, el("td", { text: String(start + i / 2) }), el("td", { text: member }), el("td", {}, box), el("td", { class: "actions rw" },
        el("button", { type: "button", text: "Save score", onclick: act(() => run("ZADD", key, box.value, member)) }),
        el("button", { type: "button", class: "danger", text: "Remove", onclick: act(async () => {
          if (await confirmThen(`Remove ${member} from ${key}?`)) await run("ZREM", key, member);
        }) }))));
    }
    viewer.append(table(["rank", "member", "score", ""], rows));
    const s = el("input", { placeholder: "score", type: "text" }); const m = el("input", { placeholder: "member" });
    viewer.append(el("div", { class: "row rw" }, s, m, el("button", { type: "button", text: "Add member", onclick: act(() => run("ZADD", key, s.value, m.value)) })));
    if (start > 0) viewer.append(el("button", { type: "button", text: "Previous", onclick: () => { viewer.replaceChildren(); VIEWERS.zset(key, viewer, Math.max(0, start - PAGE)); } }));
    moreButton(viewer, key, start + PAGE, flat.length === 2 * PAGE, VIEWERS.zset);
  },

  async "ReJSON-RL"(key, viewer) {
    let text;
    try { text = await run("JSON.GET", key); } catch (err) { return rawViewer(key, viewer); }
    let pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as it came */ }
    const box = editor(pretty, 12);
    box.id = "json-value";
    const editable = !state.readOnly && state.db.json;
    box.readOnly = !editable;
    viewer.append(box);
    if (editable) {
      viewer.append(el("div", { class: "row" },
        el("button", { type: "button", id: "json-save", text: "Save (JSON.SET)", onclick: act(() => {
          JSON.parse(box.value); // a syntax error is shown, nothing is sent
          return run("JSON.SET", key, "$", box.value);
        }) })));
    }
  },

  async stream(key, viewer) {
    return rawViewer(key, viewer, 0, ["XRANGE", key, "-", "+", "COUNT", String(PAGE)]);
  },
};

// Types without a viewer of their own: read-only, the raw reply as the REST API gives it.
async function rawViewer(key, viewer, _start, command) {
  const args = command || RAW_READS[state.type]?.(key);
  if (!args) {
    viewer.append(el("p", { class: "muted", text: `No viewer for type ${state.type}: read it from the command line.` }));
    return;
  }
  const { text } = await call("/", args);
  viewer.append(el("p", { class: "muted", text: `${args.join(" ")} (read-only):` }), el("pre", { id: "raw-value", text }));
}
const RAW_READS = { "ReJSON-RL": (k) => ["JSON.GET", k] };

// --- TTL and delete --------------------------------------------------------------------
$("ttl-set").addEventListener("click", act(async () => {
  const seconds = $("ttl-input").value;
  if (!/^[1-9][0-9]*$/.test(seconds)) throw new Error("TTL: a whole number of seconds, at least 1");
  if (await confirmThen(`Expire ${state.key} in ${seconds} s?`)) await run("EXPIRE", state.key, seconds);
}));
$("ttl-persist").addEventListener("click", act(async () => {
  if (await confirmThen(`Remove the expiry of ${state.key}?`)) await run("PERSIST", state.key);
}));
$("delete").addEventListener("click", () => busy(async () => {
  if (!(await confirmThen(`Delete ${state.key}? This cannot be undone.`))) return;
  try {
    await run("DEL", state.key);
    show("detail", false);
    show("hint", true);
    await scanPage(false);
  } catch (err) { fail("detail-error", err); }
}));

// --- new keys --------------------------------------------------------------------------
$("new-key").addEventListener("click", () => { show("newkey", true); $("nk-name").focus(); });
$("nk-cancel").addEventListener("click", () => show("newkey", false));
$("newkey-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy(createKey);
});

async function createKey() {
  fail("newkey-error");
  const name = $("nk-name").value; const type = $("nk-type").value;
  const field = $("nk-field").value; const value = $("nk-value").value;
  const make = {
    string: () => ["SET", name, value],
    hash: () => ["HSET", name, field, value],
    list: () => ["RPUSH", name, value],
    set: () => ["SADD", name, value],
    zset: () => ["ZADD", name, field || "0", value],
    "ReJSON-RL": () => ["JSON.SET", name, "$", value],
  }[type];
  try {
    const exists = await run("EXISTS", name);
    if (exists && !(await confirmThen(`${name} exists already: write to it anyway?`))) return;
    await run(...make());
    show("newkey", false);
    state.key = name;
    await Promise.all([scanPage(true), showKey()]);
  } catch (err) { fail("newkey-error", err); }
}

// --- the command line ------------------------------------------------------------------
// Words split on spaces; "double" and 'single' quotes group, backslash escapes in "double".
export function parseLine(line) {
  const words = []; let word = null; let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) { quote = null; continue; }
      if (c === "\\" && quote === '"' && i + 1 < line.length) {
        const n = line[++i];
        word += { n: "\n", r: "\r", t: "\t" }[n] ?? n;
        continue;
      }
      word += c;
    } else if (c === '"' || c === "'") { quote = c; word = word ?? ""; }
    else if (/\s/.test(c)) { if (word !== null) { words.push(word); word = null; } }
    else word = (word ?? "") + c;
  }
  if (quote) throw new Error("unbalanced quotes");
  if (word !== null) words.push(word);
  return words;
}

function print(line, cls) {
  const out = $("cli-output");
  out.append(el("span", { class: cls || "", text: `${line}\n` }));
  out.scrollTop = out.scrollHeight;
}

$("cli-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy(() => runLine());
});

async function runLine() {
  const input = $("cli-input");
  const line = input.value.trim();
  if (!line) return;
  state.history = state.history.filter((h) => h !== line).concat(line).slice(-100);
  state.historyAt = state.history.length;
  localStorage.setItem(HISTORY, JSON.stringify(state.history));
  input.value = "";
  print(`> ${line}`, "muted");
  try {
    const args = parseLine(line);
    const { status, text } = await call("/", args);
    print(status === 200 ? text : `${status} ${text}`);
    if (state.key) await showKey();
  } catch (err) { print(String(err.message || err), "error"); }
}

$("cli-input").addEventListener("keydown", (event) => {
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  event.preventDefault();
  const step = event.key === "ArrowUp" ? -1 : 1;
  state.historyAt = Math.min(state.history.length, Math.max(0, state.historyAt + step));
  event.target.value = state.history[state.historyAt] ?? "";
});

// --- start -----------------------------------------------------------------------------
try { state.history = JSON.parse(localStorage.getItem(HISTORY) || "[]"); } catch { state.history = []; }
state.historyAt = state.history.length;
const saved = sessionStorage.getItem(STORE);
if (saved) {
  try { const { token, db } = JSON.parse(saved); open(token, db); } catch { sessionStorage.removeItem(STORE); }
}
document.body.dataset.ready = "1";
