import { test } from "node:test";
import assert from "node:assert/strict";
import {
  accuracy,
  argmaxRows,
  classificationMetrics,
  confusionMatrix,
  f1Score,
  perClassScores,
  perplexity,
  perplexityFromSum,
  precisionScore,
  recallScore,
  tokenAccuracy,
  uniqueLabels,
} from "../../sdk/eval";

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? ""} expected ${b}, got ${a}`);

// Example A (string labels):
//   y_true = [cat, dog, cat, bird, dog, cat]
//   y_pred = [cat, cat, cat, bird, dog, dog]
// labels (sorted) = [bird, cat, dog]
// confusion (rows true, cols pred): bird [1,0,0]; cat [0,2,1]; dog [0,1,1]
// accuracy = 4/6
// bird: tp1 fp0 fn0 -> P1 R1 F1 1, support 1
// cat:  tp2 fp1 fn1 -> P2/3 R2/3 F1 2/3, support 3
// dog:  tp1 fp1 fn1 -> P1/2 R1/2 F1 1/2, support 2
// macro F1 = (1 + 2/3 + 1/2)/3 = 13/18; micro F1 = 4/6; weighted F1 = (1 + 2 + 1)/6 = 4/6
// (sklearn: f1_score(..., average="macro") = 0.7222222222222222)
const aTrue = ["cat", "dog", "cat", "bird", "dog", "cat"];
const aPred = ["cat", "cat", "cat", "bird", "dog", "dog"];

test("example A: accuracy, confusion matrix, per-class scores, averages", () => {
  close(accuracy(aTrue, aPred), 4 / 6);
  const cm = confusionMatrix(aTrue, aPred);
  assert.deepEqual(cm.labels, ["bird", "cat", "dog"]);
  assert.deepEqual(cm.matrix, [
    [1, 0, 0],
    [0, 2, 1],
    [0, 1, 1],
  ]);
  const per = perClassScores(aTrue, aPred);
  assert.deepEqual(
    per.map((r) => r.label),
    ["bird", "cat", "dog"],
  );
  assert.deepEqual(
    per.map((r) => r.support),
    [1, 3, 2],
  );
  const expectP = [1, 2 / 3, 1 / 2];
  per.forEach((r, i) => {
    close(r.precision, expectP[i], `precision ${r.label}`);
    close(r.recall, expectP[i], `recall ${r.label}`);
    close(r.f1, expectP[i], `f1 ${r.label}`);
  });
  close(f1Score(aTrue, aPred), 13 / 18);
  close(f1Score(aTrue, aPred, { average: "macro" }), 13 / 18);
  close(f1Score(aTrue, aPred, { average: "micro" }), 4 / 6);
  close(f1Score(aTrue, aPred, { average: "weighted" }), 4 / 6);
  close(precisionScore(aTrue, aPred), 13 / 18);
  close(recallScore(aTrue, aPred), 13 / 18);
});

// Example B: the f1_score example from the scikit-learn documentation (integer labels):
//   y_true = [0, 1, 2, 0, 1, 2]; y_pred = [0, 2, 1, 0, 0, 1]
// class 0: tp2 fp1 fn0 -> P 2/3, R 1, F1 0.8; classes 1 and 2: tp0 -> all 0
// sklearn docs: macro 0.2666..., micro 0.3333..., weighted 0.2666..., average=None [0.8, 0, 0]
const bTrue = [0, 1, 2, 0, 1, 2];
const bPred = [0, 2, 1, 0, 0, 1];

test("example B (sklearn docs): macro 0.2667, micro 0.3333, weighted 0.2667, per class [0.8, 0, 0]", () => {
  close(f1Score(bTrue, bPred, { average: "macro" }), 0.8 / 3);
  close(f1Score(bTrue, bPred, { average: "micro" }), 1 / 3);
  close(f1Score(bTrue, bPred, { average: "weighted" }), 0.8 / 3);
  const per = perClassScores(bTrue, bPred);
  assert.deepEqual(
    per.map((r) => r.label),
    [0, 1, 2],
  );
  close(per[0].f1, 0.8);
  close(per[0].precision, 2 / 3);
  close(per[0].recall, 1);
  assert.equal(per[1].f1, 0);
  assert.equal(per[2].f1, 0);
  // micro precision = micro recall = accuracy when all labels are scored
  close(precisionScore(bTrue, bPred, { average: "micro" }), 2 / 6);
  close(recallScore(bTrue, bPred, { average: "micro" }), 2 / 6);
  close(accuracy(bTrue, bPred), 2 / 6);
});

// Example C (zero_division=0): y_true = [a, a, b]; y_pred = [a, a, a]
// a: tp2 fp1 fn0 -> P 2/3, R 1, F1 0.8; b: tp0 fp0 fn1 -> P 0/0 -> 0, R 0, F1 0
// macro P = 1/3, macro R = 1/2, macro F1 = 0.4, micro F1 = 2/3
// labels=[a, b, c] adds an all-zero class: macro F1 = 0.8/3
// labels=[a] only: micro P = 2/3, R = 2/2 = 1, F1 = 0.8; weighted over [a] = 0.8
test("example C: zero division gives 0, explicit labels change the averages like sklearn", () => {
  const t = ["a", "a", "b"];
  const p = ["a", "a", "a"];
  const per = perClassScores(t, p);
  assert.equal(per[1].precision, 0);
  assert.equal(per[1].recall, 0);
  assert.equal(per[1].f1, 0);
  close(precisionScore(t, p), 1 / 3);
  close(recallScore(t, p), 1 / 2);
  close(f1Score(t, p), 0.4);
  close(f1Score(t, p, { average: "micro" }), 2 / 3);
  close(f1Score(t, p, { labels: ["a", "b", "c"] }), 0.8 / 3);
  close(f1Score(t, p, { labels: ["a"], average: "micro" }), 0.8);
  close(precisionScore(t, p, { labels: ["a"], average: "micro" }), 2 / 3);
  close(recallScore(t, p, { labels: ["a"], average: "micro" }), 1);
  // confusion matrix with a subset of labels ignores samples outside it
  assert.deepEqual(confusionMatrix(t, p, ["b"]).matrix, [[0]]);
  assert.deepEqual(confusionMatrix(t, p, ["a", "b", "c"]).matrix, [
    [2, 0, 0],
    [1, 0, 0],
    [0, 0, 0],
  ]);
});

test("classificationMetrics bundles the same numbers", () => {
  const m = classificationMetrics(aTrue, aPred);
  close(m.accuracy, 4 / 6);
  close(m.macroF1, 13 / 18);
  close(m.microF1, 4 / 6);
  close(m.weightedF1, 4 / 6);
  close(m.macroPrecision, 13 / 18);
  assert.equal(m.numExamples, 6);
  assert.deepEqual(m.confusion.labels, ["bird", "cat", "dog"]);
  assert.equal(m.perClass.length, 3);
});

test("labels sort numerically for integers and refuse mixed types", () => {
  assert.deepEqual(uniqueLabels([10, 2], [1]), [1, 2, 10]);
  assert.deepEqual(uniqueLabels(["b", "B", "a"]), ["B", "a", "b"]);
  assert.throws(() => accuracy([1, "1"] as never, [1, 1]), /string or an integer|mix/);
  assert.throws(() => f1Score([1, 2], ["1", "2"]), /mix strings and numbers/);
});

test("bad input names the problem", () => {
  assert.throws(() => accuracy([1, 2], [1]), /yTrue has 2 labels but yPred has 1/);
  assert.throws(() => accuracy([], []), /no samples/);
  assert.throws(() => accuracy([1.5], [1]), /yTrue\[0\] must be a string or an integer/);
  assert.throws(() => f1Score([1], [1], { average: "samples" as never }), /average must be/);
  assert.throws(() => f1Score([1], [1], { labels: [1, 1] }), /duplicates/);
});

test("perplexity is exp of the mean NLL", () => {
  close(perplexity(0), 1);
  // a uniform guess over a 50257-token vocabulary has perplexity 50257
  assert.ok(Math.abs(perplexity(Math.log(50257)) / 50257 - 1) < 1e-12);
  assert.ok(Math.abs(perplexity(2.15) - 8.584858397) < 1e-6); // e^2.15
  close(perplexityFromSum(6, 3), Math.exp(2));
  assert.throws(() => perplexity(-0.1), />= 0/);
  assert.throws(() => perplexity(NaN), /must be a number/);
  assert.throws(() => perplexityFromSum(1, 0), /tokenCount/);
});

test("token accuracy skips ignoreIndex positions and accepts int64 arrays", () => {
  // positions: 5=5 ok, -100 skipped, 7=7 ok, 8!=9 -> 2/3
  close(tokenAccuracy([5, 6, 7, 8], [5, -100, 7, 9]), 2 / 3);
  close(tokenAccuracy(BigInt64Array.from([5n, 6n, 7n, 8n]), BigInt64Array.from([5n, -100n, 7n, 9n])), 2 / 3);
  close(tokenAccuracy(Int32Array.from([1, 2]), [1, 0], { ignoreIndex: 0 }), 1);
  assert.throws(() => tokenAccuracy([1], [-100]), /nothing to score/);
  assert.throws(() => tokenAccuracy([1, 2], [1]), /predicted has 2 tokens but targets has 1/);
});

test("argmaxRows picks the first maximum of each row", () => {
  const logits = Float32Array.from([0.1, 0.9, 0.3, /* row 2 */ 2, 2, 1]);
  assert.deepEqual([...argmaxRows(logits, 3)], [1, 0]);
  assert.throws(() => argmaxRows(logits, 4), /not a multiple/);
});
