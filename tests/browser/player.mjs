// Browser checks of the embeddable player, in Debian's headless Chromium.
// Run by tests/api/browser.rs, which starts a gateway with seeded
// recordings and passes their ids in the environment.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing ${name}`);
  return v;
};
const BASE = env("BASE"), LONG = env("LONG_SID"), LONG_BYTES = Number(env("LONG_BYTES"));
const LOST = env("LOST_SID"), UNEXPLAINED = env("UNEXPLAINED_SID"), SHOTS = env("SCREENSHOTS");
const FORMAT = process.env.LONG_FORMAT || "wav";
mkdirSync(SHOTS, { recursive: true });

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ viewport: { width: 720, height: 320 } });
  const media = [];
  page.on("response", (r) => {
    if (r.url().includes(`${LONG}.${FORMAT}`)) {
      media.push({ status: r.status(), range: r.headers()["content-range"] || "", at: Date.now() });
    }
  });

  // 1. Play, and see the time advance.
  await page.goto(`${BASE}/recordings/${LONG}/player?format=${FORMAT}`);
  await page.click("#play");
  const advanced = await page
    .waitForFunction(() => document.getElementById("audio").currentTime > 1.0, null, { timeout: 20000 })
    .then(() => true, () => false);
  check(advanced, "playing advances the time");
  const shown = await page
    .waitForFunction(() => document.getElementById("current").textContent !== "0:00", null, { timeout: 5000 })
    .then(() => true, () => false);
  check(shown, "the time display follows");
  check((await page.getAttribute("#play", "aria-label")) === "Pause", "the play button turns into pause");
  check(media.length > 0 && media.every((m) => m.status === 206), `the media element got 206s (${media.map((m) => m.status)})`);
  await page.screenshot({ path: `${SHOTS}/player-playing.png` });

  // 2. Seek to 80 % with the keyboard; the gateway must answer a 206 from there.
  const before = Date.now();
  await page.keyboard.press("8");
  const seeked = await page
    .waitForFunction(() => {
      const a = document.getElementById("audio");
      return a.duration > 0 && a.currentTime >= a.duration * 0.79 && !a.seeking;
    }, null, { timeout: 20000 })
    .then(() => true, () => false);
  check(seeked, "seeking to 80 % lands there");
  const deep = media.filter((m) => {
    const start = Number((m.range.match(/^bytes (\d+)-/) || [])[1]);
    return m.at >= before && m.status === 206 && start >= LONG_BYTES * 0.7;
  });
  check(deep.length > 0, `a 206 served the seek (${JSON.stringify(media.slice(-3))})`);
  const stillPlaying = await page
    .waitForFunction((t) => document.getElementById("audio").currentTime > t + 0.5,
      await page.evaluate(() => document.getElementById("audio").currentTime), { timeout: 15000 })
    .then(() => true, () => false);
  check(stillPlaying, "playback goes on after the seek");

  // 3. Controls: ±10 s, speed, mute.
  const t0 = await page.evaluate(() => document.getElementById("audio").currentTime);
  await page.keyboard.press("ArrowLeft");
  const t1 = await page.evaluate(() => document.getElementById("audio").currentTime);
  check(t0 - t1 > 8, `ArrowLeft goes back 10 s (${t0.toFixed(1)} → ${t1.toFixed(1)})`);
  await page.selectOption("#speed", "2");
  check(await page.evaluate(() => document.getElementById("audio").playbackRate) === 2, "speed 2×");
  await page.click("#mute");
  check(await page.evaluate(() => document.getElementById("audio").muted), "mute");
  await page.screenshot({ path: `${SHOTS}/player-seeked.png` });

  // 4. A lost recording: the explanation in place of the player.
  const lost = await browser.newPage({ viewport: { width: 900, height: 1000 }, timezoneId: "Asia/Tokyo" });
  await lost.goto(`${BASE}/recordings/${LOST}/player`);
  const text = await lost.textContent("body");
  check(text.includes("This recording was lost in incident 2017-05-09"), "lost: names the incident");
  check(text.includes("2017-05-09 10:48–11:31 PDT") && text.includes("17:48–18:31 UTC"), "lost: window in PDT and UTC");
  check(await lost.locator('a[href="/incidents/2017-05-09"]').count() === 1, "lost: links the incident page");
  const viewer = await lost.textContent(".window .localtime");
  check(viewer.trim() === "2017-05-10 02:48–03:31 (Asia/Tokyo)", `lost: window in the viewer's zone (${viewer.trim()})`);
  check(await lost.locator("audio").count() === 0, "lost: no player");
  await lost.screenshot({ path: `${SHOTS}/player-lost.png`, fullPage: true });

  // 5. An unexplained one: different words, no incident.
  const gone = await browser.newPage({ viewport: { width: 900, height: 700 } });
  await gone.goto(`${BASE}/recordings/${UNEXPLAINED}/player`);
  const t = await gone.textContent("body");
  check(t.includes("This recording is missing") && t.includes("no known incident explains"), "unexplained: its own text");
  check(!t.includes("2017-05-09 10:48"), "unexplained: no incident window");
  await gone.screenshot({ path: `${SHOTS}/player-unexplained.png`, fullPage: true });

  // 6. Embedded in a page of another origin: postMessage events.
  // The CRM's own page (served here by the browser itself), which the
  // gateway lets frame the player; another origin may not.
  const crmPage = `<script>window.events = []; addEventListener("message", (e) => events.push(e.data));</script>
    <iframe id="good" src="${BASE}/recordings/${LONG}/player?autoplay=1&format=${FORMAT}" width="700" height="200"></iframe>
    <iframe id="bad" src="${BASE}/recordings/${LOST}/player" width="700" height="200"></iframe>`;
  const serve = (port) => new Promise((ok) => {
    const server = createServer((_, res) => { res.setHeader("content-type", "text/html"); res.end(crmPage); });
    server.listen(Number(port), "127.0.0.1", () => ok(server));
  });
  const servers = [await serve(env("CRM_PORT")), await serve(env("EVIL_PORT"))];
  const host = await browser.newPage({ viewport: { width: 800, height: 400 } });
  await host.goto(`http://localhost:${env("CRM_PORT")}/calls`);
  const events = await host
    .waitForFunction(() => {
      const types = window.events.map((e) => e.type + ":" + (e.verdict || ""));
      return types.includes("play:") && types.includes("error:lost") ? types : null;
    }, null, { timeout: 20000 })
    .then((h) => h.jsonValue(), () => host.evaluate(() => window.events));
  check(Array.isArray(events) && events.includes("play:") && events.includes("error:lost"),
    `postMessage tells the page play and error:lost (${JSON.stringify(events)})`);
  await host.screenshot({ path: `${SHOTS}/player-embedded.png` });
  await host.goto(`http://localhost:${env("EVIL_PORT")}/calls`);
  await host.waitForTimeout(2000);
  const stolen = await host.evaluate(() => window.events.length);
  check(stolen === 0, `another origin cannot frame the player (${stolen} events)`);
  servers.forEach((s) => s.close());
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(`${failures.length} browser checks failed`);
  process.exit(1);
}
console.log("all browser checks passed");
