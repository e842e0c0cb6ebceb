import { test } from "node:test";
import assert from "node:assert/strict";
import { Dataset, checkLabels, type RowContent } from "../../sdk/data/dataset";
import { DataError } from "../../sdk/data/report";
import type { ClassificationRow } from "../../sdk/data/types";

/** 3 labels with 60/30/10 rows. */
function labelled(): Dataset {
  const rows: RowContent[] = [];
  const sizes: Record<string, number> = { a: 60, b: 30, c: 10 };
  for (const [label, n] of Object.entries(sizes)) {
    for (let k = 0; k < n; k++) rows.push({ kind: "classification", text: `${label} text ${k}`, label });
  }
  return Dataset.fromRows(rows, "mem.jsonl");
}

const ids = (d: Dataset) => d.rows.map((r) => r.provenance.id);

test("split is deterministic under a seed and partitions the rows", () => {
  const ds = labelled();
  const s1 = ds.split({ val: 0.2, test: 0.1, seed: 7 });
  const s2 = ds.split({ val: 0.2, test: 0.1, seed: 7 });
  const s3 = ds.split({ val: 0.2, test: 0.1, seed: 8 });
  assert.deepEqual(ids(s1.val), ids(s2.val));
  assert.deepEqual(ids(s1.test), ids(s2.test));
  assert.notDeepEqual(ids(s1.val), ids(s3.val));
  assert.equal(s1.val.length, 20);
  assert.equal(s1.test.length, 10);
  assert.equal(s1.train.length, 70);
  const all = [...ids(s1.train), ...ids(s1.val), ...ids(s1.test)].sort();
  assert.deepEqual(all, ids(ds).slice().sort());
  assert.deepEqual([s1.train.role, s1.val.role, s1.test.role], ["train", "val", "test"]);
});

test("stratified split keeps label proportions; counts work as well as fractions", () => {
  const s = labelled().split({ val: 0.2, seed: 1 });
  assert.deepEqual(s.val.labelCounts(), { a: 12, b: 6, c: 2 });
  assert.deepEqual(s.train.labelCounts(), { a: 48, b: 24, c: 8 });
  const c = labelled().split({ val: 10, test: 10, seed: 3 });
  assert.deepEqual(c.val.labelCounts(), { a: 6, b: 3, c: 1 });
  assert.deepEqual(c.test.labelCounts(), { a: 6, b: 3, c: 1 });
  // Unstratified splits of the same data differ in label mix for some seed; stratified never do.
  const props = [1, 2, 3, 4, 5].map((seed) => JSON.stringify(labelled().split({ val: 0.2, seed, stratify: false }).val.labelCounts()));
  assert.ok(props.some((p) => p !== JSON.stringify({ a: 12, b: 6, c: 2 })));
});

test("a val/test label never seen in train is an error naming file, line and field, or a counted drop", () => {
  const rows: RowContent[] = [
    { kind: "classification", text: "x1", label: "x" },
    { kind: "classification", text: "x2", label: "x" },
    { kind: "classification", text: "rare", label: "rare" },
  ];
  const train = Dataset.fromRows(rows.slice(0, 2), "train.jsonl").withRole("train");
  const val = Dataset.fromRows(rows, "val.jsonl").withRole("val");
  assert.throws(() => checkLabels(train, val), (e: Error) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /val\.jsonl:3: field "label": label "rare" never appears in train \(train labels: x\)/);
    return true;
  });
  const kept = checkLabels(train, val, { onInvalid: "drop" });
  assert.equal(kept.length, 2);
  assert.deepEqual(kept.report.countsByReason, { "unseen-label": 1 });
  // Stratified splitting keeps a singleton label in train, so it never triggers.
  const s = Dataset.fromRows(rows).split({ val: 0.5, seed: 1 });
  assert.ok(s.train.labels().includes("rare"));
  // Unstratified, some seed puts it in val: error by default, drop on request.
  const seed = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].find((sd) =>
    Dataset.fromRows(rows).split({ val: 1, seed: sd, stratify: false, onInvalid: "drop" }).val.report.dropped.length > 0,
  );
  assert.ok(seed !== undefined);
  assert.throws(() => Dataset.fromRows(rows).split({ val: 1, seed, stratify: false }), /never appears in train/);
});

test("shuffle, sample, filter, map, take, skip are immutable and seeded", () => {
  const ds = labelled();
  const before = ids(ds);
  const sh = ds.shuffle(5);
  assert.deepEqual(ids(sh), ids(ds.shuffle(5)));
  assert.notDeepEqual(ids(sh), before);
  assert.deepEqual(ids(sh).slice().sort(), before.slice().sort());
  assert.deepEqual(ids(ds), before);

  const sm = ds.sample(0.25, 9);
  assert.equal(sm.length, 25);
  assert.deepEqual(ids(sm), ids(ds.sample(25, 9)));
  assert.notDeepEqual(ids(sm), ids(ds.sample(25, 10)));

  const f = ds.filter((r) => (r as ClassificationRow).label !== "c", "drop label c");
  assert.equal(f.length, 90);
  assert.equal(f.report.countsByReason.filtered, 10);
  assert.equal(f.report.dropped[0].message, "drop label c");
  assert.equal(ds.report.dropped.length, 0);

  const m = ds.map((r) => ({ ...(r as ClassificationRow), text: (r as ClassificationRow).text.toUpperCase() }));
  assert.equal((m.rows[0] as ClassificationRow).text, "A TEXT 0");
  assert.equal(m.rows[0].provenance.id, ds.rows[0].provenance.id);
  assert.equal((ds.rows[0] as ClassificationRow).text, "a text 0");

  assert.deepEqual(ids(ds.take(3)), before.slice(0, 3));
  assert.deepEqual(ids(ds.skip(98)), before.slice(98));
  assert.throws(() => ds.take(-1), /take: expected a non-negative integer/);
  assert.throws(() => ds.sample(1000, 1), /asked for 1000 rows but only 100/);
  assert.throws(() => ds.split({ val: 0.6, test: 0.6 }), /exceed the 100 rows/);

  assert.throws(() => {
    (ds.rows as ClassificationRow[]).push(ds.rows[0] as ClassificationRow);
  }, TypeError);
  assert.throws(() => {
    (ds.rows[0] as { text: string }).text = "changed";
  }, TypeError);
});

test("labels are sorted and counted; chat rows cannot be stratified", () => {
  const ds = labelled();
  assert.deepEqual(ds.labels(), ["a", "b", "c"]);
  const chat = Dataset.fromRows([{ kind: "chat", messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] }]);
  assert.throws(() => chat.split({ val: 0.5, stratify: true }), /only classification rows have labels/);
  assert.equal(chat.split({ val: 0 }).train.length, 1);
});
