// The demo CRM page in headless Chromium: an agent presses play on a good
// call and hears it; presses play on a lost one and reads why.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const BASE = process.env.BASE, GOOD = process.env.GOOD_SID, LOST = process.env.LOST_SID;
const SHOTS = process.env.SCREENSHOTS;
mkdirSync(SHOTS, { recursive: true });
const failures = [];
const check = (ok, what) => { console.log(`${ok ? "ok  " : "FAIL"} ${what}`); if (!ok) failures.push(what); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${BASE}/demo`);
  await page.click(`button.play[data-sid="${GOOD}"]`);
  const frame = page.frameLocator("#player-frame");
  const playing = await page
    .waitForFunction(() => {
      const f = document.getElementById("player-frame").contentDocument;
      const a = f && f.getElementById("audio");
      return a && a.currentTime > 0.5;
    }, null, { timeout: 20000 })
    .then(() => true, () => false);
  check(playing, "a good call plays in the embedded player");
  const status = await page.waitForFunction(
    () => document.getElementById("np-meta").textContent.startsWith("Playing"), null, { timeout: 5000 })
    .then(() => true, () => false);
  check(status, "the CRM page hears the player's play event");
  await page.screenshot({ path: `${SHOTS}/crm-playing.png` });

  await page.click(`button.play[data-sid="${LOST}"]`);
  const explained = await frame.locator("text=This recording was lost in incident 2017-05-09")
    .waitFor({ timeout: 10000 }).then(() => true, () => false);
  check(explained, "a lost call shows its explanation in place of the player");
  check(await frame.locator('a[href="/incidents/2017-05-09"]').count() === 1, "with the incident link");
  const told = await page.waitForFunction(
    () => document.getElementById("np-meta").textContent.includes("lost"), null, { timeout: 5000 })
    .then(() => true, () => false);
  check(told, "the CRM page hears the error with its verdict");
  await page.screenshot({ path: `${SHOTS}/crm-lost.png` });
} finally {
  await browser.close();
}
if (failures.length) { console.log(`${failures.length} browser checks failed`); process.exit(1); }
console.log("all browser checks passed");
