// The fan's pages as a phone and a laptop see them (issue 14): for each size, a fan waits in
// the waiting room, is admitted, sees the whole seat map (every seat inside the visible map,
// or the map scrolls with a cue), chooses two seats with the keyboard alone, holds them, sees
// each seat's price and the total, pays, and opens the ticket page. axe-core checks the
// waiting, booking, ticket and console pages; any serious or critical violation fails.
// Screenshots of each page at each size go to ARTIFACT_DIR. Prints one JSON line per fan
// (`{"size":…,"reservation":…,"seats":[…],"total_cents":…}`) for the Rust test to audit, then
// DONE.
//
// Usage: node fan-pages.mjs BASE_URL WAITING_EVENT OPEN_EVENT OPERATOR_TOKEN ARTIFACT_DIR
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [base, waitingEvent, openEvent, operatorToken, artifacts] = process.argv.slice(2);
if (!artifacts) {
  console.error("usage: node fan-pages.mjs BASE_URL WAITING_EVENT OPEN_EVENT OPERATOR_TOKEN ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const SIZES = [
  { name: "phone", width: 360, height: 740 },
  { name: "laptop", width: 1280, height: 800 },
];

function fail(msg) { throw new Error(msg); }

// axe-core on the page as it is now; serious and critical violations fail the run.
async function audit(page, what) {
  // Evaluated through the DevTools protocol rather than added as an inline script, which the
  // waiting page's content security policy (rightly) refuses.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result) console.error(`axe ${what}: ${v.impact} ${v.id} — ${v.help} ${JSON.stringify(v.nodes)}`);
  if (bad.length) fail(`axe found ${bad.length} serious or critical violation(s) on ${what}: ${bad.map((v) => v.id).join(", ")}`);
  console.error(`axe ${what}: no serious or critical violations (${result.length} lesser)`);
}

// Where the seats are: how many lie outside the map's visible area, whether the map scrolls
// sideways and shows its cue, and the smallest seat box. Seats outside are only allowed where
// the map scrolls, and a sideways scroll must show its cue.
async function seatsVisibleOrScrollCue(page, what) {
  const r = await page.evaluate(() => {
    const v = document.getElementById("viewport");
    const vp = v.getBoundingClientRect();
    const cells = [...document.querySelectorAll("[role=gridcell]")];
    const boxes = cells.map((c) => c.getBoundingClientRect());
    const outside = boxes.filter((b) => b.left < vp.left - 0.5 || b.right > vp.right + 0.5 || b.top < vp.top - 0.5 || b.bottom > vp.bottom + 0.5).length;
    return {
      seats: cells.length,
      outside,
      sideways: v.scrollWidth > v.clientWidth + 2,
      down: v.scrollHeight > v.clientHeight + 2,
      cue: !document.getElementById("scroll-cue").hidden,
      smallest: Math.min(...boxes.map((b) => Math.min(b.width, b.height))),
    };
  });
  if (r.outside > 0 && !r.sideways && !r.down) fail(`${what}: ${r.outside} seats cut off and the map does not scroll: ${JSON.stringify(r)}`);
  if (r.sideways && !r.cue) fail(`${what}: the map scrolls sideways without its cue: ${JSON.stringify(r)}`);
  return r;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  for (const size of SIZES) {
    const context = await browser.newContext({ viewport: { width: size.width, height: size.height }, reducedMotion: "reduce" });
    const page = await context.newPage();
    page.on("pageerror", (e) => { console.error("page error:", e.message); process.exitCode = 1; });
    page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) { console.error("CSP violation:", m.text()); process.exitCode = 1; } });
    const shot = (n) => page.screenshot({ path: `${artifacts}/${size.name}-${n}.png`, fullPage: true });

    // The waiting room of a paused sale: the fan's place, announced politely.
    await page.goto(`${base}/e/${waitingEvent}`);
    await page.waitForFunction(() => /in line|next|paused/i.test(document.getElementById("headline").textContent), null, { timeout: 15000 });
    if (!(await page.locator("[aria-live=polite]").count())) fail("the waiting page has no polite live region");
    // The live message, as text: its markup is shown, never parsed.
    await page.waitForSelector("#message:not([hidden])", { timeout: 10000 });
    const message = await page.textContent("#message");
    if (!message.includes("<b>not bold</b>")) fail(`the message is not shown as text: ${message}`);
    if (await page.locator("#message b").count()) fail("the message's markup became HTML");
    const title = await page.textContent("#title");
    if (!/Dune: Part Three/.test(title)) fail(`the display name is not the title: ${title}`);
    if ((await page.getAttribute("#logo", "referrerpolicy")) !== "no-referrer") fail("the logo sends a referrer");
    await shot("1-waiting-room");
    await audit(page, `waiting room (${size.name})`);

    // An open sale: admitted straight on to the booking page.
    await page.goto(`${base}/e/${openEvent}`);
    await page.waitForURL(`${base}/b/${openEvent}`, { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll("[role=gridcell]").length > 0, null, { timeout: 15000 });
    const whole = await seatsVisibleOrScrollCue(page, `${size.name} whole map`);
    if (whole.outside !== 0) fail(`${size.name}: the whole-map view leaves ${whole.outside} seats outside the map`);
    console.error(`${size.name} whole map:`, JSON.stringify(whole));
    const legend = await page.textContent("#legend");
    for (const c of ["Classic", "Prime", "Recliner", "Wheelchair", "Companion"]) if (!legend.includes(c)) fail(`the legend misses ${c}: ${legend}`);
    await shot("2-seat-map");
    await audit(page, `booking page (${size.name})`);

    // Zoomed in far enough to aim a finger: seats at least 24 px, and the map scrolls with a cue
    // wherever it no longer fits.
    await page.click("#zoom-in");
    const zoomed = await seatsVisibleOrScrollCue(page, `${size.name} zoomed`);
    if (zoomed.smallest < 24) fail(`${size.name}: zoomed-in seats are ${zoomed.smallest} px, under 24`);
    console.error(`${size.name} zoomed:`, JSON.stringify(zoomed));
    await shot("3-zoomed");

    // The keyboard alone: Tab into the map, arrows to a Prime seat, Space twice, Tab to Hold.
    await page.focus("#show");
    let inGrid = false;
    for (let i = 0; i < 25 && !inGrid; i++) {
      await page.keyboard.press("Tab");
      inGrid = await page.evaluate(() => document.activeElement?.getAttribute("role") === "gridcell");
    }
    if (!inGrid) fail("Tab never reaches the seat map");
    // From the first free seat (row A) down to row H, a Prime row.
    for (let i = 0; i < 7; i++) await page.keyboard.press("ArrowDown");
    // Each size's fan takes its own two seats (the phone's fan bought H-11 and H-12).
    for (let i = 0; i < (size.name === "phone" ? 10 : 14); i++) await page.keyboard.press("ArrowRight");
    const first = await page.evaluate(() => document.activeElement.getAttribute("aria-label"));
    await page.keyboard.press("Space");
    await page.keyboard.press("ArrowRight");
    const second = await page.evaluate(() => document.activeElement.getAttribute("aria-label"));
    await page.keyboard.press(" ");
    const chosen = await page.locator("[role=gridcell][aria-selected=true]").count();
    if (chosen !== 2) fail(`two seats chosen from the keyboard, found ${chosen} (${first} | ${second})`);
    for (const label of [first, second]) if (!/^Row [A-Z]+, seat \d+, Prime, .+, (available|chosen)/.test(label)) fail(`accessible name: ${label}`);
    console.error(`${size.name} chose:`, first, "|", second);
    await page.keyboard.press("Tab");
    const onHold = await page.evaluate(() => document.activeElement.id);
    if (onHold !== "hold") fail(`Tab from the map goes to ${onHold}, not the Hold button`);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#hold-card:not([hidden])", { timeout: 15000 });
    await page.waitForFunction(() => /left to pay/.test(document.getElementById("countdown").textContent), null, { timeout: 5000 });
    const lines = await page.locator("#hold-lines tr").allTextContents();
    const total = await page.textContent("#hold-total");
    if (lines.length !== 2 || !lines.every((l) => l.includes("Prime"))) fail(`the hold lists ${JSON.stringify(lines)}`);
    console.error(`${size.name} held:`, JSON.stringify(lines), "total", total);
    // The countdown stays in view while the fan fills in the payment form.
    await page.focus("#email");
    const countdownVisible = await page.evaluate(() => {
      const b = document.getElementById("countdown-bar").getBoundingClientRect();
      return b.top >= 0 && b.bottom <= window.innerHeight + 0.5 && b.height > 0;
    });
    if (!countdownVisible) fail("the countdown is out of view while paying");
    // More time, once: the countdown moves on by the event's extension (10 + 5 minutes).
    await page.click("#extend");
    await page.waitForFunction(() => /^1[45]:\d\d left/.test(document.getElementById("countdown").textContent), null, { timeout: 5000 });
    if (await page.isVisible("#extend")) fail("the extension is offered twice");
    await shot("4-held");
    await audit(page, `booking page with a hold (${size.name})`);

    await page.fill("#email", "fan@example.com");
    await page.selectOption("#card", "pm_card_visa");
    await page.click("#pay");
    await page.waitForSelector("#ticket-card:not([hidden]) svg", { timeout: 15000 });
    const link = await page.getAttribute("#ticket-link", "href");
    const reservation = decodeURIComponent(link.replace(/^\/t\//, ""));
    await shot("5-paid");

    // The ticket page: every seat with its price, the total, the QR code.
    await page.goto(`${base}${link}`);
    await page.waitForSelector("#code-card:not([hidden]) svg", { timeout: 15000 });
    const ticketLines = await page.locator("#lines tr").allTextContents();
    const ticketTotal = await page.textContent("#total");
    if (ticketLines.length !== 2 || ticketTotal !== total) fail(`ticket page: ${JSON.stringify(ticketLines)} total ${ticketTotal}, held ${total}`);
    await shot("6-ticket");
    await audit(page, `ticket page (${size.name})`);
    const seatsHeld = lines.map((l) => l.match(/Row ([A-Z]+), seat (\d+)/)).map((m) => `${m[1]}-${m[2]}`);
    console.log(JSON.stringify({ size: size.name, reservation, seats: seatsHeld, total }));

    // Find my booking: the answer never says whether the address booked.
    await page.goto(`${base}/find`);
    await page.fill("#email", "fan@example.com");
    await page.click("#send");
    await page.waitForFunction(() => /If that address has bookings/.test(document.getElementById("result").textContent), null, { timeout: 10000 });
    await shot("6b-find");
    await audit(page, `find my booking (${size.name})`);

    // The operator console, signed out and signed in.
    await page.goto(`${base}/ops`);
    await page.waitForSelector("#token");
    await audit(page, `console, signed out (${size.name})`);
    await page.fill("#token", operatorToken);
    await page.click("#signin");
    await page.waitForSelector("#events-card:not([hidden])", { timeout: 10000 });
    await page.waitForSelector("#audit-card:not([hidden])", { timeout: 10000 });
    const who = await page.textContent("#who-text");
    if (!/Signed in as config-1 \(admin\)/.test(who)) fail(`the console says: ${who}`);
    // The charts: drawn from the worker's points, and moving as new ones come in (a change
    // of the rate is in the next point).
    await page.waitForSelector("#charts-card:not([hidden])", { timeout: 10000 });
    const points = () => page.evaluate(() => (document.querySelector("#charts polyline")?.getAttribute("points") || "").trim().split(" ").filter(Boolean).length);
    await page.waitForFunction(() => (document.querySelector("#charts polyline")?.getAttribute("points") || "").trim().split(" ").length >= 2, null, { timeout: 15000 });
    const before = await points();
    const rate = page.locator("#events input.num").first();
    await rate.fill("1200");
    await rate.dispatchEvent("change");
    await page.waitForFunction((n) => (document.querySelector("#charts polyline")?.getAttribute("points") || "").trim().split(" ").length > n, before, { timeout: 15000 });
    if (!(await page.getAttribute("#charts svg", "aria-label"))) fail("a chart has no text alternative");
    await page.waitForSelector("#message-card:not([hidden])", { timeout: 10000 });
    await page.waitForSelector("#codes-card:not([hidden])", { timeout: 10000 });
    // The preview shows what a fan would see, as text.
    await page.fill("#msg-text", "Doors open at 7 <i>sharp</i>");
    if ((await page.textContent("#pv-message")) !== "Doors open at 7 <i>sharp</i>") fail("the preview is not the message as text");
    // A colour too dark for the pages' text is refused beside its field.
    await page.fill("#msg-accent", "#1b1d36");
    await page.click("#msg-save");
    await page.waitForFunction(() => /contrast/.test(document.getElementById("msg-accent-error").textContent), null, { timeout: 10000 });
    // An event with every setting: a bad one is named beside its field, then it is made.
    await page.selectOption("#set-event", "");
    await page.fill("#set-name", `Console-made on-sale ${size.name}`);
    await page.fill("#set-rate_per_minute", "0");
    await page.click("#set-save");
    await page.waitForFunction(() => document.getElementById("set-rate_per_minute-error").textContent.length > 0, null, { timeout: 10000 });
    await page.fill("#set-rate_per_minute", "900");
    await page.selectOption("#set-queue_mode", "safety_net");
    await page.click("#set-save");
    await page.waitForFunction(() => /Created/.test(document.getElementById("set-done").textContent), null, { timeout: 10000 });
    await shot("7-console");
    await audit(page, `console (${size.name})`);
    await context.close();
  }

  // The waiting room in Hindi and in Spanish, chosen by the browser's language, and the
  // switcher taking a fan to French; at a phone's size, checked with axe, looked at.
  for (const [locale, lang, words] of [["hi-IN", "hi", /कतार/], ["es-ES", "es", /cola/]]) {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, locale, reducedMotion: "reduce" });
    const page = await context.newPage();
    page.on("pageerror", (e) => { console.error("page error:", e.message); process.exitCode = 1; });
    page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) { console.error("CSP violation:", m.text()); process.exitCode = 1; } });
    await page.goto(`${base}/e/${waitingEvent}`);
    if ((await page.getAttribute("html", "lang")) !== lang) fail(`the waiting page is not in ${lang}`);
    await page.waitForFunction((re) => new RegExp(re).test(document.getElementById("headline").textContent), words.source, { timeout: 15000 });
    await page.screenshot({ path: `${artifacts}/phone-1-waiting-room-${lang}.png`, fullPage: true });
    await audit(page, `waiting room in ${lang}`);
    if (lang === "es") {
      await page.selectOption("#lang", "fr");
      await page.waitForFunction(() => document.documentElement.lang === "fr", null, { timeout: 10000 });
      await page.waitForFunction(() => /file/.test(document.getElementById("headline").textContent), null, { timeout: 15000 });
    }
    await context.close();
  }
  console.log("DONE");
} finally {
  await browser.close();
}
