import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../../sdk/data/load";
import type { Dataset } from "../../sdk/data/dataset";
import type { ChatRow, ClassificationRow, Row } from "../../sdk/data/types";

// dist/test/data -> repository root
const DATA = join(__dirname, "..", "..", "..", "data");
const words = (t: string) => t.toLowerCase().match(/\p{L}+/gu) ?? [];

/** Multinomial naive Bayes over words: a floor for what a small model should manage. */
function naiveBayes(train: Dataset<Row>, test: Dataset<Row>): number {
  const rows = train.rows as ClassificationRow[];
  const labels = train.labels();
  const counts = new Map(labels.map((l) => [l, new Map<string, number>()]));
  const totals = new Map(labels.map((l) => [l, 0]));
  const vocab = new Set<string>();
  for (const r of rows) {
    for (const w of words(r.text)) {
      counts.get(r.label)!.set(w, (counts.get(r.label)!.get(w) ?? 0) + 1);
      totals.set(r.label, totals.get(r.label)! + 1);
      vocab.add(w);
    }
  }
  let right = 0;
  for (const r of test.rows as ClassificationRow[]) {
    let best = "";
    let bestScore = -Infinity;
    for (const l of labels) {
      let s = 0;
      for (const w of words(r.text)) s += Math.log(((counts.get(l)!.get(w) ?? 0) + 1) / (totals.get(l)! + vocab.size));
      if (s > bestScore) [bestScore, best] = [s, l];
    }
    if (best === r.label) right++;
  }
  return right / test.length;
}

/** Best accuracy of predicting the label from the single word at one fixed position (majority label per word). */
function bestPositionRule(train: Dataset<Row>, test: Dataset<Row>): number {
  let best = 0;
  for (let pos = 0; pos < 12; pos++) {
    const table = new Map<string, Map<string, number>>();
    for (const r of train.rows as ClassificationRow[]) {
      const w = words(r.text)[pos] ?? "<none>";
      if (!table.has(w)) table.set(w, new Map());
      table.get(w)!.set(r.label, (table.get(w)!.get(r.label) ?? 0) + 1);
    }
    let right = 0;
    for (const r of test.rows as ClassificationRow[]) {
      const m = table.get(words(r.text)[pos] ?? "<none>");
      const guess = m ? [...m.entries()].sort((a, b) => b[1] - a[1])[0][0] : "";
      if (guess === r.label) right++;
    }
    best = Math.max(best, right / test.length);
  }
  return best;
}

test("bundled support tickets: 800 rows, 4 balanced labels, learnable from words but not from one fixed position", async () => {
  const ds = await loadDataset(DATA, { dataset: "support_tickets" });
  assert.equal(ds.length, 800);
  assert.deepEqual(ds.labelCounts(), { account: 200, billing: 200, shipping: 200, technical: 200 });
  assert.equal(new Set(ds.rows.map((r) => (r as ClassificationRow).text)).size, 800, "no duplicate texts");
  const { train, val } = ds.split({ val: 0.2, seed: 42 });
  const nb = naiveBayes(train, val);
  const pos = bestPositionRule(train, val);
  assert.ok(nb > 0.9, `naive Bayes val accuracy ${nb}`);
  assert.ok(pos < 0.7 && nb - pos > 0.25, `a single fixed-position word predicts the label with accuracy ${pos} (bag of words: ${nb})`);
});

test("bundled alpaca tasks and arithmetic text load through dataset_info.json", async () => {
  const alpaca = await loadDataset(join(DATA, "dataset_info.json"), { dataset: "alpaca_tasks" });
  assert.equal(alpaca.length, 100);
  const rows = alpaca.rows as ChatRow[];
  assert.ok(rows.some((r) => r.messages[0].role === "system"));
  assert.ok(rows.some((r) => r.messages.filter((m) => m.role === "assistant").length === 2), "some rows carry history");
  for (const r of rows) {
    const user = r.messages[r.messages.length - 2].content;
    const answer = r.messages[r.messages.length - 1].content;
    const add = /^Add the two numbers\.\n(\d+) and (\d+)$/.exec(user);
    if (add) assert.equal(Number(answer), Number(add[1]) + Number(add[2]));
  }
  const pt = await loadDataset(DATA, { dataset: "arithmetic_pt" });
  assert.equal(pt.length, 200);
  assert.ok(pt.rows.every((r) => r.kind === "pretrain"));
  for (const r of pt.rows) {
    const m = /^The sum of (\d+) and (\d+) is (\d+)\.$/.exec((r as { text: string }).text);
    if (m) assert.equal(Number(m[1]) + Number(m[2]), Number(m[3]));
  }
});
