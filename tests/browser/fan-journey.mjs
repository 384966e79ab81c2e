// A fan's journey in a real browser: open the waiting room (its page solves the event's
// proof of work before joining), see a place in line, get admitted
// when the operator opens the sale, land on the booking page, hold the best two seats and see
// the countdown. Saves a screenshot of each step. Exits non-zero on any failure.
//
// Usage: node fan-journey.mjs BASE_URL EVENT_ID OPERATOR_TOKEN ARTIFACT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, event, operatorToken, artifacts] = process.argv.slice(2);
if (!artifacts) {
  console.error("usage: node fan-journey.mjs BASE_URL EVENT_ID OPERATOR_TOKEN ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } }); // a phone
  page.on("pageerror", (e) => { console.error("page error:", e.message); process.exitCode = 1; });
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) { console.error("CSP violation:", m.text()); process.exitCode = 1; } });
  await page.goto(`${base}/e/${event}`);
  // Paused: the fan sees its place in line.
  await page.waitForFunction(() => /in line|next|paused/i.test(document.getElementById("headline").textContent), null, { timeout: 15000 });
  const headline = await page.textContent("#headline");
  const detail = await page.textContent("#detail");
  console.log("waiting room:", headline, "|", detail);
  await page.screenshot({ path: `${artifacts}/1-waiting-room.png`, fullPage: true });

  // The operator opens the sale; the worker admits; the page moves on by itself.
  const opened = await fetch(`${base}/admin/v1/events/${event}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${operatorToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ state: "open" }),
  });
  if (!opened.ok) throw new Error(`opening the event failed: ${opened.status}`);
  await page.waitForURL(`${base}/b/${event}`, { timeout: 30000 });
  await page.waitForSelector("[role=gridcell]", { timeout: 15000 });
  console.log("booking page with", await page.locator("[role=gridcell]").count(), "seats");

  await page.selectOption("#quantity", "2");
  await page.click("#hold-best");
  await page.waitForFunction(() => /left/.test(document.getElementById("countdown").textContent), null, { timeout: 15000 });
  console.log("held:", (await page.locator("#hold-lines tr").allTextContents()).join("; "), "| total", await page.textContent("#hold-total"), "|", await page.textContent("#countdown"));
  await page.screenshot({ path: `${artifacts}/2-seats-held.png`, fullPage: true });
  const error = (await page.textContent("#error")).trim();
  if (error) throw new Error(`the page shows an error: ${error}`);

  // Pay with a declined card first, then with one that works; the ticket appears.
  await page.fill("#email", "fan@example.com");
  await page.selectOption("#card", "pm_card_chargeDeclined");
  await page.click("#pay");
  await page.waitForFunction(() => /declined/i.test(document.getElementById("error").textContent), null, { timeout: 15000 });
  console.log("declined:", await page.textContent("#error"));
  await page.selectOption("#card", "pm_card_visa");
  await page.click("#pay");
  await page.waitForSelector("#ticket-card:not([hidden]) svg", { timeout: 15000 });
  console.log("ticket:", await page.textContent("#ticket-code"), "|", await page.textContent("#ticket-detail"));
  await page.screenshot({ path: `${artifacts}/3-ticket.png`, fullPage: true });
  console.log("DONE");
} finally {
  await browser.close();
}
