// The ticket page (`/t/{reservation_id}`, the link ticket emails carry): the show, each seat
// with its category and price, the total, and the QR code to show at the door. The
// reservation id in the address is the credential, so the page sends no referrer.
(function () {
  "use strict";
  const id = document.body.dataset.reservation;
  const $ = (x) => document.getElementById(x);
  const money = (cents, cur) => {
    try { return new Intl.NumberFormat(undefined, { style: "currency", currency: cur.toUpperCase() }).format(cents / 100); }
    catch (_) { return (cents / 100).toFixed(2) + " " + cur.toUpperCase(); }
  };
  const SAY = {
    held: "These seats are held but not paid for yet.",
    expired: "This hold ended before it was paid for; there is no ticket.",
    released: "These seats were given back; there is no ticket.",
    refunded: "This booking was refunded: the ticket is no longer valid.",
  };

  async function load() {
    const r = await fetch(`/v1/bookings/${encodeURIComponent(id)}`, { headers: { Accept: "application/json" }, referrerPolicy: "no-referrer" });
    const b = await r.json().catch(() => ({}));
    if (r.status === 404) { $("status").textContent = "No booking has this address. Check the link in your email."; return; }
    if (!r.ok) { $("status").textContent = `Could not load your ticket (${r.status}). Try again in a moment.`; return; }
    $("status").textContent = b.status === "confirmed" ? "Confirmed. Enjoy the show!" : SAY[b.status] || b.status;
    $("status").className = b.status === "confirmed" ? "" : "error";
    if (b.show) {
      $("show").hidden = false;
      $("movie").textContent = b.show.title;
      $("when").textContent = new Date(b.show.starts_at).toLocaleString([], { timeZone: b.show.time_zone, dateStyle: "full", timeStyle: "short" });
      const screen = /^\d+$/.test(b.show.screen) ? `Screen ${b.show.screen}` : b.show.screen;
      $("where").textContent = `${b.show.theater}, ${b.show.city} — ${screen}`;
    }
    const lines = $("lines");
    lines.innerHTML = "";
    for (const s of b.seats || []) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[`Row ${s.row}, seat ${s.number}`, ""], [s.category || "", ""], [money(s.price_cents, b.currency), "num"]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      lines.appendChild(tr);
    }
    $("total").textContent = money(b.total_cents, b.currency);
    $("seats-card").hidden = false;
    if (b.status === "confirmed" && b.ticket) {
      $("code-card").hidden = false;
      $("qr").innerHTML = b.ticket.qr_svg; // an SVG booking-core drew from the ticket code
      $("code").textContent = b.ticket.code;
    }
  }
  load().catch((e) => { $("status").textContent = "Connection trouble: " + e.message; });
})();
