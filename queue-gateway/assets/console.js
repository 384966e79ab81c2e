// The operator console: live figures for every event, open/pause/close, rate and cap.
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
    if (r.status === 401) { $("login").hidden = false; throw new Error("Sign in with an operator token."); }
    if (!r.ok) throw new Error(data.detail || `${method} ${path}: ${r.status}`);
    return data;
  }

  function cell(text) { const td = document.createElement("td"); td.textContent = text == null ? "–" : String(text); return td; }

  async function refresh() {
    try {
      const { events } = await admin("GET", "/events");
      const body = $("events");
      body.innerHTML = "";
      for (const e of events) {
        const tr = document.createElement("tr");
        [e.name + " (" + e.id + ")", e.sold_out ? e.state + ", sold out" : e.state, e.waiting, e.active, e.admitted_last_minute, e.dropped_last_minute, e.held_seats, e.sold_seats].forEach((v) => tr.appendChild(cell(v)));
        for (const field of ["rate_per_minute", "max_active", "pow_bits"]) {
          const td = document.createElement("td");
          const input = document.createElement("input");
          input.type = "number"; input.value = e[field]; input.style.width = "6rem";
          input.setAttribute("aria-label", field + " for " + e.id);
          input.onchange = () => admin("PATCH", `/events/${e.id}`, { [field]: Number(input.value) }).then(refresh, show);
          td.appendChild(input); tr.appendChild(td);
        }
        const actions = document.createElement("td");
        for (const st of ["open", "paused", "closed"]) {
          if (st === e.state) continue;
          const b = document.createElement("button");
          b.className = "secondary"; b.textContent = st === "paused" ? "Pause" : st === "open" ? "Open" : "Close";
          b.onclick = () => admin("PATCH", `/events/${e.id}`, { state: st }).then(refresh, show);
          actions.appendChild(b);
        }
        tr.appendChild(actions);
        body.appendChild(tr);
      }
      $("events-card").hidden = false; $("create-card").hidden = false; $("login").hidden = true;
      show();
    } catch (e) { show(e); }
  }

  function show(e) { $("error").textContent = e ? e.message : ""; }

  $("signin").onclick = () => { token = $("token").value.trim(); sessionStorage.setItem("marquee.operator", token); refresh(); };
  $("create").onclick = () => {
    const opens = $("new-opens").value ? new Date($("new-opens").value).toISOString() : new Date().toISOString();
    admin("POST", "/events", {
      name: $("new-name").value, opens_at: opens, rate_per_minute: Number($("new-rate").value),
      max_active: Number($("new-cap").value), session_ttl_s: 900, hold_ttl_s: 600,
    }).then(refresh, show);
  };
  if (token) refresh();
  setInterval(() => { if (token) refresh(); }, 2000);
})();
