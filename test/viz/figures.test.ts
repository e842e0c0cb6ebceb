import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Rng } from "../../sdk/util/random";
import {
  JUPYTER_DISPLAY,
  barChart,
  binValues,
  confusionHeatmap,
  displayFigure,
  histogram,
  htmlEscape,
  isDisplayable,
  lossCurve,
  plotlyBundle,
  plotlyHtml,
  scriptSafeJson,
} from "../../sdk/viz";

test("display protocol symbol is the shared Jupyter.display symbol", () => {
  assert.equal(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
  assert.ok(isDisplayable({ [Symbol.for("Jupyter.display")]: () => ({ "text/plain": "x" }) }));
  assert.ok(!isDisplayable({}));
  assert.ok(!isDisplayable(null));
  assert.ok(!isDisplayable({ [Symbol.for("Jupyter.display")]: 1 }));
});

test("htmlEscape and scriptSafeJson neutralise markup", () => {
  assert.equal(htmlEscape(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  const s = scriptSafeJson({ t: "</script><script>alert(1)</script>\u2028" });
  assert.ok(!s.includes("<") && !s.includes(">") && !s.includes("\u2028"));
  assert.deepEqual(JSON.parse(s), { t: "</script><script>alert(1)</script>\u2028" });
});

test("lossCurve: train and val traces sorted by step, lr on a second axis, NaN as gaps", () => {
  const fig = lossCurve(
    [
      { step: 20, loss: 2.0, split: "train" },
      { step: 10, loss: 2.5, split: "train" },
      { step: 30, loss: NaN, split: "train" },
      { step: 20, loss: 2.2, split: "val" },
    ],
    {
      lr: [
        { step: 10, lr: 1e-5 },
        { step: 20, lr: 2e-5 },
      ],
      maxSteps: 100,
    },
  );
  assert.equal(fig.data.length, 3);
  const [train, val, lr] = fig.data;
  assert.deepEqual(train.x, [10, 20, 30]);
  assert.deepEqual(train.y, [2.5, 2.0, null]);
  assert.deepEqual(val.y, [2.2]);
  assert.equal(lr.yaxis, "y2");
  assert.equal((fig.layout.yaxis2 as { overlaying: string }).overlaying, "y");
  assert.deepEqual((fig.layout.xaxis as { range: number[] }).range, [0, 100]);
  assert.equal(lossCurve([{ step: 1, loss: 1, split: "train" }]).data.length, 1, "no empty traces");
  assert.throws(() => lossCurve([{ step: 1, loss: 1, split: "test" as never }]), /points\[0\]\.split/);
});

test("binValues follows numpy.histogram: equal widths, last bin closed", () => {
  // numpy.histogram([1,2,2,3,4,10], bins=3) -> counts [4, 1, 1], edges [1, 4, 7, 10]
  const b = binValues([1, 2, 2, 3, 4, 10], 3);
  assert.deepEqual(b.edges, [1, 4, 7, 10]);
  assert.deepEqual(b.counts, [4, 1, 1]);
  // a constant sample gets one bin around the value (numpy: range [v-0.5, v+0.5])
  assert.deepEqual(binValues([5, 5], 1), { edges: [4.5, 5.5], counts: [2] });
  assert.throws(() => binValues([1], 0), /bins must be a positive integer/);
});

const hasNumpy = spawnSync("/usr/bin/python3", ["-c", "import numpy"]).status === 0;

test("binValues agrees with numpy.histogram on integer token lengths", { skip: hasNumpy ? false : "numpy not importable by /usr/bin/python3" }, () => {
  const rng = new Rng(7);
  const cases = [3, 7, 10, 33].map((bins) => ({ bins, values: Array.from({ length: 500 }, () => 16 + rng.int(2033)) }));
  const py = spawnSync(
    "/usr/bin/python3",
    [
      "-c",
      "import json,sys,numpy as np\nfor c in json.load(sys.stdin):\n  h,e=np.histogram(c['values'],bins=c['bins'])\n  print(json.dumps({'counts':h.tolist(),'edges':e.tolist()}))",
    ],
    { input: JSON.stringify(cases), encoding: "utf8" },
  );
  assert.equal(py.status, 0, py.stderr);
  const expected = py.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  cases.forEach((c, k) => {
    const b = binValues(c.values, c.bins);
    assert.deepEqual(b.counts, expected[k].counts, `counts, ${c.bins} bins`);
    b.edges.forEach((e, i) => assert.ok(Math.abs(e - expected[k].edges[i]) < 1e-9, `edge ${i}`));
  });
});

test("histogram counts every value and marks a cutoff", () => {
  const lengths = [100, 200, 300, 900, 1500, 2100];
  const fig = histogram(lengths, { bins: 4, cutoff: 1024 });
  const counts = fig.data[0].y as number[];
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    lengths.length,
  );
  assert.match(JSON.stringify(fig.layout.annotations), /cutoff_len 1024: 2 above/);
});

test("barChart sorts by count and keeps labels categorical", () => {
  const fig = barChart({ b: 1, a: 3, c: 2 });
  assert.deepEqual(fig.data[0].x, ["a", "c", "b"]);
  assert.deepEqual(fig.data[0].y, [3, 2, 1]);
  assert.equal((fig.layout.xaxis as { type: string }).type, "category");
  assert.deepEqual(
    barChart(
      new Map([
        ["z", 1],
        ["y", 1],
      ]),
      { sort: "label" },
    ).data[0].x,
    ["y", "z"],
  );
  assert.throws(() => barChart({ a: NaN }), /count for label "a"/);
});

test("confusionHeatmap normalises colours but shows counts", () => {
  const fig = confusionHeatmap(
    [
      [3, 1],
      [0, 2],
    ],
    [0, 1],
    { normalize: "true" },
  );
  const t = fig.data[0];
  assert.deepEqual(t.z, [
    [0.75, 0.25],
    [0, 1],
  ]);
  assert.deepEqual(t.text, [
    ["3", "1"],
    ["0", "2"],
  ]);
  assert.deepEqual(t.x, ["0", "1"]);
  assert.throws(() => confusionHeatmap([[1]], [0, 1]), /2x2/);
});

test("plotlyHtml: standalone with inline plotly, or waiting for window.Plotly without it", () => {
  const fig = lossCurve([{ step: 1, loss: 1, split: "train" }]);
  const lean = plotlyHtml(fig, { inlinePlotly: false, divId: "p1" });
  assert.match(lean, /<div id="p1"/);
  assert.match(lean, /window\.Plotly\.newPlot/);
  assert.ok(lean.length < 5000);
  const full = plotlyHtml(fig, { inlinePlotly: true, divId: "p2" });
  assert.ok(full.length > 1_000_000 && full.length < lean.length + 6_000_000);
  assert.equal((full.match(/<\/script>/gi) ?? []).length, 2, "the inline library must not close its script early");
  assert.throws(() => plotlyHtml(fig, { inlinePlotly: false, divId: 'x" onload="' }), /divId/);
  const b = plotlyBundle(fig, { inlinePlotly: false });
  assert.deepEqual(b["application/vnd.plotly.v1+json"], fig);
  assert.match(b["text/plain"], /Plotly figure "Loss": train loss \(1 points\)/);
  const shown = displayFigure(fig);
  assert.ok(isDisplayable(shown));
  assert.deepEqual(shown.data, fig.data);
  assert.ok((shown[JUPYTER_DISPLAY]({ inlinePlotly: false })["text/html"] as string).length < 5000);
});
