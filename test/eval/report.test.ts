import { test } from "node:test";
import assert from "node:assert/strict";
import { EvalReport } from "../../sdk/eval";
import { JUPYTER_DISPLAY, isDisplayable } from "../../sdk/viz";

// Same labels as example A in metrics.test.ts: accuracy 4/6, macro F1 13/18.
const yTrue = ["cat", "dog", "cat", "bird", "dog", "cat"];
const yPred = ["cat", "cat", "cat", "bird", "dog", "dog"];

test("classification report holds the metrics, per-class rows and confusion matrix", () => {
  const r = EvalReport.classification(yTrue, yPred, { split: "val", step: 500, loss: 2.15 });
  assert.ok(Math.abs(r.get("accuracy") - 4 / 6) < 1e-12);
  assert.ok(Math.abs(r.get("f1_macro") - 13 / 18) < 1e-12);
  assert.ok(Math.abs(r.get("perplexity") - Math.exp(2.15)) < 1e-12);
  assert.equal(r.title, "Evaluation (val)");
  assert.equal(r.numExamples, 6);
  assert.throws(() => r.get("bleu"), /no metric "bleu"; it has loss, perplexity, accuracy/);
  assert.deepEqual(r.confusion?.matrix, [
    [1, 0, 0],
    [0, 2, 1],
    [0, 1, 1],
  ]);
});

test("toJSON round-trips through JSON and turns NaN into null", () => {
  const r = EvalReport.classification(yTrue, yPred, { split: "test", extra: { rouge_l: NaN } });
  const j = JSON.parse(JSON.stringify(r));
  assert.equal(j.split, "test");
  assert.equal(j.metrics.rouge_l, null);
  assert.equal(j.perClass.length, 3);
  assert.deepEqual(j.confusion.labels, ["bird", "cat", "dog"]);
  assert.equal(j.metrics.accuracy, r.metrics.accuracy);
});

test("display bundle: escaped HTML tables, an embedded heatmap, text tables, JSON", () => {
  const r = EvalReport.classification(["<b>x</b>", "y", "y"], ["<b>x</b>", "y", "<b>x</b>"], { split: "val" });
  assert.ok(isDisplayable(r));
  const b = r[JUPYTER_DISPLAY]({ inlinePlotly: false });
  const html = b["text/html"] as string;
  assert.ok(!html.includes("<b>x</b>"), "label must be escaped in HTML");
  assert.ok(html.includes("&lt;b&gt;x&lt;/b&gt;"));
  assert.match(html, /<td[^>]*>f1_macro<\/td><td[^>]*>0\.\d{4}<\/td>/);
  assert.match(html, /"type":"heatmap"/);
  assert.ok(!html.includes('if (typeof window.Plotly === "undefined")'), "no inline plotly when inlinePlotly is false");
  assert.ok(html.length < 50_000);
  assert.ok(!("application/vnd.plotly.v1+json" in b), "tables must not be hidden by a plotly renderer");
  assert.match(b["text/plain"], /accuracy\s+0\.6667/);
  // per-class scores read evenly: a perfect class shows 1.0000, support stays an integer
  assert.match(html, /<td[^>]*>&lt;b&gt;x&lt;\/b&gt;<\/td><td[^>]*>0\.5000<\/td><td[^>]*>1\.0000<\/td><td[^>]*>0\.6667<\/td><td[^>]*>1<\/td>/);
  assert.match(b["text/plain"], /Confusion matrix/);
  assert.deepEqual(b["application/json"], r.toJSON());
  const inline = r[JUPYTER_DISPLAY]()["text/html"] as string;
  assert.ok(inline.length > 1_000_000, "the default bundle embeds plotly.js so it renders standalone");
});

test("a report of plain metrics (no classes) displays too", () => {
  const r = new EvalReport({ metrics: { loss: 1.5, perplexity: Math.exp(1.5) }, split: "val" });
  const b = r[JUPYTER_DISPLAY]();
  assert.ok(!(b["text/html"] as string).includes("plotly"));
  assert.match(b["text/plain"], /perplexity\s+4\.4817/);
  assert.throws(() => new EvalReport({ metrics: { a: "1" as never } }), /metric "a" must be a number/);
});
