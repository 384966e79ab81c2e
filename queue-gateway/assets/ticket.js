// The ticket page (`/t/{reservation_id}`, the link ticket emails carry): the show, each seat
// with its category and price, the total, and the QR code to show at the door. The
// reservation id in the address is the credential, so the page sends no referrer.
(function () {
  "use strict";
  const id = document.body.dataset.reservation;
  const $ = (x) => document.getElementById(x);
  const { t, money, when } = window.marquee;
  const SAY = { held: "ticket.held", expired: "ticket.expired", released: "ticket.released", refunded: "ticket.refunded" };

  async function load() {
    const r = await fetch(`/v1/bookings/${encodeURIComponent(id)}`, { headers: { Accept: "application/json" }, referrerPolicy: "no-referrer" });
    const b = await r.json().catch(() => ({}));
    if (r.status === 404) { $("status").textContent = t("ticket.notFound"); return; }
    if (!r.ok) { $("status").textContent = t("ticket.failed", { status: r.status }); return; }
    $("status").textContent = b.status === "confirmed" ? t("ticket.confirmed") : SAY[b.status] ? t(SAY[b.status]) : b.status;
    $("status").className = b.status === "confirmed" ? "" : "error";
    if (b.show) {
      $("show").hidden = false;
      $("movie").textContent = b.show.title;
      $("when").textContent = when(b.show.starts_at, b.show.time_zone, "full");
      const screen = /^\d+$/.test(b.show.screen) ? t("ticket.screen", { screen: b.show.screen }) : b.show.screen;
      $("where").textContent = `${b.show.theater}, ${b.show.city} — ${screen}`;
    }
    const lines = $("lines");
    lines.innerHTML = "";
    for (const s of b.seats || []) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[t("book.seatName", { row: s.row, number: s.number }), ""], [s.category || "", ""], [money(s.price_cents, b.currency), "num"]]) {
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
  load().catch((e) => { $("status").textContent = t("common.connection", { detail: e.message }); });
})();
