// The waiting room: join (with a possession key the browser keeps), then poll status at the
// interval the server asks for, and go to seat selection once admitted.
(function () {
  "use strict";
  const event = document.body.dataset.event;
  const $ = (id) => document.getElementById(id);
  const keyName = "marquee.visitorKey." + event;
  const csrfName = "marquee.csrf." + event;
  let firstPosition = null;
  let lastView = null;

  function b64url(bytes) {
    return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function visitorKey() {
    let secret = localStorage.getItem(keyName);
    if (!secret) {
      secret = b64url(crypto.getRandomValues(new Uint8Array(32)));
      localStorage.setItem(keyName, secret);
    }
    const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
    return { secret, hash: b64url(hash) };
  }

  function fmtWait(s) {
    if (s == null) return "";
    if (s < 60) return "less than a minute";
    const m = Math.round(s / 60);
    return m < 60 ? `about ${m} minute${m === 1 ? "" : "s"}` : `about ${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function render(v) {
    lastView = v;
    $("title").textContent = v.event_name || "Waiting room";
    const head = $("headline"), detail = $("detail");
    head.className = "big state-" + v.state;
    let pct = 0;
    switch (v.state) {
      case "prequeue": {
        const secs = Math.max(0, Math.round((new Date(v.opens_at) - Date.now()) / 1000));
        head.textContent = secs > 0 ? `Opens in ${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}` : "Opening now…";
        detail.textContent = "You're in the pre-queue. Everyone here gets a random place at opening — arriving earlier doesn't help, so relax.";
        break;
      }
      case "waiting":
        if (firstPosition == null || v.position > firstPosition) firstPosition = Math.max(v.position, 1);
        pct = Math.round(100 * (1 - v.position / firstPosition));
        head.textContent = v.position <= 1 ? "You're next" : `You're number ${v.position.toLocaleString()} in line`;
        detail.textContent = `Estimated wait: ${fmtWait(v.estimated_wait_s)}. Keep this page open.`;
        break;
      case "admitted":
        pct = 100;
        head.textContent = "It's your turn!";
        detail.textContent = "Taking you to seat selection…";
        break;
      case "paused":
        head.textContent = "The queue is paused";
        detail.textContent = `You keep your place (number ${(v.position || 0).toLocaleString()} in line). It will resume shortly.`;
        break;
      case "sold_out":
        head.textContent = "Sold out";
        detail.textContent = "Every seat is taken right now. If holds expire, seats come back and the queue moves again.";
        break;
      case "closed":
        head.textContent = "The queue is closed";
        detail.textContent = "This sale is not admitting anyone.";
        break;
      case "expired":
        head.textContent = "Your place has lapsed";
        detail.textContent = "Your session ended or the page stopped checking in. Reload to join again.";
        break;
    }
    $("progress").style.width = pct + "%";
    document.querySelector("[role=progressbar]").setAttribute("aria-valuenow", String(pct));
    if (v.shuffle_seed) {
      $("seed").hidden = false;
      $("seed").textContent = "Pre-queue order seed: " + v.shuffle_seed;
    }
  }

  async function status() {
    const r = await fetch(`/v1/queue/${event}/status`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (r.status === 429) return { retry: 1000 * Number(r.headers.get("Retry-After") || 2) };
    if (r.status === 401 || r.status === 403) return { rejoin: true };
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || `status ${r.status}`);
    return { view: await r.json() };
  }

  async function join() {
    const key = await visitorKey();
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const csrf = sessionStorage.getItem(csrfName);
    if (csrf) headers["X-Marquee-CSRF"] = csrf;
    const r = await fetch(`/v1/queue/${event}/join`, { method: "POST", headers, credentials: "same-origin", body: JSON.stringify({ visitor_key_hash: key.hash }) });
    const body = await r.json();
    if (!r.ok) throw new Error(body.detail || `join ${r.status}`);
    return body;
  }

  async function loop() {
    let delay = 2000;
    try {
      let res = await status();
      if (res.rejoin) res = { view: await join() };
      if (res.view) {
        const v = res.view;
        sessionStorage.setItem(csrfName, v.csrf);
        $("error").textContent = "";
        render(v);
        if (v.state === "admitted") {
          sessionStorage.setItem("marquee.admission." + event, v.admission_token);
          location.assign(`/b/${event}`);
          return;
        }
        if (v.state === "expired" || v.state === "closed") return;
        delay = v.poll_after_ms;
      } else {
        delay = res.retry;
      }
    } catch (e) {
      $("error").textContent = "Connection trouble — still trying. (" + e.message + ")";
      delay = 3000 + Math.random() * 2000;
    }
    setTimeout(loop, delay);
  }
  loop();
  // The pre-queue countdown ticks locally; it costs the server nothing.
  setInterval(() => { if (lastView && lastView.state === "prequeue") render(lastView); }, 1000);
})();
