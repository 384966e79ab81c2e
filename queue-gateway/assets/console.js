// The operator console: who is signed in, live figures for the events this operator may
// manage, open/pause/close, rate and cap, and the audit trail. Everything an operator or the
// trail supplies is shown as text, never as HTML.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("marquee.operator") || "";

  async function admin(method, path, body) {
    const r = await fetch("/admin/v1" + path, {
      method,
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: body && JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (r.status === 401) { me = null; $("login").hidden = false; $("who").hidden = true; throw new Error("Sign in with an operator token."); }
    if (!r.ok) {
      const err = new Error(data.detail || `${method} ${path}: ${r.status}`);
      err.fields = data.errors || [];
      throw err;
    }
    return data;
  }

  function cell(text) { const td = document.createElement("td"); td.textContent = text == null ? "–" : String(text); return td; }

  let me = null;
  const ROLE = { admin: "admin", event_manager: "event manager", scanner: "door scanner" };

  async function whoAmI() {
    me = await admin("GET", "/me");
    const limited = me.events.length ? ` for ${me.events.join(", ")}` : "";
    $("who-text").textContent = `Signed in as ${me.name} (${ROLE[me.role] || me.role}${limited}).`;
    $("who").hidden = false;
    $("login").hidden = true;
  }

  async function refreshAudit() {
    const path = me.may.audit_all ? "/audit?limit=20" : me.events.length ? `/audit?limit=20&event_id=${encodeURIComponent(me.events[0])}` : null;
    if (!path) return;
    const { entries } = await admin("GET", path);
    const body = $("audit");
    body.innerHTML = "";
    for (const a of entries) {
      const tr = document.createElement("tr");
      // A creation lists everything it set: say "created" and keep the rest for the tooltip.
      const change = !a.before && a.after ? "created" : a.after ? Object.entries(a.after).map(([k, v]) => `${k}: ${a.before && k in a.before ? JSON.stringify(a.before[k]) + " → " : ""}${JSON.stringify(v)}`).join("; ") : "";
      [new Date(a.at).toLocaleString(), a.operator, a.action, a.target, change].forEach((v) => tr.appendChild(cell(v)));
      if (a.after) tr.lastChild.title = JSON.stringify(a.after);
      body.appendChild(tr);
    }
    $("audit-card").hidden = false;
  }

  // Each show with what a cancellation has done so far; cancelling asks first.
  async function refreshShows() {
    const { shows } = await admin("GET", "/shows");
    const body = $("shows");
    body.innerHTML = "";
    for (const sh of shows) {
      const tr = document.createElement("tr");
      const when = new Date(sh.starts_at).toLocaleString([], { timeZone: sh.time_zone, dateStyle: "medium", timeStyle: "short" });
      const c = sh.cancellation;
      const status = sh.status !== "cancelled" ? "on sale"
        : !c ? "cancelled"
        : c.done ? `cancelled: ${c.refunded} refunded`
        : `cancelling: ${c.refunded} of ${c.total == null ? "?" : c.total} refunded…`;
      [`${sh.title} — ${sh.theater}, ${sh.city}`, when, sh.event_id, `${sh.sold_seats} / ${sh.seat_count}`, status].forEach((v) => tr.appendChild(cell(v)));
      const actions = document.createElement("td");
      if (sh.status !== "cancelled") {
        const b = document.createElement("button");
        b.className = "secondary";
        b.textContent = "Cancel show";
        b.setAttribute("aria-label", `Cancel show: ${sh.title} at ${sh.theater}, ${when}`);
        b.onclick = () => {
          if (!window.confirm(`Cancel ${sh.title} at ${sh.theater}, ${when}? Every ticket is refunded and every fan emailed. This cannot be undone.`)) return;
          admin("POST", `/shows/${sh.show_id}/cancel`, {}).then(refresh, show);
        };
        actions.appendChild(b);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    }
    $("shows-card").hidden = false;
  }

  async function refresh() {
    try {
      if (!me) await whoAmI();
      if (me.role === "scanner") {
        for (const id of ["events-card", "create-card", "shows-card", "audit-card", "message-card", "codes-card", "charts-card"]) $(id).hidden = true;
        return show(new Error("Door scanners validate tickets at the door; there is nothing to manage here."));
      }
      const { events } = await admin("GET", "/events");
      const body = $("events");
      body.innerHTML = "";
      // Live sales first (open, paused, pre-queue), closed ones only when asked for.
      const order = { open: 0, paused: 1, prequeue: 2, closed: 3 };
      const shown = events
        .filter((e) => $("show-closed").checked || e.state !== "closed")
        .sort((a, b) => (order[a.state] ?? 4) - (order[b.state] ?? 4));
      $("closed-count").textContent = `(${events.filter((e) => e.state === "closed").length})`;
      for (const e of shown) {
        const tr = document.createElement("tr");
        // The event's name, id and controls share the first cell, so the row fits a laptop.
        const first = document.createElement("td");
        const name = document.createElement("strong");
        name.textContent = e.name;
        const id = document.createElement("div");
        id.className = "muted small"; id.textContent = e.id;
        const actions = document.createElement("div");
        actions.className = "row-actions";
        first.append(name, id, actions);
        tr.appendChild(first);
        [e.sold_out ? e.state + ", sold out" : e.state, e.waiting, e.active, e.admitted_last_minute, e.dropped_last_minute, e.held_seats, e.sold_seats].forEach((v) => tr.appendChild(cell(v)));
        for (const field of ["rate_per_minute", "max_active", "pow_bits"]) {
          const td = document.createElement("td");
          const input = document.createElement("input");
          input.type = "number"; input.value = e[field]; input.className = "num";
          input.setAttribute("aria-label", field + " for " + e.id);
          input.onchange = () => admin("PATCH", `/events/${e.id}`, { [field]: Number(input.value) }).then(refresh, show);
          td.appendChild(input); tr.appendChild(td);
        }
        const mode = document.createElement("select");
        mode.setAttribute("aria-label", "Queue mode for " + e.id);
        for (const [value, label] of [["always", "Always queue"], ["safety_net", "Safety net"]]) {
          const o = document.createElement("option");
          o.value = value; o.textContent = label; o.selected = e.queue_mode === value;
          mode.appendChild(o);
        }
        mode.title = "Safety net: fans go straight through while nobody waits and the rate and cap allow";
        mode.onchange = () => admin("PATCH", `/events/${e.id}`, { queue_mode: mode.value }).then(refresh, show);
        actions.appendChild(mode);
        for (const st of ["open", "paused", "closed"]) {
          if (st === e.state) continue;
          const b = document.createElement("button");
          b.className = "secondary"; b.textContent = st === "paused" ? "Pause" : st === "open" ? "Open" : "Close";
          b.onclick = () => admin("PATCH", `/events/${e.id}`, { state: st }).then(refresh, show);
          b.setAttribute("aria-label", `${b.textContent} ${e.name} (${e.id})`);
          actions.appendChild(b);
        }
        body.appendChild(tr);
      }
      $("events-card").hidden = false; $("create-card").hidden = !me.may.create_events; $("login").hidden = true;
      fillMessageEvents(events);
      fillSettingsEvents(events);
      fillCodeEvents(events);
      fillChartEvents(events);
      await refreshCharts();
      await refreshShows();
      await refreshAudit();
      show();
    } catch (e) { show(e); }
  }

  function show(e) { $("error").textContent = e ? e.message : ""; }

  // Fill an event picker with `events` (after `first`, an option of its own, if given) when
  // the list changed, keeping the operator's choice; true when it was refilled.
  function fillPicker(select, events, first) {
    const ids = events.map((e) => e.id).join(",");
    if (select.dataset.ids === ids) return false;
    const chosen = select.value;
    select.dataset.ids = ids;
    select.innerHTML = "";
    const options = (first ? [first] : []).concat(events.map((e) => ({ id: e.id, label: e.name + " (" + e.id + ")" })));
    for (const { id, label } of options) {
      const o = document.createElement("option");
      o.value = id; o.textContent = label;
      select.appendChild(o);
    }
    select.value = options.some((o) => o.id === chosen) ? chosen : (options[0] || {}).id || "";
    return true;
  }

  // The live message and the event's look: edited here, previewed as the waiting page shows
  // them (text as text, the accent as a colour, the logo without a referrer), and each
  // problem the API finds shown beside its field.
  const SHOWN = { message: "msg-text", display_name: "msg-name", accent_color: "msg-accent", logo_url: "msg-logo" };
  let messageEvents = [];
  function fillMessageEvents(events) {
    messageEvents = events;
    const chosen = $("msg-event").value;
    if (fillPicker($("msg-event"), events) && $("msg-event").value !== chosen) loadShown();
    $("message-card").hidden = events.length === 0;
  }
  function loadShown() {
    const e = messageEvents.find((x) => x.id === $("msg-event").value);
    if (!e) return;
    for (const [field, id] of Object.entries(SHOWN)) $(id).value = e[field] || "";
    $("msg-done").textContent = "";
    clearFieldErrors();
    preview();
  }
  function clearFieldErrors() { for (const id of Object.values(SHOWN)) $(id + "-error").textContent = ""; }
  function preview() {
    const e = messageEvents.find((x) => x.id === $("msg-event").value) || {};
    const text = $("msg-text").value.trim();
    $("msg-count").textContent = `${[...$("msg-text").value].length} / 280`;
    $("pv-title").textContent = $("msg-name").value.trim() || e.name || "";
    $("pv-message").textContent = text;
    $("pv-message").hidden = !text;
    const accent = $("msg-accent").value.trim().toLowerCase();
    if (/^#[0-9a-f]{6}$/.test(accent)) $("preview").style.setProperty("--accent", accent);
    else $("preview").style.removeProperty("--accent");
    const logo = $("msg-logo").value.trim();
    $("pv-logo").hidden = !logo.startsWith("https://");
    if (logo.startsWith("https://")) $("pv-logo").src = logo; else $("pv-logo").removeAttribute("src");
    $("pv-bar").style.width = "40%";
  }
  function saveShown(body) {
    clearFieldErrors();
    $("msg-done").textContent = "";
    const id = $("msg-event").value;
    admin("PATCH", `/events/${id}`, body).then((e) => {
      const i = messageEvents.findIndex((x) => x.id === id);
      if (i >= 0) messageEvents[i] = Object.assign(messageEvents[i], e);
      $("msg-done").textContent = "Published: waiting pages show it at their next check.";
      show();
    }, (err) => {
      for (const f of err.fields || []) if (SHOWN[f.field]) $(SHOWN[f.field] + "-error").textContent = f.message;
      show(err);
    });
  }
  // Access codes: a batch's codes are shown once, as a CSV to download; afterwards only the
  // batches and their use are listed.
  function fillCodeEvents(events) {
    fillPicker($("codes-event"), events);
    $("codes-card").hidden = events.length === 0;
    if (!$("codes-expires").value) {
      const week = new Date(Date.now() + 7 * 864e5 - new Date().getTimezoneOffset() * 6e4);
      $("codes-expires").value = week.toISOString().slice(0, 16);
    }
    refreshCodes();
  }
  async function refreshCodes() {
    const id = $("codes-event").value;
    if (!id) return;
    const { batches } = await admin("GET", `/events/${id}/access-codes`);
    const body = $("codes");
    body.innerHTML = "";
    for (const b of batches) {
      const tr = document.createElement("tr");
      const status = b.revoked ? "revoked" : new Date(b.expires_at) < new Date() ? "expired" : "active";
      [b.batch_id, b.effect === "skip" ? "skip the queue" : "priority lane", `${b.used} / ${b.count * b.uses_per_code}`, new Date(b.expires_at).toLocaleString(), b.created_by, status].forEach((v) => tr.appendChild(cell(v)));
      const actions = document.createElement("td");
      if (!b.revoked) {
        const r = document.createElement("button");
        r.className = "secondary"; r.textContent = "Revoke";
        r.setAttribute("aria-label", `Revoke batch ${b.batch_id}`);
        r.onclick = () => {
          if (!window.confirm(`Revoke batch ${b.batch_id}? Its codes stop working at once.`)) return;
          admin("DELETE", `/events/${id}/access-codes/${b.batch_id}`).then(refreshCodes, show);
        };
        actions.appendChild(r);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    }
  }
  $("codes-event").onchange = () => refreshCodes().catch(show);
  $("codes-create").onclick = () => {
    for (const f of ["count", "uses_per_code", "expires_at"]) $("codes-" + f + "-error").textContent = "";
    const id = $("codes-event").value;
    const expires = $("codes-expires").value ? new Date($("codes-expires").value).toISOString() : "";
    admin("POST", `/events/${id}/access-codes`, {
      count: Number($("codes-count").value), uses_per_code: Number($("codes-uses").value),
      expires_at: expires, effect: $("codes-effect").value,
    }).then((b) => {
      const csv = "code,batch,effect,uses,expires_at\n" + b.codes.map((c) => `${c},${b.batch_id},${b.effect},${b.uses_per_code},${b.expires_at}`).join("\n") + "\n";
      const link = $("codes-csv");
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
      link.download = `${id}-${b.batch_id}.csv`;
      link.hidden = false;
      $("codes-once").textContent = `${b.codes.length} codes made. Download them now: they are shown only this once.`;
      show();
      refreshCodes();
    }, (err) => {
      for (const f of err.fields || []) { const el = $("codes-" + f.field + "-error"); if (el) el.textContent = f.message; }
      show(err);
    });
  };

  // The last hour of the chosen event, from the worker's recorded points: small SVG charts
  // (drawn here: a few polylines need no library), each with its latest figures as text.
  const CHARTS = [
    { title: "Waiting", lines: [["waiting", "var(--accent)"]] },
    { title: "Admitted and left a minute", lines: [["admitted_per_min", "var(--ok)"], ["dropped_per_min", "var(--bad)"]] },
    { title: "Active sessions and the cap", lines: [["active", "var(--cat1)"], ["cap", "var(--muted)"]] },
    { title: "Seats held and sold", lines: [["held", "var(--held)"], ["sold", "var(--ok)"]] },
  ];
  const NAMES = { waiting: "waiting", admitted_per_min: "admitted/min", dropped_per_min: "left/min", active: "active", cap: "cap", held: "held", sold: "sold" };
  function fillChartEvents(events) {
    const live = events.filter((e) => e.state !== "closed");
    fillPicker($("chart-event"), live);
    $("charts-card").hidden = live.length === 0;
  }
  function fmtDuration(s) {
    if (s == null) return "nobody waiting";
    return s < 60 ? "under a minute" : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  }
  async function refreshCharts() {
    const id = $("chart-event").value;
    if (!id) return;
    const { points } = await admin("GET", `/events/${id}/history`);
    const last = points[points.length - 1] || {};
    $("chart-drain").textContent = points.length ? `Time to drain the queue: ${fmtDuration(last.drain_s)}` : "No figures yet: the worker records a point every few seconds.";
    const box = $("charts");
    box.innerHTML = "";
    const NS = "http://www.w3.org/2000/svg", W = 300, H = 90;
    const t0 = points.length ? Date.parse(points[0].at) : 0, t1 = points.length ? Date.parse(last.at) : 1;
    for (const c of CHARTS) {
      const fig = document.createElement("figure");
      fig.className = "chart";
      const max = Math.max(1, ...points.flatMap((p) => c.lines.map(([k]) => Number(p[k]) || 0)));
      const svg = document.createElementNS(NS, "svg");
      svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
      svg.setAttribute("role", "img");
      const summary = c.lines.map(([k]) => `${NAMES[k]} ${last[k] ?? "–"}`).join(", ");
      svg.setAttribute("aria-label", `${c.title}, last hour; now ${summary}; highest ${max}`);
      for (const [k, colour] of c.lines) {
        const line = document.createElementNS(NS, "polyline");
        line.setAttribute("fill", "none");
        line.setAttribute("stroke", colour);
        line.setAttribute("stroke-width", "2");
        line.setAttribute("points", points.map((p) => {
          const x = t1 > t0 ? ((Date.parse(p.at) - t0) / (t1 - t0)) * W : W;
          const y = H - 4 - ((Number(p[k]) || 0) / max) * (H - 8);
          return `${x.toFixed(1)},${y.toFixed(1)}`;
        }).join(" "));
        line.dataset.series = k;
        svg.appendChild(line);
      }
      const cap = document.createElement("figcaption");
      const head = document.createElement("strong");
      head.textContent = c.title;
      const now = document.createElement("span");
      now.className = "muted"; now.textContent = ` now ${summary} (top ${max})`;
      cap.append(head, now);
      fig.append(cap, svg);
      box.appendChild(fig);
    }
  }
  $("chart-event").onchange = () => refreshCharts().catch(show);
  $("show-closed").onchange = () => refresh();
  $("msg-event").onchange = loadShown;
  for (const id of Object.values(SHOWN)) $(id).oninput = preview;
  $("msg-save").onclick = () => {
    const body = {};
    for (const [field, id] of Object.entries(SHOWN)) body[field] = $(id).value.trim() || null;
    saveShown(body);
  };
  $("msg-clear").onclick = () => { $("msg-text").value = ""; preview(); saveShown({ message: null }); };

  $("signin").onclick = () => { token = $("token").value.trim(); me = null; sessionStorage.setItem("marquee.operator", token); refresh(); };
  $("signout").onclick = () => {
    token = ""; me = null; sessionStorage.removeItem("marquee.operator");
    for (const id of ["events-card", "create-card", "shows-card", "audit-card", "message-card", "codes-card", "charts-card", "who"]) $(id).hidden = true;
    $("login").hidden = false;
  };
  // Every setting of an event, to create one or change one: each field's problem is shown
  // beside it, as the API names it.
  const SETTINGS = [
    ["name", "Name", "text", "New on-sale"],
    ["opens_at", "Opens at (your time)", "datetime-local", ""],
    ["state", "State", ["prequeue", "open", "paused", "closed"], "prequeue"],
    ["queue_mode", "Queue mode", ["always", "safety_net"], "always"],
    ["rate_per_minute", "Fans let in a minute", "number", 600],
    ["max_active", "Shopping at once (cap)", "number", 500],
    ["session_ttl_s", "Session (s)", "number", 900],
    ["hold_ttl_s", "Hold (s)", "number", 600],
    ["hold_extend_s", "Extension (s)", "number", 300],
    ["max_hold_s", "Longest hold (s, empty: twice the hold)", "number", ""],
    ["idle_after_s", "Slot freed when idle (s)", "number", 180],
    ["min_poll_interval_ms", "Fastest poll (ms)", "number", 2000],
    ["abandon_after_s", "Gone when silent (s)", "number", 60],
    ["pow_bits", "Bot check (bits)", "number", 0],
  ];
  let settingsEvents = [];
  (function buildSettings() {
    const box = $("set-fields");
    for (const [key, label, type] of SETTINGS) {
      const wrap = document.createElement("span");
      const l = document.createElement("label");
      l.htmlFor = "set-" + key; l.textContent = label;
      let input;
      if (Array.isArray(type)) {
        input = document.createElement("select");
        for (const v of type) { const o = document.createElement("option"); o.value = v; o.textContent = v.replace("_", " "); input.appendChild(o); }
      } else {
        input = document.createElement("input");
        input.type = type;
      }
      input.id = "set-" + key;
      const err = document.createElement("span");
      err.id = "set-" + key + "-error"; err.className = "error";
      input.setAttribute("aria-describedby", err.id);
      wrap.append(l, input, err);
      box.appendChild(wrap);
    }
  })();
  const localTime = (iso) => { const d = new Date(iso); return new Date(d - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16); };
  function fillSettingsEvents(events) {
    settingsEvents = events;
    if (fillPicker($("set-event"), events, { id: "", label: "A new on-sale…" })) loadSettings();
  }
  function loadSettings() {
    const e = settingsEvents.find((x) => x.id === $("set-event").value);
    for (const [key, , type, fallback] of SETTINGS) {
      const v = e ? (key === "state" ? e.stored_state || e.state : e[key]) : fallback;
      $("set-" + key).value = v == null ? "" : type === "datetime-local" ? (v ? localTime(v) : "") : v;
      $("set-" + key + "-error").textContent = "";
    }
    $("set-save").textContent = e ? "Save changes" : "Create";
    $("set-done").textContent = "";
  }
  $("set-event").onchange = loadSettings;
  $("set-save").onclick = () => {
    const id = $("set-event").value, e = settingsEvents.find((x) => x.id === id);
    const body = {};
    for (const [key, , type] of SETTINGS) {
      const raw = $("set-" + key).value;
      let v = type === "number" ? (raw === "" ? null : Number(raw)) : type === "datetime-local" ? (raw ? new Date(raw).toISOString() : null) : raw;
      if (v === null && (key !== "max_hold_s" || !e)) continue;
      if (e && (key === "opens_at" ? Date.parse(e[key]) === Date.parse(v) : (key === "state" ? (e.stored_state || e.state) : e[key]) === v)) continue;
      body[key] = v;
    }
    if (!e && !body.opens_at) body.opens_at = new Date().toISOString();
    for (const [key] of SETTINGS) $("set-" + key + "-error").textContent = "";
    admin(e ? "PATCH" : "POST", e ? `/events/${id}` : "/events", body).then((saved) => {
      $("set-done").textContent = e ? "Saved: in force on every gateway and worker within 2 s." : `Created ${saved.id}.`;
      show();
      refresh();
    }, (err) => {
      for (const f of err.fields || []) { const el = $("set-" + f.field + "-error"); if (el) el.textContent = f.message; }
      show(err);
    });
  };
  if (token) refresh();
  setInterval(() => { if (token) refresh(); }, 2000);
})();
