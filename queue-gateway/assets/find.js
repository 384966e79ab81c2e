// Find my booking: ask for an email with links to the fan's tickets. The answer never says
// whether bookings exist for the address (only that an email goes out if they do).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  $("find-form").onsubmit = async (e) => {
    e.preventDefault();
    $("error").textContent = "";
    $("result").textContent = "";
    $("send").disabled = true;
    try {
      const r = await fetch("/v1/bookings/lookup", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ email: $("email").value }),
      });
      const data = await r.json().catch(() => ({}));
      if (r.status === 202) {
        $("result").textContent = "Thanks. If that address has bookings, an email with a link to each ticket is on its way. Check your spam folder too.";
      } else if (r.status === 429) {
        const wait = Number(r.headers.get("Retry-After")) || 60;
        $("error").textContent = `Too many requests for now. Try again in ${wait >= 120 ? Math.ceil(wait / 60) + " minutes" : wait + " seconds"}.`;
      } else {
        $("error").textContent = data.detail || `Something went wrong (${r.status}). Try again.`;
      }
    } catch (err) {
      $("error").textContent = "Connection trouble: " + err.message;
    } finally {
      $("send").disabled = false;
    }
  };
})();
