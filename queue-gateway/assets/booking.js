// Seat selection for an admitted fan: pick a show, watch its live seat map (server-sent
// events), choose seats on the map (touch, mouse or keyboard) or ask for the best available,
// hold them, see each seat's price and the total, pay, and get the ticket.
//
// The map is drawn at its natural size (every seat a 26 px target) inside a viewport that
// scales it to fit ("Whole map") or lets it scroll at a zoom a finger can use. Seats are a
// grid: one row per seat row, arrow keys move between seats, Enter or Space chooses.
(function () {
  "use strict";
  const event = document.body.dataset.event;
  const $ = (id) => document.getElementById(id);
  const csrf = sessionStorage.getItem("marquee.csrf." + event) || "";
  const visitorKey = localStorage.getItem("marquee.visitorKey." + event) || "";
  const selected = new Set();
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  let seats = new Map(); // id → seat from the map
  let cells = new Map(); // id → its element
  let order = []; // rows of seat ids, front first
  let currency = "gbp";
  let categories = [];
  let stream = null;
  let hold = null;
  let timer = null;
  let focusId = null;
  let zoom = 0; // 0 = whole map, otherwise the scale
  const ZOOMS = [1, 1.5];
  const SEAT = 30; // px a seat takes on the map at zoom 1 (26 px box + 4 px gap)

  function error(msg) { $("error").textContent = msg || ""; }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", "X-Marquee-CSRF": csrf };
    if (visitorKey) headers["X-Visitor-Key"] = visitorKey;
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, credentials: "same-origin", body: body && JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    return { status: r.status, data };
  }

  function money(cents, cur) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: (cur || currency).toUpperCase() }).format(cents / 100);
    } catch (_) {
      return (cents / 100).toFixed(2) + " " + (cur || currency).toUpperCase();
    }
  }

  async function loadShows() {
    const { data } = await api("GET", "/v1/movies");
    const sel = $("show");
    sel.innerHTML = "";
    for (const m of data.movies || []) {
      for (const s of m.shows.filter((s) => s.event_id === event)) {
        const o = document.createElement("option");
        const when = new Date(s.starts_at).toLocaleString([], { timeZone: s.time_zone, dateStyle: "medium", timeStyle: "short" });
        o.value = s.id;
        o.textContent = `${m.title} — ${s.theater}, ${s.city} — ${when} — from ${money(s.price_cents, s.currency)}`;
        sel.appendChild(o);
      }
    }
    if (!sel.options.length) { error("No shows are on sale for this event."); return; }
    sel.onchange = () => openShow(sel.value);
    openShow(sel.value);
  }

  // ---- the map ----------------------------------------------------------------------------

  const STATE = { available: "available", held: "held by someone else", booked: "sold" };
  const KIND = { wheelchair: "wheelchair space", companion: "companion seat" };

  function seatLabel(s) {
    const parts = [`Row ${s.row}, seat ${s.number}`, s.category, money(s.price_cents)];
    if (KIND[s.kind]) parts.push(KIND[s.kind]);
    parts.push(mine(s.id) ? "yours" : selected.has(s.id) ? "chosen" : STATE[s.status] || s.status);
    return parts.join(", ");
  }

  const mine = (id) => !!hold && hold.seats.some((h) => h.id === id);
  const choosable = (s) => s.status === "available" && !hold;

  function paintSeat(s) {
    const el = cells.get(s.id);
    if (!el) return;
    const state = mine(s.id) ? "mine" : selected.has(s.id) ? "chosen" : s.status;
    el.className = `seat ${state} cat${categories.findIndex((c) => c.name === s.category)} ${s.kind}`;
    el.setAttribute("aria-label", seatLabel(s));
    el.setAttribute("aria-selected", selected.has(s.id) || mine(s.id) ? "true" : "false");
    el.setAttribute("aria-disabled", choosable(s) ? "false" : "true");
    el.title = seatLabel(s);
  }

  function drawMap() {
    const grid = $("seats");
    grid.innerHTML = "";
    cells = new Map();
    order = [];
    const rows = [];
    for (const s of seats.values()) {
      if (!rows.length || rows[rows.length - 1].name !== s.row) rows.push({ name: s.row, seats: [] });
      rows[rows.length - 1].seats.push(s);
    }
    let widest = 0;
    for (const r of rows) {
      const row = document.createElement("div");
      row.className = "row";
      row.setAttribute("role", "row");
      const head = document.createElement("div");
      head.className = "rowname";
      head.setAttribute("role", "rowheader");
      head.textContent = r.name;
      row.appendChild(head);
      const ids = [];
      let width = 0;
      for (const s of r.seats) {
        const el = document.createElement("div");
        el.setAttribute("role", "gridcell");
        el.tabIndex = -1;
        el.dataset.id = s.id;
        el.textContent = s.kind === "wheelchair" ? "♿" : s.kind === "companion" ? "C" : s.number;
        cells.set(s.id, el);
        row.appendChild(el);
        ids.push(s.id);
        width += 1;
        if (s.gap_after) {
          const gap = document.createElement("span");
          gap.className = "aisle";
          gap.setAttribute("aria-hidden", "true");
          row.appendChild(gap);
          width += 0.6;
        }
      }
      const tail = document.createElement("div");
      tail.className = "rowname";
      tail.setAttribute("aria-hidden", "true");
      tail.textContent = r.name;
      row.appendChild(tail);
      grid.appendChild(row);
      order.push(ids);
      widest = Math.max(widest, width);
    }
    const map = $("map");
    map.style.width = Math.ceil((widest + 2.5) * SEAT) + "px";
    for (const s of seats.values()) paintSeat(s);
    if (!focusId || !cells.has(focusId)) focusId = firstFree();
    if (focusId) cells.get(focusId).tabIndex = 0;
    layout();
  }

  function firstFree() {
    for (const ids of order) for (const id of ids) if (seats.get(id).status === "available") return id;
    return order.length ? order[0][0] : null;
  }

  // The scale that shows the whole map in the viewport's width.
  function fitScale() {
    const map = $("map");
    return Math.min(1, $("viewport").clientWidth / map.offsetWidth);
  }

  function layout() {
    const map = $("map");
    const fit = fitScale();
    const scale = zoom === 0 ? fit : Math.max(zoom, fit);
    map.style.transform = `scale(${scale})`;
    const sizer = $("sizer");
    sizer.style.width = map.offsetWidth * scale + "px";
    sizer.style.height = map.offsetHeight * scale + "px";
    const small = scale * 26 < 24; // a seat's box is under 24 px: zoom in to choose
    $("zoom-hint").textContent = small ? "Tap the map to zoom in and choose." : "";
    $("map-card").classList.toggle("overview", small);
    const vp = $("viewport");
    const cue = vp.scrollWidth > vp.clientWidth + 2;
    $("scroll-cue").hidden = !cue;
    vp.classList.toggle("scrolls", cue);
    $("zoom-out").disabled = scale <= fit;
    $("zoom-in").disabled = scale >= ZOOMS[ZOOMS.length - 1];
    $("zoom-fit").disabled = scale <= fit;
  }

  function setZoom(z, around) {
    zoom = z;
    layout();
    if (around) reveal(around);
  }

  function reveal(id) {
    const el = cells.get(id);
    if (el) el.scrollIntoView({ block: "nearest", inline: "center", behavior: reduceMotion ? "auto" : "smooth" });
  }

  function moveFocus(id) {
    if (!id || !cells.has(id)) return;
    if (focusId && cells.has(focusId)) cells.get(focusId).tabIndex = -1;
    focusId = id;
    const el = cells.get(id);
    el.tabIndex = 0;
    el.focus({ preventScroll: true });
    reveal(id);
  }

  function toggle(id) {
    const s = seats.get(id);
    if (!s || !choosable(s)) return;
    selected.has(id) ? selected.delete(id) : selected.add(id);
    paintSeat(s);
    summarise();
  }

  // What the fan has chosen, and the hold button.
  function summarise() {
    const chosen = [...selected].map((id) => seats.get(id)).filter(Boolean);
    const total = chosen.reduce((t, s) => t + s.price_cents, 0);
    $("choice").textContent = chosen.length
      ? `Chosen: ${chosen.map((s) => `${s.row}${s.number}`).join(", ")} — ${money(total)}`
      : "";
    $("hold").disabled = chosen.length === 0 || !!hold;
    $("hold").textContent = chosen.length ? `Hold ${chosen.length} seat${chosen.length > 1 ? "s" : ""} · ${money(total)}` : "Hold selected seats";
    $("hold-best").disabled = !!hold;
  }

  $("seats").addEventListener("click", (e) => {
    const el = e.target.closest("[role=gridcell]");
    if (!el) return;
    const id = el.dataset.id;
    // Too small to aim at: the first tap zooms in around the seat instead of choosing it.
    if ($("map-card").classList.contains("overview")) { setZoom(ZOOMS[0], id); moveFocus(id); return; }
    moveFocus(id);
    toggle(id);
  });

  $("seats").addEventListener("keydown", (e) => {
    if (!focusId) return;
    let r = order.findIndex((ids) => ids.includes(focusId));
    let i = order[r].indexOf(focusId);
    // Up and down keep the position across the row, as the eye does.
    const across = (row) => {
      const frac = order[r].length > 1 ? i / (order[r].length - 1) : 0.5;
      return order[row][Math.round(frac * (order[row].length - 1))];
    };
    let next = null;
    switch (e.key) {
      case "ArrowLeft": next = order[r][Math.max(0, i - 1)]; break;
      case "ArrowRight": next = order[r][Math.min(order[r].length - 1, i + 1)]; break;
      case "ArrowUp": if (r > 0) next = across(r - 1); break;
      case "ArrowDown": if (r < order.length - 1) next = across(r + 1); break;
      case "Home": next = order[r][0]; break;
      case "End": next = order[r][order[r].length - 1]; break;
      case "Enter": case " ": e.preventDefault(); toggle(focusId); return;
      default: return;
    }
    e.preventDefault();
    if (next) moveFocus(next);
  });

  // The scale now, and the zoom steps above and below it (0: the whole map).
  const scaleNow = () => (zoom === 0 ? fitScale() : Math.max(zoom, fitScale()));
  $("zoom-in").onclick = () => {
    const up = ZOOMS.find((z) => z > scaleNow() + 0.01);
    setZoom(up || ZOOMS[ZOOMS.length - 1], focusId);
  };
  $("zoom-out").onclick = () => {
    const down = [...ZOOMS].reverse().find((z) => z < scaleNow() - 0.01 && z > fitScale());
    setZoom(down || 0, focusId);
  };
  $("zoom-fit").onclick = () => setZoom(0);
  window.addEventListener("resize", () => { if (seats.size) layout(); });

  function drawLegend() {
    const legend = $("legend");
    legend.innerHTML = "";
    const item = (cls, text, glyph) => {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "seat swatch " + cls;
      sw.setAttribute("aria-hidden", "true");
      if (glyph) sw.textContent = glyph;
      li.append(sw, text);
      legend.appendChild(li);
    };
    categories.forEach((c, i) => item(`available cat${i}`, `${c.name} ${money(c.price_cents)}`));
    item("held", "Held");
    item("booked", "Sold");
    item("chosen", "Yours");
    if ([...seats.values()].some((s) => s.kind === "wheelchair")) item("available plain wheelchair", "Wheelchair space", "♿");
    if ([...seats.values()].some((s) => s.kind === "companion")) item("available plain companion", "Companion seat", "C");
    const sel = $("category");
    sel.innerHTML = '<option value="">Any category</option>';
    for (const c of categories) {
      const o = document.createElement("option");
      o.value = c.name;
      o.textContent = `${c.name} · ${money(c.price_cents)}`;
      sel.appendChild(o);
    }
    sel.hidden = categories.length < 2;
  }

  async function openShow(showId) {
    selected.clear();
    focusId = null;
    const { status, data } = await api("GET", `/v1/shows/${showId}/seats`);
    if (status !== 200) { error(data.detail || "Could not load the seat map."); return; }
    currency = data.currency || currency;
    categories = data.categories || [];
    seats = new Map(data.seats.map((s) => [s.id, s]));
    $("map-card").hidden = false;
    drawLegend();
    drawMap();
    summarise();
    if (stream) stream.close();
    stream = new EventSource(`/v1/shows/${showId}/seats/events`);
    stream.addEventListener("seats", (e) => {
      for (const c of JSON.parse(e.data).seats) {
        const s = seats.get(c.id);
        if (!s) continue;
        s.status = c.status;
        if (c.status !== "available") selected.delete(c.id);
        paintSeat(s);
      }
      summarise();
    });
  }

  // ---- holding ----------------------------------------------------------------------------

  async function reserve(body) {
    error();
    const { status, data } = await api("POST", "/v1/bookings/reserve", { show_id: $("show").value, ...body });
    if (status === 201) { showHold(data); return; }
    if (status === 409 && data.unavailable && data.unavailable.length) {
      error(`Just taken by someone else: ${data.unavailable.join(", ")}. Pick other seats.`);
      data.unavailable.forEach((id) => selected.delete(id));
    } else if (status === 409 && data.reservation_id) {
      const got = await api("GET", `/v1/bookings/${data.reservation_id}`);
      showHold(got.data);
    } else if (status === 401 || status === 403) {
      error("Your admission has ended. Rejoin the queue from the waiting room.");
    } else {
      error(data.detail || `Could not hold seats (${status}).`);
    }
    for (const s of seats.values()) paintSeat(s);
    summarise();
  }

  function showHold(h) {
    hold = h;
    selected.clear();
    $("hold-card").hidden = false;
    const lines = $("hold-lines");
    lines.innerHTML = "";
    for (const s of h.seats) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[`Row ${s.row}, seat ${s.number}`, ""], [s.category || "", ""], [money(s.price_cents, h.currency), "num"]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      lines.appendChild(tr);
    }
    $("hold-total").textContent = money(h.total_cents, h.currency);
    $("countdown-bar").hidden = false;
    $("extend").hidden = !!h.extended;
    startCountdown(h);
    for (const s of seats.values()) paintSeat(s);
    summarise();
    $("hold-title").focus?.();
    $("hold-card").scrollIntoView({ block: "start", behavior: reduceMotion ? "auto" : "smooth" });
  }

  function startCountdown(h) {
    clearInterval(timer);
    let announced = false;
    const tick = () => {
      const left = Math.max(0, Math.round((new Date(h.expires_at) - Date.now()) / 1000));
      $("countdown").textContent = left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left to pay` : "Your hold has ended";
      $("countdown-note").textContent = left > 0 ? "At 0:00 your seats go back on sale." : "The seats are back on sale; choose again.";
      // One polite announcement a minute before the end, rather than one a second.
      if (left <= 60 && left > 0 && !announced) { announced = true; $("session").textContent = "One minute left to pay for your seats."; }
      if (left === 0) {
        clearInterval(timer);
        hold = null;
        $("extend").hidden = true;
        $("hold-card").hidden = true;
        for (const s of seats.values()) paintSeat(s);
        summarise();
      }
    };
    tick();
    timer = setInterval(tick, 1000);
  }

  // One extension per hold, as long as the event allows (the answer says the new expiry).
  $("extend").onclick = async () => {
    if (!hold) return;
    error();
    const { status, data } = await api("POST", `/v1/bookings/${hold.reservation_id}/extend`);
    $("extend").hidden = true;
    hold.extended = true;
    if (status === 200) {
      hold.expires_at = data.expires_at;
      startCountdown(hold);
      $("session").textContent = "Your hold was extended.";
    } else {
      error(data.detail || `Could not extend the hold (${status}).`);
    }
  };

  // Payment: a test card at the simulator in the demo; Stripe.js with real Stripe.
  const payments = document.body.dataset.payments || "simulator";
  let stripeJs = null;
  let card = null;
  if (payments === "simulator") {
    $("test-cards").hidden = false;
  } else {
    const script = document.createElement("script");
    script.src = "https://js.stripe.com/v3/";
    script.onload = () => {
      stripeJs = window.Stripe(payments);
      card = stripeJs.elements().create("card");
      card.mount("#card-element");
    };
    document.head.appendChild(script);
  }

  async function confirmBooking(intent) {
    const { status, data } = await api("POST", "/v1/bookings/confirm", { reservation_id: hold.reservation_id, payment_intent_id: intent.payment_intent_id });
    if (status === 200) return showTicket(data);
    if (status === 402) {
      const why = { requires_payment_method: "Your card was declined. Try another card.", requires_action: "Your bank needs you to authenticate this payment." };
      return error(why[data.payment_status] || `The payment is not complete (${data.payment_status}).`);
    }
    if (status === 410) return error("Sorry — your hold ran out and the seats went to someone else. Your payment is being refunded.");
    error(data.detail || `Could not confirm (${status}). Your seats stay held; try again.`);
  }

  $("pay-form").onsubmit = async (e) => {
    e.preventDefault();
    if (!hold) return;
    error();
    $("pay").disabled = true;
    try {
      const { status, data: intent } = await api("POST", `/v1/bookings/${hold.reservation_id}/checkout`, { email: $("email").value });
      if (status !== 200) return error(intent.detail || `Could not start the payment (${status}).`);
      if (intent.simulator) {
        await fetch(`${intent.simulator}/v1/payment_intents/${intent.payment_intent_id}/confirm`, {
          method: "POST",
          headers: { Authorization: "Bearer " + intent.publishable_key, "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ payment_method: $("card").value, client_secret: intent.client_secret }),
        });
      } else {
        const result = await stripeJs.confirmCardPayment(intent.client_secret, { payment_method: { card } });
        if (result.error && result.error.type !== "card_error") return error(result.error.message);
      }
      await confirmBooking(intent);
    } catch (err) {
      error("Connection trouble: " + err.message + ". Your seats stay held; try again.");
    } finally {
      $("pay").disabled = false;
    }
  };

  function showTicket(t) {
    const id = hold.reservation_id;
    clearInterval(timer);
    const paid = hold;
    hold = null;
    $("hold-card").hidden = true;
    $("countdown-bar").hidden = true;
    $("map-card").hidden = true;
    $("ticket-card").hidden = false;
    $("qr").innerHTML = t.ticket.qr_svg; // an SVG booking-core drew from the ticket code
    $("ticket-code").textContent = t.ticket.code;
    $("ticket-detail").textContent = `${paid.seats.map((s) => `Row ${s.row}, seat ${s.number}`).join("; ")} — ${money(paid.total_cents, paid.currency)} paid. A copy is on its way to your email.`;
    $("ticket-link").href = `/t/${encodeURIComponent(id)}`;
    $("ticket-card").scrollIntoView({ block: "start" });
  }

  $("hold").onclick = () => reserve({ seat_ids: [...selected] });
  $("hold-best").onclick = () => {
    const body = { quantity: Number($("quantity").value) };
    if ($("category").value) body.category = $("category").value;
    reserve(body);
  };
  $("release").onclick = async () => {
    if (!hold) return;
    await api("DELETE", `/v1/bookings/${hold.reservation_id}`);
    hold = null;
    clearInterval(timer);
    $("hold-card").hidden = true;
    $("countdown-bar").hidden = true;
    for (const s of seats.values()) paintSeat(s);
    summarise();
    $("map-card").scrollIntoView({ block: "start" });
  };
  loadShows().catch((e) => error(e.message));
})();
