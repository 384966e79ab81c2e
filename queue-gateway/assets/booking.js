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
  const { t, when } = window.marquee;
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

  const money = (cents, cur) => window.marquee.money(cents, cur || currency);
  const seatName = (s) => t("book.seatName", { row: s.row, number: s.number });

  async function loadShows() {
    const { data } = await api("GET", "/v1/movies");
    const sel = $("show");
    sel.innerHTML = "";
    for (const m of data.movies || []) {
      for (const s of m.shows.filter((s) => s.event_id === event)) {
        const o = document.createElement("option");
        o.value = s.id;
        o.textContent = t("book.showOption", { title: m.title, theater: s.theater, city: s.city, when: when(s.starts_at, s.time_zone), price: money(s.price_cents, s.currency) });
        sel.appendChild(o);
      }
    }
    if (!sel.options.length) { error(t("book.noShows")); return; }
    sel.onchange = () => openShow(sel.value);
    openShow(sel.value);
  }

  // ---- the map ----------------------------------------------------------------------------

  const STATE = { available: "book.stateAvailable", held: "book.stateHeld", booked: "book.stateSold" };
  const KIND = { wheelchair: "book.wheelchair", companion: "book.companion" };

  function seatLabel(s) {
    const parts = [seatName(s), s.category, money(s.price_cents)];
    if (KIND[s.kind]) parts.push(t(KIND[s.kind]));
    parts.push(mine(s.id) ? t("book.yours") : selected.has(s.id) ? t("book.chosen") : STATE[s.status] ? t(STATE[s.status]) : s.status);
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
    $("zoom-hint").textContent = small ? t("book.zoomHint") : "";
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
    const total = chosen.reduce((sum, s) => sum + s.price_cents, 0);
    $("choice").textContent = chosen.length
      ? t("book.chosenList", { seats: chosen.map((s) => `${s.row}${s.number}`).join(", "), total: money(total) })
      : "";
    $("hold").disabled = chosen.length === 0 || !!hold;
    $("hold").textContent = chosen.length ? t("book.holdN", { n: chosen.map((s) => `${s.row}${s.number}`).join(", "), total: money(total) }) : t("book.holdSelected");
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
    item("held", t("book.legendHeld"));
    item("booked", t("book.legendSold"));
    item("chosen", t("book.legendYours"));
    if ([...seats.values()].some((s) => s.kind === "wheelchair")) item("available plain wheelchair", t("book.legendWheelchair"), "♿");
    if ([...seats.values()].some((s) => s.kind === "companion")) item("available plain companion", t("book.legendCompanion"), "C");
    const sel = $("category");
    sel.innerHTML = "";
    const any = document.createElement("option");
    any.value = ""; any.textContent = t("book.anyCategory");
    sel.appendChild(any);
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
    if (status !== 200) { error(data.detail || t("book.mapFailed")); return; }
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
      error(t("book.taken", { seats: data.unavailable.join(", ") }));
      data.unavailable.forEach((id) => selected.delete(id));
    } else if (status === 409 && data.reservation_id) {
      const got = await api("GET", `/v1/bookings/${data.reservation_id}`);
      showHold(got.data);
    } else if (status === 401 || status === 403) {
      error(t("book.admissionEnded"));
    } else {
      error(data.detail || t("book.holdFailed", { status }));
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
      for (const [text, cls] of [[seatName(s), ""], [s.category || "", ""], [money(s.price_cents, h.currency), "num"]]) {
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
      $("countdown").textContent = left > 0 ? t("book.leftToPay", { time: `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` }) : t("book.holdEnded");
      $("countdown-note").textContent = left > 0 ? t("book.atZero") : t("book.backOnSale");
      // One polite announcement a minute before the end, rather than one a second.
      if (left <= 60 && left > 0 && !announced) { announced = true; $("session").textContent = t("book.oneMinute"); }
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
      $("session").textContent = t("book.extended");
    } else {
      error(data.detail || t("book.extendFailed", { status }));
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
      const why = { requires_payment_method: "book.declined", requires_action: "book.authenticate" };
      return error(why[data.payment_status] ? t(why[data.payment_status]) : t("book.incomplete", { status: data.payment_status }));
    }
    if (status === 410) return error(t("book.lost"));
    error(data.detail || t("book.confirmFailed", { status }));
  }

  $("pay-form").onsubmit = async (e) => {
    e.preventDefault();
    if (!hold) return;
    error();
    $("pay").disabled = true;
    try {
      const { status, data: intent } = await api("POST", `/v1/bookings/${hold.reservation_id}/checkout`, { email: $("email").value });
      if (status !== 200) return error(intent.detail || t("book.payFailed", { status }));
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
      error(t("book.payTrouble", { detail: err.message }));
    } finally {
      $("pay").disabled = false;
    }
  };

  function showTicket(booking) {
    const id = hold.reservation_id;
    clearInterval(timer);
    const paid = hold;
    hold = null;
    $("hold-card").hidden = true;
    $("countdown-bar").hidden = true;
    $("map-card").hidden = true;
    $("ticket-card").hidden = false;
    $("qr").innerHTML = booking.ticket.qr_svg; // an SVG booking-core drew from the ticket code
    $("ticket-code").textContent = booking.ticket.code;
    $("ticket-detail").textContent = t("book.paidDetail", { seats: paid.seats.map(seatName).join("; "), total: money(paid.total_cents, paid.currency) });
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
