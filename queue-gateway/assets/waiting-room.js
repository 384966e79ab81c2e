// The waiting room: join (with a possession key the browser keeps), then poll status at the
// interval the server asks for, and go to seat selection once admitted.
(function () {
  "use strict";
  const event = document.body.dataset.event;
  const $ = (id) => document.getElementById(id);
  const { t, number } = window.marquee;
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
    if (s < 60) return t("wait.lessThanMinute");
    const m = Math.round(s / 60);
    return m < 60 ? t("wait.aboutMinutes", { n: number(m) }) : t("wait.aboutHours", { h: number(Math.floor(m / 60)), m: number(m % 60) });
  }

  // The operator's message and the event's look: text as text (never HTML), the accent only
  // as the colour booking-core checked, the logo only from https (the page's CSP allows no
  // other images) and without a referrer.
  function present(v) {
    $("title").textContent = v.display_name || v.event_name || t("wait.title");
    const msg = $("message");
    if (msg.textContent !== (v.message || "")) msg.textContent = v.message || "";
    msg.hidden = !v.message;
    if (v.accent_color && /^#[0-9a-f]{6}$/.test(v.accent_color)) document.documentElement.style.setProperty("--accent", v.accent_color);
    else document.documentElement.style.removeProperty("--accent");
    const logo = $("logo");
    if (v.logo_url && v.logo_url.startsWith("https://")) {
      if (logo.getAttribute("src") !== v.logo_url) logo.src = v.logo_url;
      logo.hidden = false;
    } else {
      logo.hidden = true;
      logo.removeAttribute("src");
    }
  }

  function render(v) {
    lastView = v;
    present(v);
    const head = $("headline"), detail = $("detail");
    head.className = "big state-" + v.state;
    // Changes are announced politely, but not the pre-queue's countdown, which ticks every
    // second: a screen reader would read nothing else.
    head.parentElement.setAttribute("aria-live", v.state === "prequeue" ? "off" : "polite");
    let pct = 0;
    switch (v.state) {
      case "prequeue": {
        const secs = Math.max(0, Math.round((new Date(v.opens_at) - Date.now()) / 1000));
        head.textContent = secs > 0 ? t("wait.opensIn", { time: `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}` }) : t("wait.openingNow");
        detail.textContent = t("wait.prequeueDetail");
        break;
      }
      case "waiting":
        if (firstPosition == null || v.position > firstPosition) firstPosition = Math.max(v.position, 1);
        pct = Math.round(100 * (1 - v.position / firstPosition));
        head.textContent = v.position <= 1 ? t("wait.next") : t("wait.number", { n: number(v.position) });
        detail.textContent = t("wait.estimate", { wait: fmtWait(v.estimated_wait_s) });
        break;
      case "admitted":
        pct = 100;
        head.textContent = t("wait.turn");
        detail.textContent = t("wait.toSeats");
        break;
      case "paused":
        head.textContent = t("wait.paused");
        detail.textContent = t("wait.pausedDetail", { n: number(v.position || 0) });
        break;
      case "sold_out":
        head.textContent = t("wait.soldOut");
        detail.textContent = t("wait.soldOutDetail");
        break;
      case "closed":
        head.textContent = t("wait.closed");
        detail.textContent = t("wait.closedDetail");
        break;
      case "expired":
        head.textContent = t("wait.expired");
        detail.textContent = t("wait.expiredDetail");
        break;
    }
    $("progress").style.width = pct + "%";
    document.querySelector("[role=progressbar]").setAttribute("aria-valuenow", String(pct));
    if (v.shuffle_seed) {
      $("seed").hidden = false;
      $("seed").textContent = t("wait.seed", { seed: v.shuffle_seed });
    }
  }

  async function status() {
    const r = await fetch(`/v1/queue/${event}/status`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (r.status === 429) return { retry: 1000 * Number(r.headers.get("Retry-After") || 2) };
    // Busy or briefly without its queue store: the place is kept; come back when told, spread
    // out so that every page does not return at the same moment.
    if (r.status === 503) return { retry: 1000 * Number(r.headers.get("Retry-After") || 2) * (1 + Math.random()), busy: true };
    if (r.status === 401 || r.status === 403) return { rejoin: true };
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || `status ${r.status}`);
    return { view: await r.json() };
  }

  // SHA-256 of an ASCII string, synchronous: the proof of work tries thousands of nonces, and
  // crypto.subtle's per-call promise costs more than the hash itself.
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  function sha256(text) {
    const n = text.length, blocks = ((n + 9 + 63) >> 6) << 4, w = new Uint32Array(blocks);
    for (let i = 0; i < n; i++) w[i >> 2] |= text.charCodeAt(i) << (24 - (i & 3) * 8);
    w[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    w[blocks - 1] = n * 8;
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const m = new Uint32Array(64);
    const rot = (x, r) => (x >>> r) | (x << (32 - r));
    for (let b = 0; b < blocks; b += 16) {
      for (let t = 0; t < 64; t++) {
        if (t < 16) m[t] = w[b + t];
        else {
          const a = m[t - 15], c = m[t - 2];
          m[t] = m[t - 16] + (rot(a, 7) ^ rot(a, 18) ^ (a >>> 3)) + m[t - 7] + (rot(c, 17) ^ rot(c, 19) ^ (c >>> 10));
        }
      }
      let [A, B, C, D, E, F, G, H] = h;
      for (let t = 0; t < 64; t++) {
        const t1 = (H + (rot(E, 6) ^ rot(E, 11) ^ rot(E, 25)) + ((E & F) ^ (~E & G)) + K[t] + m[t]) >>> 0;
        const t2 = ((rot(A, 2) ^ rot(A, 13) ^ rot(A, 22)) + ((A & B) ^ (A & C) ^ (B & C))) >>> 0;
        H = G; G = F; F = E; E = (D + t1) >>> 0; D = C; C = B; B = A; A = (t1 + t2) >>> 0;
      }
      h[0] += A; h[1] += B; h[2] += C; h[3] += D; h[4] += E; h[5] += F; h[6] += G; h[7] += H;
    }
    return h;
  }
  function zeroBits(h) {
    let bits = 0;
    for (const word of h) {
      if (word === 0) { bits += 32; continue; }
      return bits + Math.clz32(word);
    }
    return bits;
  }

  // Proof of work, when the event asks for it: a nonce whose hash with the challenge starts
  // with `bits` zero bits. Worked in slices so the page stays responsive.
  async function proofOfWork() {
    const r = await fetch(`/v1/queue/${event}/challenge`, { headers: { Accept: "application/json" } });
    const c = await r.json();
    if (!r.ok) throw new Error(c.detail || `challenge ${r.status}`);
    if (!c.bits) return undefined;
    $("headline").textContent = t("wait.checkingBrowser");
    for (let nonce = 0; ; ) {
      const end = nonce + 4096;
      for (; nonce < end; nonce++) {
        if (zeroBits(sha256(`${c.challenge}:${nonce}`)) >= c.bits) return { challenge: c.challenge, nonce: String(nonce) };
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  async function join(accessCode) {
    const key = await visitorKey();
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const csrf = sessionStorage.getItem(csrfName);
    if (csrf) headers["X-Marquee-CSRF"] = csrf;
    const pow = await proofOfWork();
    const body = { visitor_key_hash: key.hash, pow };
    // The code goes in the body only: never in a URL, never stored.
    if (accessCode) body.access_code = accessCode;
    const r = await fetch(`/v1/queue/${event}/join`, { method: "POST", headers, credentials: "same-origin", body: JSON.stringify(body) });
    const answer = await r.json();
    if (!r.ok) { const e = new Error(answer.detail || `join ${r.status}`); e.status = r.status; throw e; }
    return answer;
  }

  $("code-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const input = $("code"), said = $("code-status");
    const code = input.value.trim();
    if (!code) { said.textContent = t("wait.codeEmpty"); return; }
    said.textContent = t("wait.codeChecking");
    try {
      const v = await join(code);
      input.value = "";
      said.textContent = v.state === "admitted" ? t("wait.codeAdmitted") : t("wait.codeLane");
      sessionStorage.setItem(csrfName, v.csrf);
      render(v);
      if (v.state === "admitted") {
        sessionStorage.setItem("marquee.admission." + event, v.admission_token);
        location.assign(`/b/${event}`);
      }
    } catch (e) {
      said.textContent = e.status === 403 ? t("wait.codeWrong") : e.status === 429 ? t("wait.codeLimited") : e.message;
    }
  };

  // Leaving gives the place up for good (the next fan moves up); the page stops checking in.
  let left = false;
  $("leave").onclick = async () => {
    if (!window.confirm(t("wait.leaveConfirm"))) return;
    const headers = { Accept: "application/json" };
    const csrf = sessionStorage.getItem(csrfName);
    if (csrf) headers["X-Marquee-CSRF"] = csrf;
    const r = await fetch(`/v1/queue/${event}/place`, { method: "DELETE", headers, credentials: "same-origin" });
    if (r.status !== 204) { $("error").textContent = (await r.json().catch(() => ({}))).detail || t("wait.leaveFailed", { status: r.status }); return; }
    left = true;
    sessionStorage.removeItem(csrfName);
    $("headline").className = "big";
    $("headline").textContent = t("wait.left");
    $("detail").textContent = t("wait.leftDetail");
    $("leave").hidden = true;
  };

  async function loop() {
    if (left) return;
    let delay = 2000;
    try {
      let res = await status();
      if (res.rejoin) res = { view: await join() };
      if (res.view) {
        const v = res.view;
        sessionStorage.setItem(csrfName, v.csrf);
        $("error").textContent = "";
        if (left) return;
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
        $("error").textContent = res.busy ? t("wait.busy") : "";
      }
    } catch (e) {
      $("error").textContent = t("wait.stillTrying", { detail: e.message });
      delay = 3000 + Math.random() * 2000;
    }
    setTimeout(loop, delay);
  }
  loop();
  // The pre-queue countdown ticks locally; it costs the server nothing.
  setInterval(() => { if (lastView && lastView.state === "prequeue") render(lastView); }, 1000);
})();
