// Opens the stats port's dashboard in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core), waits for it to render
// /stats, prints what it shows as JSON and saves a screenshot.
// usage: node dashboard_check.js URL SCREENSHOT.png USER_DATA_DIR
"use strict";
const { chromium } = require("playwright-core");

async function main() {
  const [url, shot, userDataDir] = process.argv.slice(2);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1400, height: 1000 },
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const external = [];
    const errors = [];
    page.on("request", (r) => { if (!r.url().startsWith(new URL(url).origin)) external.push(r.url()); });
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(url, { waitUntil: "load" });
    // Two polls: the second one has a rate and a chart point.
    await page.waitForFunction(() => document.body.dataset.updated, null, { timeout: 10000 });
    const first = await page.evaluate(() => document.body.dataset.updated);
    await page.waitForFunction((f) => document.body.dataset.updated !== f, first, { timeout: 10000 });
    const shown = await page.evaluate(() => {
      const text = (id) => document.getElementById(id).textContent;
      const variants = {};
      for (const td of document.querySelectorAll("td[data-variant]")) {
        (variants[td.dataset.slot] = variants[td.dataset.slot] || {})[td.dataset.variant] = Number(td.textContent);
      }
      const segments = {};
      for (const td of document.querySelectorAll("td[data-segment]")) segments[td.dataset.segment] = Number(td.textContent);
      const profiles = {}, events = {};
      for (const td of document.querySelectorAll("td[data-profile]")) profiles[td.dataset.profile] = Number(td.textContent.replace(/,/g, ""));
      for (const td of document.querySelectorAll("td[data-event]")) events[td.dataset.event] = Number(td.textContent.replace(/,/g, ""));
      return {
        version: text("ruleset-version"), source: text("ruleset-source"), sync: text("sync"),
        reloads: text("ruleset-reloads"), decisions: Number(document.getElementById("decisions-total").dataset.value),
        decisionsText: text("decisions-total"), rate: text("decisions-rate"),
        p50: text("p50"), p99: text("p99"),
        errors: Number(document.getElementById("errors-total").dataset.value),
        variants, segments, status: text("status"), profiles, events,
        recentErrors: [...document.querySelectorAll("#recent-errors tr")].map((tr) =>
          [...tr.cells].map((td) => td.textContent)),
        config: Object.fromEntries([...document.querySelectorAll("[data-config]")].map((td) =>
          [td.dataset.config, td.textContent])),
        legends: [...document.querySelectorAll(".legend")].map((l) => l.textContent.trim()),
        warnVid: document.getElementById("warn-vid").hidden ? null : document.getElementById("warn-vid").textContent,
        folds: [...document.querySelectorAll("tr.fold")].map((tr) => [tr.dataset.fold, tr.textContent.trim()]),
        hiddenRows: document.querySelectorAll("tr[hidden]").length,
        pageHeight: document.documentElement.scrollHeight,
      };
    });
    // The axes are drawn on the canvas: count non-background pixels left of
    // the plot (the y labels) and under it (the x labels).
    shown.axisInk = await page.evaluate(() => {
      const c = document.getElementById("chart-rate");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let left = 0, bottom = 0;
      for (let y = 0; y < c.height; y++)
        for (let x = 0; x < c.width; x++) {
          if (d[(y * c.width + x) * 4 + 3] === 0) continue;
          if (x < 44) left++;
          if (y > c.height - 14) bottom++;
        }
      return { left, bottom };
    });
    // Unfold the zero segments once: the rows appear.
    const fold = 'tr.fold[data-fold="segments"]';
    if (await page.$(fold)) {
      await page.click(fold);
      shown.hiddenAfterUnfold = await page.evaluate(() =>
        document.querySelectorAll('#segments tr[hidden]').length);
      await page.click(fold);
    }
    await page.screenshot({ path: shot, fullPage: false });
    await page.screenshot({ path: shot.replace(/\.png$/, "-full.png"), fullPage: true });
    shown.external = external;
    shown.pageErrors = errors;
    process.stdout.write(JSON.stringify(shown) + "\n");
  } finally {
    await context.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
