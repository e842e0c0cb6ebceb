/** scoreGeneration, bootstrap intervals, compare() with the paired bootstrap, custom metrics, escaping. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compare, scoreGeneration } from "../../sdk/eval/generation-report";
import { defineMetric } from "../../sdk/eval/generation-metric";
import { bleu, rouge } from "../../sdk/eval/overlap";
import { pairedBootstrap, quantile, resampleIndices } from "../../sdk/eval/bootstrap";
import { JUPYTER_DISPLAY } from "../../sdk/viz/display";

const refs = Array.from({ length: 30 }, (_, i) => (i % 2 ? `净利润增长${i}%，达到${i + 1}亿元。` : `Revenue rose ${i}% to $${i + 1} billion.`));
const base = refs.map((r, i) => (i % 3 === 0 ? r : i % 2 ? "公司业绩良好。" : "The company did well."));
const tuned = refs.map((r, i) => (i % 5 === 4 ? "<script>alert(1)</script>" : `<think>看数字</think>${r}`));
const samples = (preds: string[]) => preds.map((prediction, i) => ({ prompt: `Q${i} <b>`, prediction, reference: refs[i], finishReason: "stop" as const }));

test("headline metrics equal the metric functions (answers after </think>), with reproducible bootstrap intervals", async () => {
  const r = await scoreGeneration(samples(tuned), { metrics: ["bleu", "rouge", "exact_match", "think_closed", "fr"] });
  const answers = tuned.map((t) => t.replace(/^<think>看数字<\/think>/, ""));
  assert.equal(r.get("bleu"), bleu({ hypotheses: answers, references: refs.map((x) => [x]) }));
  assert.ok(Math.abs(r.get("rougeL") - rouge({ hypotheses: answers, references: refs }).rougeL) < 1e-12);
  assert.equal(r.get("exact_match"), 24 / 30);
  assert.equal(r.get("think_closed"), 24 / 30);
  assert.ok(r.get("fr") > 0.7 && r.get("fr") < 1);
  for (const [k, ci] of Object.entries(r.intervals)) assert.ok(ci.low <= r.get(k) + 1e-12 && r.get(k) <= ci.high + 1e-12, `${k} outside its interval`);
  const again = await scoreGeneration(samples(tuned), { metrics: ["bleu", "rouge", "exact_match", "think_closed", "fr"] });
  assert.deepEqual(again.intervals, r.intervals, "same seed, same intervals");
  const other = await scoreGeneration(samples(tuned), { metrics: ["bleu"], bootstrap: { seed: 9 } });
  assert.notDeepEqual(other.intervals.bleu, r.intervals.bleu, "another seed, other intervals");
});

test("bootstrap pieces: numpy-style quantiles, seeded resamples, a paired test of identical systems gives p = 1", () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([0, 10], 0.975), 9.75);
  assert.deepEqual(resampleIndices(5, { resamples: 3, seed: 1 }), resampleIndices(5, { resamples: 3, seed: 1 }));
  const v = [1, 0, 1, 1, 0];
  const mean = (idx: Int32Array) => Array.from(idx, (i) => v[i]).reduce((a, b) => a + b, 0) / idx.length;
  const t = pairedBootstrap(5, mean, mean);
  assert.equal(t.delta, 0);
  assert.equal(t.pValue, 1);
});

test("compare: the tuned model's gain is significant, the table shows both answers side by side, escaped", async () => {
  const metrics = ["exact_match", "bleu", "chrf", "repetition"];
  const a = await scoreGeneration(samples(base), { metrics });
  const b = await scoreGeneration(samples(tuned), { metrics });
  const c = compare(a, b);
  const em = c.get("exact_match");
  assert.equal(em.a, 10 / 30);
  assert.equal(em.b, 24 / 30);
  assert.ok(Math.abs(em.delta - 14 / 30) < 1e-12);
  assert.ok(em.pValue < 0.01, `p = ${em.pValue}`);
  assert.ok(em.interval.low > 0 && em.interval.high <= 1);
  assert.equal(c.get("repetition_4").higherIsBetter, false);
  const bundle = c[JUPYTER_DISPLAY]();
  const html = bundle["text/html"] as string;
  assert.ok(!html.includes("<script>alert"), "answers must be escaped");
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(!html.includes("Q0 <b>"));
  for (const col of ["prompt", "reference", "base answer", "tuned answer", "exact_match base", "exact_match tuned"]) assert.ok(html.includes(`>${col}<`), col);
  const json = JSON.parse(JSON.stringify(c));
  assert.equal(json.samples[4]["tuned answer"], "<script>alert(1)</script>");
  await assert.rejects(async () => compare(a, await scoreGeneration(samples(tuned).slice(1), { metrics })), /30 and 29 samples/);
  const rh = (await scoreGeneration(samples(tuned), { metrics: ["bleu"] }))[JUPYTER_DISPLAY]()["text/html"] as string;
  assert.ok(!rh.includes("<script>alert") && rh.includes("95% CI"));
});

test("custom metrics: per-sample and corpus kinds, typed and checked", async () => {
  const length = defineMetric({ name: "answer_chars", higherIsBetter: false, perSample: (s) => [...s.prediction].length });
  const share = defineMetric({ name: "mentions_yi", corpus: (ss) => ss.filter((s) => s.prediction.includes("亿")).length / ss.length });
  const r = await scoreGeneration(samples(base), { metrics: [length, share] });
  assert.equal(r.get("answer_chars"), base.reduce((s, t) => s + [...t].length, 0) / base.length);
  assert.equal(r.get("mentions_yi"), base.filter((t) => t.includes("亿")).length / 30);
  assert.throws(() => defineMetric({ name: "bad name", perSample: () => 1 }), /name must be letters/);
  assert.throws(() => defineMetric({ name: "both", perSample: () => 1, corpus: () => 1 }), /exactly one of perSample or corpus/);
  await assert.rejects(scoreGeneration(samples(base), { metrics: ["blue"] }), /unknown metric "blue"; known: exact_match, bleu/);
  await assert.rejects(scoreGeneration([{ prediction: "x" }], { metrics: ["bleu"] }), /bleu needs a reference, samples\[0\] has none/);
});
