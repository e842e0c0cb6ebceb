/**
 * Real-browser checks: the HTML of our bundles renders in Chromium (Plotly draws, tables escape).
 * Skipped only when /usr/bin/chromium is absent.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { JUPYTER_DISPLAY, dataPreview, displayFigure, histogram, htmlTable, lossCurve, plotlyBundle } from "../../sdk/viz";
import { EvalReport } from "../../sdk/eval";
import type { DomElement } from "../util/dom";

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed, so the real-browser display test cannot run`;

// DOM globals, used only inside page.evaluate callbacks (which run in the browser).
declare const document: DomElement;
declare const window: { __pwned?: number };

// One browser for the file: starting Chromium and running plotly.js take seconds on 2 cores.
let browser: Browser | undefined;
before(async () => {
  if (skip) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});
after(async () => {
  await browser?.close();
});

async function withPage(fn: (page: Page, errors: string[]) => Promise<void>): Promise<void> {
  const page = await browser!.newPage();
  try {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // Nothing may come from the network: everything a bundle needs is inline.
    await page.route("**/*", (route) => route.abort());
    await fn(page, errors);
  } finally {
    await page.close();
  }
}

const doc = (body: string) => `<!doctype html><html><head><meta charset="utf-8"></head><body>${body}</body></html>`;

test(
  "bundles render in Chromium: a loss curve with inline plotly, then lean figures and an EvalReport reusing window.Plotly",
  { skip, timeout: 90_000 },
  async () => {
    const points = [
      ...Array.from({ length: 50 }, (_, i) => ({ step: (i + 1) * 10, loss: 3 * Math.exp(-i / 20) + 0.5, split: "train" as const })),
      ...Array.from({ length: 5 }, (_, i) => ({ step: (i + 1) * 100, loss: 3 * Math.exp(-i / 2.2) + 0.7, split: "val" as const })),
    ];
    const lr = Array.from({ length: 50 }, (_, i) => ({ step: (i + 1) * 10, lr: 3e-5 * Math.min(1, (i + 1) / 10) }));
    const curve = plotlyBundle(lossCurve(points, { lr }), { inlinePlotly: true });
    const hist = displayFigure(histogram([120, 300, 512, 800, 1024, 1900], { bins: 4, cutoff: 1024 }))[JUPYTER_DISPLAY]({ inlinePlotly: false });
    const report = EvalReport.classification(["a", "b", "b", "c"], ["a", "b", "c", "c"], { split: "val" })[JUPYTER_DISPLAY]({ inlinePlotly: false });
    await withPage(async (page, errors) => {
      await page.setContent(doc(`<div id="a">${curve["text/html"]}</div><div id="b">${hist["text/html"]}</div><div id="c">${report["text/html"]}</div>`));
      await page.waitForSelector("#a svg.main-svg", { timeout: 30_000 });
      await page.waitForSelector("#b svg.main-svg", { timeout: 30_000 });
      await page.waitForSelector("#c svg.main-svg", { timeout: 30_000 });
      const a = await page.evaluate(() => ({
        traces: document.querySelectorAll("#a .scatterlayer .trace").length,
        lines: document.querySelectorAll("#a .scatterlayer .trace path.js-line").length,
        markers: document.querySelectorAll("#a .scatterlayer .trace .points path").length,
        y2: document.querySelectorAll("#a g.y2tick").length,
        legend: [...document.querySelectorAll("#a .legendtext")].map((e) => e.textContent),
      }));
      assert.equal(a.traces, 3, "train, val and lr traces");
      assert.equal(a.lines, 3, "one line path per trace");
      assert.equal(a.markers, 5, "one marker per val point");
      assert.ok(a.y2 > 0, "the learning-rate axis is drawn");
      assert.deepEqual(a.legend, ["train loss", "val loss", "learning rate"]);
      const bars = await page.evaluate(() => document.querySelectorAll("#b .barlayer .point").length);
      assert.equal(bars, 4, "histogram has one bar per bin");
      const c = await page.evaluate(() => ({
        heatmaps: document.querySelectorAll("#c .heatmaplayer .hm").length,
        cellTexts: [...document.querySelectorAll("#c .heatmaplayer text")].map((e) => e.textContent),
        tables: document.querySelectorAll("#c table.tunelab-table").length,
      }));
      assert.equal(c.heatmaps, 1);
      // rows true a, b, c; columns predicted a, b, c
      assert.deepEqual(c.cellTexts, ["1", "0", "0", "0", "1", "1", "0", "0", "1"]);
      assert.equal(c.tables, 2);
      assert.deepEqual(errors, []);
    });
  },
);

test("tables escape <script> in cells: nothing runs and the text shows as written", { skip, timeout: 60_000 }, async () => {
  const evil = `<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">`;
  const preview = dataPreview(
    [
      { text: evil, label: "pos" },
      { text: "ok", label: "neg" },
    ],
    { title: "data.jsonl" },
  );
  const table = htmlTable(["<b>col</b>"], [[evil]]);
  await withPage(async (page, errors) => {
    await page.setContent(doc(`<div id="p">${preview["text/html"]}</div><div id="t">${table}</div>`));
    const r = await page.evaluate(() => ({
      pwned: window.__pwned,
      scripts: document.querySelectorAll("#p script, #t script, #p img, #t img").length,
      cell: document.querySelector("#p tbody td")?.textContent,
      cell2: document.querySelector("#t tbody td")?.textContent,
      head: document.querySelector("#t th")?.textContent,
    }));
    assert.equal(r.pwned, undefined);
    assert.equal(r.scripts, 0);
    assert.equal(r.cell, evil);
    assert.equal(r.cell2, evil);
    assert.equal(r.head, "<b>col</b>");
    assert.deepEqual(errors, []);
  });
});
