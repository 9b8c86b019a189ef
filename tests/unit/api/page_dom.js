// A minimal DOM for agent/ui/status.js under Node, for tests/unit/api/test_status_page.py: the elements the
// page looks up by id (tables get a body and their header's column count from index.html), created rows
// and cells, a fetch that answers one status document, timers that run only when the harness says so.
// It prints what the page wrote (text, class, colSpan, data-*) as JSON. No network, no layout.
// Usage: node page_dom.js <status.js> <document.json> <tables.json: {table id: columns}>
"use strict";

const fs = require("fs");
const vm = require("vm");

const [scriptPath, docPath, tablesPath] = process.argv.slice(2);
const statusDoc = JSON.parse(fs.readFileSync(docPath, "utf8"));
const tables = JSON.parse(fs.readFileSync(tablesPath, "utf8"));

class Element {
  constructor(tag) {
    this.tagName = tag;
    this.children = [];
    this.textContent = "";
    this.className = "";
    this.hidden = false;
    this.dataset = {};
    this.colSpan = 1;
    this.value = "";
    this.listeners = {};
    this.classes = new Set();
    this.classList = { toggle: (name, on) => (on ? this.classes.add(name) : this.classes.delete(name)) };
  }

  appendChild(child) { this.children.push(child); return child; }
  append(...children) { this.children.push(...children); }
  replaceChildren(...children) { this.children = children; }
  addEventListener(type, listener) { this.listeners[type] = listener; }
}

const byId = {};
function getElementById(id) {
  if (!byId[id]) {
    const el = new Element(id in tables ? "table" : "element");
    if (id in tables) {
      el.tBodies = [new Element("tbody")];
      el.tHead = { rows: [{ cells: { length: tables[id] } }] };
    }
    byId[id] = el;
  }
  return byId[id];
}

const docListeners = {};
const document = {
  body: new Element("body"),
  getElementById,
  createElement: (tag) => new Element(tag),
  createTextNode: (text) => Object.assign(new Element("#text"), { textContent: text }),
  addEventListener: (type, listener) => { docListeners[type] = listener; },
};

const timers = new Map();
let nextTimer = 1;
const fetched = [];
const sandbox = {
  document,
  console,
  performance,
  AbortController,
  sessionStorage: { getItem: () => null, setItem: () => undefined },
  setTimeout: (fn) => { timers.set(nextTimer, fn); return nextTimer++; },
  clearTimeout: (id) => timers.delete(id),
  setInterval: () => 0,
  fetch: async (url, options) => {
    fetched.push({ url, method: (options && options.method) || "GET" });
    return { ok: true, status: 200, json: async () => statusDoc };
  },
};

function textOf(el) {
  return el.children.length ? el.children.map(textOf).join("") : el.textContent;
}

function dump(el) {
  if (el.tBodies) {
    return { rows: el.tBodies[0].children.map((tr) => ({
      data: { ...tr.dataset },
      cells: tr.children.map((c) => ({ text: textOf(c), className: c.className, colSpan: c.colSpan })),
    })) };
  }
  return { text: textOf(el), className: el.className, hidden: el.hidden };
}

(async () => {
  vm.runInNewContext(fs.readFileSync(scriptPath, "utf8"), sandbox, { filename: scriptPath });
  docListeners.DOMContentLoaded();
  const first = [...timers.entries()];  // the first poll, scheduled at once
  if (first.length !== 1) throw new Error(`expected one scheduled poll, found ${first.length}`);
  timers.delete(first[0][0]);
  await first[0][1]();
  const out = { fetched, elements: {} };
  for (const [id, el] of Object.entries(byId)) out.elements[id] = dump(el);
  process.stdout.write(JSON.stringify(out));
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
