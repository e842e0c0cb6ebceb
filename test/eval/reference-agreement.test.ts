/**
 * Agreement with the reference implementations on random cases: classification against scikit-learn and corpus
 * BLEU against NLTK's corpus_bleu, both run by Debian's Python (python3-sklearn, python3-nltk).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { PYTHON, pythonHas } from "../util/python";
import { classification } from "../../sdk/eval/classification";
import { bleu } from "../../sdk/eval/overlap";
import { evalTokens } from "../../sdk/eval/text-units";
import { Rng } from "../../sdk/util/random";

function python(script: string, input: unknown): unknown {
  return JSON.parse(execFileSync(PYTHON, ["-c", script], { input: JSON.stringify(input), encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] }));
}

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ours ${a}, reference ${b}`);

test("classification agrees with scikit-learn on random label lists", { skip: !pythonHas("sklearn") && "python3-sklearn is not installed" }, () => {
  const rng = new Rng(12);
  const names = ["正面", "负面", "neutral", "mixed", "<b>x</b>"];
  const cases = Array.from({ length: 40 }, () => {
    const k = 2 + Math.floor(rng.next() * 4);
    const n = 1 + Math.floor(rng.next() * 30);
    const pick = () => names[Math.floor(rng.next() * k)];
    // some predictions use a label that never occurs in yTrue, as a model's free-text answer can
    return { yTrue: Array.from({ length: n }, pick), yPred: Array.from({ length: n }, () => (rng.next() < 0.1 ? names[4] : pick())) };
  });
  const ref = python(
    `
import json, sys, warnings
import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, confusion_matrix
warnings.simplefilter("ignore")
out = []
for c in json.load(sys.stdin):
    t, p = c["yTrue"], c["yPred"]
    labels = sorted(set(t) | set(p))
    r = {"accuracy": accuracy_score(t, p), "labels": labels, "confusion": confusion_matrix(t, p, labels=labels).tolist()}
    for avg in ["macro", "micro", "weighted"]:
        pr, rc, f, _ = precision_recall_fscore_support(t, p, labels=labels, average=avg, zero_division=0)
        r[avg] = [pr, rc, f]
    pr, rc, f, s = precision_recall_fscore_support(t, p, labels=labels, average=None, zero_division=0)
    r["perClass"] = [[float(a), float(b), float(c), int(d)] for a, b, c, d in zip(pr, rc, f, s)]
    out.append(r)
print(json.dumps(out))
`,
    cases,
  ) as Array<Record<string, unknown>>;
  cases.forEach((c, i) => {
    const ours = classification(c.yTrue, c.yPred);
    const r = ref[i] as { accuracy: number; labels: string[]; confusion: number[][]; perClass: number[][] } & Record<string, number[]>;
    near(ours.accuracy, r.accuracy, `case ${i} accuracy`);
    assert.deepEqual(ours.confusion.labels, r.labels, `case ${i} labels`);
    assert.deepEqual(ours.confusion.matrix, r.confusion, `case ${i} confusion`);
    for (const avg of ["macro", "micro", "weighted"] as const) {
      near(ours[avg].precision, r[avg][0], `case ${i} ${avg} precision`);
      near(ours[avg].recall, r[avg][1], `case ${i} ${avg} recall`);
      near(ours[avg].f1, r[avg][2], `case ${i} ${avg} f1`);
    }
    r.labels.forEach((l, j) => {
      const pc = ours.perClass[l];
      near(pc.precision, r.perClass[j][0], `case ${i} ${l} precision`);
      near(pc.recall, r.perClass[j][1], `case ${i} ${l} recall`);
      near(pc.f1, r.perClass[j][2], `case ${i} ${l} f1`);
      assert.equal(pc.support, r.perClass[j][3]);
    });
  });
});

test(
  "corpus BLEU-4 equals NLTK's corpus_bleu (default weights, no smoothing) on random cases",
  { skip: !pythonHas("nltk") && "python3-nltk is not installed" },
  () => {
    const rng = new Rng(7);
    // A small vocabulary so n-grams overlap often; Chinese characters and English words mixed.
    const vocab = ["the", "profit", "rose", "12", "%", "净", "利", "润", "增", "长", "亿", "元", "in", "2023", "."];
    const sentence = (min: number, max: number) => {
      const n = min + Math.floor(rng.next() * (max - min + 1));
      return Array.from({ length: n }, () => vocab[Math.floor(rng.next() * vocab.length)]).join(" ");
    };
    const cases = Array.from({ length: 60 }, (_, c) => {
      const size = 1 + Math.floor(rng.next() * 6);
      const hypotheses = Array.from({ length: size }, () => sentence(c % 10 === 0 ? 0 : 1, 14));
      const references = hypotheses.map(() => Array.from({ length: 1 + Math.floor(rng.next() * 3) }, () => sentence(1, 14)));
      // half the cases copy stretches of a reference into the hypothesis so 3- and 4-grams match
      if (c % 2 === 1)
        hypotheses.forEach(
          (_, i) =>
            (hypotheses[i] =
              references[i][0]
                .split(" ")
                .slice(0, 3 + (i % 5))
                .join(" ") +
              " " +
              hypotheses[i]),
        );
      return { hypotheses, references };
    });
    const ref = python(
      `
import json, sys, warnings
from nltk.translate.bleu_score import corpus_bleu
warnings.simplefilter("ignore")
print(json.dumps([corpus_bleu(c["refs"], c["hyps"]) for c in json.load(sys.stdin)]))
`,
      cases.map((c) => ({ hyps: c.hypotheses.map((h) => evalTokens(h)), refs: c.references.map((rs) => rs.map((r) => evalTokens(r))) })),
    ) as number[];
    let nonTrivial = 0;
    cases.forEach((c, i) => {
      const ours = bleu(c);
      assert.ok(ours >= 0 && ours <= 1);
      near(ours, ref[i], `case ${i}`);
      if (ref[i] > 0.01) nonTrivial++;
    });
    assert.ok(nonTrivial >= 10, `only ${nonTrivial} cases had BLEU > 0.01; the comparison would be weak`);
  },
);
