// Seat selection for an admitted fan: pick a show, watch its live seat map (server-sent
// events), hold seats (picked or best available) and watch the hold's countdown.
(function () {
  "use strict";
  const event = document.body.dataset.event;
  const $ = (id) => document.getElementById(id);
  const csrf = sessionStorage.getItem("marquee.csrf." + event) || "";
  const visitorKey = localStorage.getItem("marquee.visitorKey." + event) || "";
  const selected = new Set();
  let seats = new Map();
  let stream = null;
  let hold = null;
  let timer = null;

  function error(msg) { $("error").textContent = msg || ""; }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", "X-Marquee-CSRF": csrf };
    if (visitorKey) headers["X-Visitor-Key"] = visitorKey;
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, credentials: "same-origin", body: body && JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    return { status: r.status, data };
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
        o.textContent = `${m.title} — ${s.theater}, ${s.city} — ${when}`;
        sel.appendChild(o);
      }
    }
    if (!sel.options.length) { error("No shows are on sale for this event."); return; }
    sel.onchange = () => openShow(sel.value);
    openShow(sel.value);
  }

  function drawSeat(s) {
    const b = document.createElement("button");
    b.className = "seat " + s.status + (hold && hold.seats.some((h) => h.id === s.id) ? " mine" : "");
    b.title = s.id;
    b.setAttribute("aria-label", `Seat ${s.id}, ${s.status}`);
    b.setAttribute("aria-pressed", selected.has(s.id) ? "true" : "false");
    b.textContent = s.number;
    if (selected.has(s.id)) b.classList.add("mine");
    b.disabled = s.status !== "available" || !!hold;
    b.onclick = () => { selected.has(s.id) ? selected.delete(s.id) : selected.add(s.id); redraw(); };
    return b;
  }

  function redraw() {
    const grid = $("seats");
    grid.innerHTML = "";
    const rows = new Map();
    for (const s of seats.values()) {
      if (!rows.has(s.row)) rows.set(s.row, []);
      rows.get(s.row).push(s);
    }
    for (const [name, list] of rows) {
      const row = document.createElement("div");
      row.className = "row";
      row.innerHTML = `<b>${name}</b>`;
      list.forEach((s) => row.appendChild(drawSeat(s)));
      grid.appendChild(row);
    }
    $("hold").disabled = selected.size === 0 || !!hold;
    $("hold").textContent = selected.size ? `Hold ${selected.size} seat${selected.size > 1 ? "s" : ""}` : "Hold selected seats";
  }

  async function openShow(showId) {
    selected.clear();
    const { status, data } = await api("GET", `/v1/shows/${showId}/seats`);
    if (status !== 200) { error(data.detail || "Could not load the seat map."); return; }
    seats = new Map(data.seats.map((s) => [s.id, s]));
    $("map-card").hidden = false;
    redraw();
    if (stream) stream.close();
    stream = new EventSource(`/v1/shows/${showId}/seats/events`);
    stream.addEventListener("seats", (e) => {
      for (const c of JSON.parse(e.data).seats) {
        const s = seats.get(c.id);
        if (s) { s.status = c.status; if (c.status !== "available") selected.delete(c.id); }
      }
      redraw();
    });
  }

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
    redraw();
  }

  function showHold(h) {
    hold = h;
    selected.clear();
    $("hold-card").hidden = false;
    $("hold-detail").textContent = `Seats ${h.seats.map((s) => s.id).join(", ")} — ${(h.total_cents / 100).toFixed(2)} ${h.currency.toUpperCase()}`;
    clearInterval(timer);
    const tick = () => {
      const left = Math.max(0, Math.round((new Date(h.expires_at) - Date.now()) / 1000));
      $("countdown").textContent = left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left` : "Your hold has expired";
      if (left === 0) { clearInterval(timer); hold = null; redraw(); }
    };
    tick();
    timer = setInterval(tick, 1000);
    redraw();
  }

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
    clearInterval(timer);
    hold = null;
    $("hold-card").hidden = true;
    $("ticket-card").hidden = false;
    $("qr").innerHTML = t.ticket.qr_svg;
    $("ticket-code").textContent = t.ticket.code;
    $("ticket-detail").textContent = `Seats ${t.seats.map((s) => s.id).join(", ")}. A copy is on its way to your email.`;
    redraw();
  }

  $("hold").onclick = () => reserve({ seat_ids: [...selected] });
  $("hold-best").onclick = () => reserve({ quantity: Number($("quantity").value) });
  $("release").onclick = async () => {
    if (!hold) return;
    await api("DELETE", `/v1/bookings/${hold.reservation_id}`);
    hold = null;
    clearInterval(timer);
    $("hold-card").hidden = true;
    redraw();
  };
  loadShows().catch((e) => error(e.message));
})();
