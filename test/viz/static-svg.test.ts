/**
 * tunelab's static SVG figures: what each figure kind draws (counted from the data), escaping, and, in Chromium,
 * that every SVG parses as XML (DOMParser, image/svg+xml) and loads as an <img> in a page with JavaScript off.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import {
  barChart,
  confusionHeatmap,
  figureSvg,
  histogram,
  lossCurve,
  niceTicks,
  plotlyBundle,
  plotlyHtml,
  STATIC_CLASS,
  type PlotlyFigure,
} from "../../sdk/viz";

const CHROMIUM = "/usr/bin/chromium";
const noChromium = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;

let browser: Browser | undefined;
before(async () => {
  if (noChromium) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
after(async () => {
  await browser?.close();
});

const losses = [
  ...Array.from({ length: 40 }, (_, i) => ({ step: i + 1, loss: 2 * Math.exp(-i / 15) + 0.1, split: "train" as const })),
  ...[10, 20, 30, 40].map((step) => ({ step, loss: 1.5 * Math.exp(-step / 20), split: "val" as const })),
];

function count(svg: string, re: RegExp): number {
  return (svg.match(re) ?? []).length;
}

test("a loss curve: one polyline per series (a NaN breaks it), markers on the val series, an lr axis", () => {
  const withGap = losses.map((p) => (p.split === "train" && p.step === 20 ? { ...p, loss: NaN } : p));
  const lr = Array.from({ length: 40 }, (_, i) => ({ step: i + 1, lr: 1e-3 * Math.min(1, (i + 1) / 5) }));
  const svg = figureSvg(lossCurve(withGap, { lr, title: "Loss" }));
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="700" height="420" viewBox="0 0 700 420"/);
  // train: 19 points, gap, 20 points -> 2 polylines; val: 1; lr: 1.
  assert.equal(count(svg, /<polyline /g), 4);
  const trainRuns = [...svg.matchAll(/<polyline points="([^"]+)"[^>]*stroke="#1f77b4"/g)].map((m) => m[1].split(" ").length);
  assert.deepEqual(trainRuns, [19, 20]);
  assert.equal(count(svg, /<circle /g), 4, "a marker per val point");
  assert.match(svg, />learning rate</);
  assert.match(svg, />4e-4</, "small lr ticks in exponent form");
  for (const label of ["train loss", "val loss", "learning rate"]) assert.match(svg, new RegExp(`>${label}</text>`), `legend entry ${label}`);
});

test("points map into the plot area in order: a falling loss draws a falling line", () => {
  const svg = figureSvg(lossCurve(losses.filter((p) => p.split === "train")));
  const pts = /<polyline points="([^"]+)"/
    .exec(svg)![1]
    .split(" ")
    .map((p) => p.split(",").map(Number));
  assert.equal(pts.length, 40);
  for (let i = 1; i < pts.length; i++) {
    assert.ok(pts[i][0] > pts[i - 1][0], "x grows with step");
    assert.ok(pts[i][1] > pts[i - 1][1], "y (pixels, downwards) grows as the loss falls");
  }
  for (const [x, y] of pts) assert.ok(x >= 64 && x <= 700 - 24 && y >= 0 && y <= 420, `${x},${y} inside the plot`);
});

test("a confusion heatmap: a cell per entry, coloured darker for more, with its count", () => {
  const m = [
    [5, 1, 0],
    [0, 7, 2],
    [1, 0, 9],
  ];
  const svg = figureSvg(confusionHeatmap(m, ["a", "b", "c"]));
  const cells = [...svg.matchAll(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="(#[0-9a-f]{6})"\/><text [^>]*>(\d+)<\/text>/g)];
  assert.equal(cells.length, 9);
  assert.deepEqual(
    cells.map((c) => Number(c[2])),
    m.flat(),
  );
  const lum = (hex: string) => [1, 3, 5].reduce((s, i) => s + parseInt(hex.slice(i, i + 2), 16), 0);
  const byCount = cells.map((c) => ({ n: Number(c[2]), l: lum(c[1]) })).sort((a, b) => a.n - b.n);
  for (let i = 1; i < byCount.length; i++) assert.ok(byCount[i].l <= byCount[i - 1].l, "more is darker");
  // 5 of 0..9 sits at 0.556 of the colorscale: 2/9 of the way from #6baed6 (0.5) to #2171b5 (0.75).
  assert.equal(cells[0][1], "#5ba0cf");
});

test("bars and histograms: a rect per bar with height proportional to its count", () => {
  const svg = figureSvg(barChart({ x: 10, y: 20, z: 5 }));
  const heights = [...svg.matchAll(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)" fill="#1f77b4"/g)].map((m) => Number(m[1]));
  assert.equal(heights.length, 3);
  assert.ok(Math.abs(heights[0] / heights[1] - 2) < 0.02, `20 is twice 10: ${heights}`);
  const hist = figureSvg(histogram([1, 2, 2, 3, 3, 3, 4, 4, 4, 4], { bins: 4, cutoff: 3.5 }));
  assert.equal(count(hist, /fill="#1f77b4"/g), 4);
  assert.match(hist, /stroke-dasharray="5,4"/, "the cutoff line");
  assert.match(hist, />cutoff_len 3\.50: 4 above</);
});

test("text is escaped: titles, labels and legend names cannot inject markup", () => {
  const fig = barChart({ "<script>alert(1)</script>": 1, "a&b": 2 }, { title: `"quoted" <b>bold</b>` });
  const svg = figureSvg(fig);
  assert.doesNotMatch(svg, /<script|<b>/);
  assert.match(svg, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(svg, /a&amp;b/);
  assert.match(svg, /&quot;quoted&quot; &lt;b&gt;bold&lt;\/b&gt;/);
  const line: PlotlyFigure = { data: [{ type: "scatter", x: [1, 2], y: [1, 2], line: { color: 'red" onload="x' } }], layout: {} };
  assert.doesNotMatch(figureSvg(line), /onload/, "colours are used only when they look like colours");
});

test("nice ticks are round and cover the range", () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 148), [25, 50, 75, 100, 125]);
  assert.deepEqual(niceTicks(0.00012, 0.00051), [0.0002, 0.0003, 0.0004, 0.0005]);
});

test("bundles carry the static image: image/svg+xml, and an <img> inside the plot div that plotly.js replaces", () => {
  const fig = lossCurve(losses);
  const bundle = plotlyBundle(fig, { inlinePlotly: false });
  assert.equal(bundle["image/svg+xml"], figureSvg(fig));
  const html = plotlyHtml(fig, { inlinePlotly: false, height: "300px" });
  const img = new RegExp(
    `<div id="[^"]+" class="tunelab-plot" style="[^"]+"><img class="${STATIC_CLASS}" alt="[^"]+" src="data:image/svg\\+xml;base64,([A-Za-z0-9+/=]+)"`,
  ).exec(html);
  assert.ok(img, html.slice(0, 300));
  assert.equal(Buffer.from(img[1], "base64").toString("utf8"), figureSvg(fig, { height: 300 }));
  assert.match(html, /el\.textContent = ""; window\.Plotly\.newPlot/);
  assert.doesNotMatch(plotlyHtml(fig, { inlinePlotly: false, staticImage: false }), /<img/);
});

test("in Chromium every static SVG parses as XML and loads as an image with JavaScript off", { skip: noChromium, timeout: 60_000 }, async () => {
  const figures = [
    lossCurve(losses, { lr: [{ step: 1, lr: 1e-4 }] }),
    lossCurve(losses, { logY: true }),
    confusionHeatmap(
      [
        [1, 2],
        [3, 4],
      ],
      ["x<y", "y&z"],
    ),
    barChart({ a: 1 }),
    histogram([1, 5, 9], { cutoff: 4 }),
  ];
  const svgs = figures.map((f) => figureSvg(f));
  const context = await browser!.newContext({ javaScriptEnabled: false });
  try {
    const page = await context.newPage();
    await page.route("**/*", (route) => route.abort());
    const body = figures.map((f) => plotlyHtml(f, { inlinePlotly: false })).join("\n");
    await page.setContent(`<!doctype html><html><body>${body}</body></html>`, { waitUntil: "load" });
    const loaded = await page.$$eval(`img.${STATIC_CLASS}`, (imgs) =>
      imgs.map((i) => [(i as unknown as { naturalWidth: number }).naturalWidth, (i as unknown as { complete: boolean }).complete]),
    );
    assert.deepEqual(
      loaded,
      figures.map(() => [700, true]),
      "every image decoded (a malformed SVG does not)",
    );
  } finally {
    await context.close();
  }
  const page = await browser!.newPage();
  try {
    const errors = await page.evaluate((docs: string[]) => {
      const P = (
        globalThis as unknown as {
          DOMParser: new () => { parseFromString(s: string, t: string): { querySelector(s: string): unknown; documentElement: { nodeName: string } } };
        }
      ).DOMParser;
      return docs.map((s) => {
        const d = new P().parseFromString(s, "image/svg+xml");
        return d.querySelector("parsererror") ? "parsererror" : d.documentElement.nodeName;
      });
    }, svgs);
    assert.deepEqual(
      errors,
      svgs.map(() => "svg"),
    );
  } finally {
    await page.close();
  }
});
