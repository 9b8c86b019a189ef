// memgraph-ha status page: polls this agent's api/v1/status (a non-leader forwards it to the leader) at
// most every 2 s and renders it in place; shows how old the data is. Read-only: it sends GET requests only.
// With HA_STATUS_AUTH=token it asks for the API token once and keeps it in sessionStorage (this tab only);
// the token goes in the Authorization header, never in the URL. Everything is written with textContent.
"use strict";

(() => {
  const POLL_MS = 2000;
  const TIMEOUT_MS = 1800;
  const STALE_S = 10;
  const TOKEN_KEY = "memgraph-ha-token";
  const LEADER_ERRORS = new Set(["no-leader", "leader-unreachable", "not-leader", "bad-leader-answer"]);

  const $ = (id) => document.getElementById(id);
  const state = { doc: null, receivedAt: 0, baseAge: 0, problem: null, timer: 0, polls: 0 };

  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  function setToken(value) {
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { /* storage disabled: not kept */ }
  }

  function text(value) {
    return value === null || value === undefined || value === "" ? "\u2013" : String(value);
  }

  function seconds(value) {
    return typeof value === "number" ? value.toFixed(value < 10 ? 3 : 1) + " s" : "\u2013";
  }

  function when(epochOrIso) {
    if (epochOrIso === null || epochOrIso === undefined) return "\u2013";
    const d = typeof epochOrIso === "number" ? new Date(epochOrIso * 1000) : new Date(epochOrIso);
    return isNaN(d.getTime()) ? String(epochOrIso) : d.toLocaleString();
  }

  function cell(row, value, className) {
    const td = document.createElement("td");
    td.textContent = text(value);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function fill(tableId, items, build) {
    const body = $(tableId).tBodies[0];
    const rows = items.map((item) => {
      const tr = document.createElement("tr");
      build(tr, item);
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, "None.");
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  function yesNo(row, value) {
    cell(row, value === true ? "yes" : value === false ? "no" : null, value === true ? "yes" : "no");
  }

  function renderRecord(doc) {
    const c = doc.cluster || {};
    $("record-main").textContent = text(c.main);
    $("record-sync").textContent = c.sync_replica ? `${c.sync_replica} (${text(c.sync_mode)})` : "none";
    $("record-generation").textContent = text(c.generation);
    $("record-paused").textContent = c.paused ? "yes: automatic failover is off" : "no";
    $("record-leader").textContent = text(c.leader);
    $("record-healthy").textContent = c.healthy ? "yes" : "no";
    $("record-healthy").className = c.healthy ? "yes" : "no";
    $("record-verdict").textContent = text(c.verdict);
    const diverged = c.diverged || [];
    $("diverged").textContent = diverged.length ? diverged.join(", ") + " (quarantined)" : "None.";
    const pod = (doc.pods || [])[0];
    $("cluster-name").textContent = pod ? "\u00b7 " + pod.name.replace(/-\d+$/, "") : "";
  }

  function renderPods(doc) {
    const leader = (doc.cluster || {}).leader;
    fill("pods", doc.pods || [], (tr, p) => {
      tr.dataset.pod = p.name;
      tr.dataset.role = p.role || "unknown";
      if (p.role === "main") tr.className = "main";
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = p.name;
      tr.appendChild(name);
      cell(tr, p.role === "main" ? "MAIN" : p.role, p.role === "main" ? "role-main" : "");
      cell(tr, p.role_label);
      yesNo(tr, p.ready);
      cell(tr, p.name === leader ? "\u2605 leader" : "");
      const r = p.replica || {};
      cell(tr, r.mode ? r.mode.toUpperCase() : null);
      cell(tr, r.status);
      cell(tr, r.behind, "num");
      const notes = [];
      if (p.is_sync_replica) notes.push("sync replica");
      if (p.diverged) notes.push("diverged");
      if (p.terminating) notes.push("terminating");
      if (!p.memgraph_reachable) notes.push("unreachable: " + text(p.error));
      cell(tr, notes.join("; "), p.memgraph_reachable ? "" : "error");
    });
  }

  function renderHistory(doc) {
    fill("history", (doc.cluster || {}).history || [], (tr, h) => {
      cell(tr, when(h.at));
      cell(tr, h.kind);
      cell(tr, h.from);
      cell(tr, h.to);
      cell(tr, h.generation, "num");
      cell(tr, seconds(h.duration_s), "num");
      cell(tr, h.write_pause_s === null ? "not measured" : seconds(h.write_pause_s), "num");
      cell(tr, h.outcome, h.outcome === "done" ? "" : "error");
    });
  }

  function renderPrestop(doc) {
    const age = doc.prestop_records_age_s;
    $("prestop-caption").textContent = "The newest record on each pod's log volume" +
      (typeof age === "number" ? `, collected ${age.toFixed(1)} s before this answer` : ", being collected");
    fill("prestop", doc.prestop_records || [], (tr, e) => {
      const r = e.record || {};
      cell(tr, e.pod);
      if (!e.record) {
        const td = cell(tr, e.error ? "not collected: " + e.error : "no record", e.error ? "error" : "");
        td.colSpan = 7;
        return;
      }
      cell(tr, when(r.started));
      cell(tr, r.ended ? when(r.ended) : r.hook_started ? "never ended" : "no hook run");
      cell(tr, r.exit_code, r.exit_code === 0 ? "yes num" : "no num");
      cell(tr, seconds(r.duration_s), "num");
      cell(tr, r.attempts, "num");
      cell(tr, r.last_verdict);
      cell(tr, r.last_line);
    });
  }

  function bytes(value) {
    if (typeof value !== "number" || value < 0) return "\u2013";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = value;
    let i = 0;
    for (; v >= 1024 && i < units.length - 1; i += 1) v /= 1024;
    return (i ? v.toFixed(1) : String(v)) + " " + units[i];
  }

  const RESEED_STEPS = {
    archive: "pod deleted, its init container archives its files",
    catchup: "registered ASYNC, recovering from the MAIN",
    halted: "halted on this pod incarnation (retried when the pod restarts)",
  };

  function renderDiverged(doc) {
    const r = (doc.cluster || {}).reseed;
    $("reseed").textContent = r
      ? `Re-seed of ${r.pod} (generation ${text(r.generation)}): ${RESEED_STEPS[r.step] || text(r.step)}`
      : "No re-seed under way.";
    const rows = [];
    for (const p of doc.pods || []) {
      const d = p.data;
      if (!d) continue;
      if (d.outcome === "refused" || d.outcome === "failed") {
        rows.push({ pod: p.name, note: `re-seed ${d.outcome}: ${text(d.reason)}`, error: true });
      }
      for (const a of d.archives || []) rows.push({ pod: p.name, archive: a });
      if (d.archives_omitted > 0) {
        rows.push({ pod: p.name, note: `${d.archives_omitted} older archive(s) not listed; ` +
          `${bytes(d.archived_bytes)} archived in all` });
      }
    }
    fill("archives", rows, (tr, row) => {
      tr.dataset.pod = row.pod;
      cell(tr, row.pod);
      if (!row.archive) {
        const td = cell(tr, row.note, row.error ? "error" : "");
        td.colSpan = 5;
        return;
      }
      const a = row.archive;
      cell(tr, a.name);
      cell(tr, bytes(a.bytes), "num");
      cell(tr, a.generation, "num");
      cell(tr, when(a.created));
      cell(tr, (a.holds || []).join(", "));
    });
  }

  function renderWarnings() {
    const list = [];
    if (state.problem) list.push(state.problem);
    if (state.doc) list.push(...((state.doc.cluster || {}).warnings || []));
    const items = list.map((w) => {
      const li = document.createElement("li");
      li.dataset.code = w.code;
      const strong = document.createElement("strong");
      strong.textContent = w.code;
      li.append(strong, document.createTextNode(w.text));
      return li;
    });
    $("warnings").replaceChildren(...items);
    $("no-warnings").hidden = items.length > 0;
  }

  function render(doc) {
    renderRecord(doc);
    renderPods(doc);
    renderHistory(doc);
    renderPrestop(doc);
    renderDiverged(doc);
    const via = doc.via ? ` via ${doc.via}` : "";
    $("answered-by").textContent = text(doc.answered_by) + via;
  }

  function tickAge() {
    if (!state.doc) return;
    const age = state.baseAge + (performance.now() - state.receivedAt) / 1000;
    $("data-age").textContent = age.toFixed(1) + " s";
    document.body.classList.toggle("stale", age > STALE_S);
  }

  function askToken(why) {
    $("token-why").textContent = why;
    $("token-form").hidden = false;
  }

  function problemFrom(status, body) {
    const code = body && typeof body.error === "string" ? body.error : `http-${status}`;
    const detail = body && typeof body.detail === "string" ? body.detail : "no details";
    if (LEADER_ERRORS.has(code)) return { code: "leader-unknown", text: `no leader answers right now (${code}: ${detail})` };
    return { code, text: detail };
  }

  async function poll() {
    state.polls += 1;
    const ctrl = new AbortController();
    const abort = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    try {
      const headers = { Accept: "application/json" };
      const token = getToken();
      if (token) headers.Authorization = "Bearer " + token;
      const resp = await fetch("api/v1/status", { headers, cache: "no-store", signal: ctrl.signal });
      let body = null;
      try { body = await resp.json(); } catch (e) { body = null; }
      if (resp.ok && body && body.cluster) {
        state.doc = body;
        state.receivedAt = performance.now();
        state.baseAge = typeof body.observation_age_s === "number" ? body.observation_age_s : 0;
        state.problem = null;
        $("token-form").hidden = true;
        render(body);
      } else if (resp.status === 401) {
        state.problem = { code: "unauthorized", text: "the status needs the API token (HA_STATUS_AUTH=token)" };
        askToken(token ? "The token was refused; enter it again." : "This cluster's status needs the API token.");
      } else {
        state.problem = problemFrom(resp.status, body);
      }
    } catch (e) {
      state.problem = { code: "agent-unreachable", text: `this agent did not answer (${e.name}); showing the last data` };
    } finally {
      clearTimeout(abort);
      renderWarnings();
      tickAge();
      schedule(POLL_MS);
    }
  }

  function schedule(ms) {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, ms);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      setToken($("token").value.trim());
      $("token").value = "";
      $("token-form").hidden = true;
      schedule(0);
    });
    setInterval(tickAge, 500);
    schedule(0);
  });
})();
