import { test } from "node:test";
import assert from "node:assert/strict";
import { Dataset } from "../../sdk/data/dataset";
import {
  IGNORE_INDEX, LabelVocab, encodeChat, encodeClassification, encodePretrain, tokenizeDataset, type TokenizedExample,
} from "../../sdk/data/tokenize";
import { collate, makeBatches, maskToFloat32, packExamples } from "../../sdk/data/batch";
import { filterByLength, tokenLengthStats, tokenLengths } from "../../sdk/data/lengths";
import type { ChatRow, ClassificationRow, PretrainRow } from "../../sdk/data/types";
import { CharTokenizer } from "./helpers";

const chatRow = (messages: ChatRow["messages"]): ChatRow =>
  Dataset.fromRows([{ kind: "chat", messages }], "chat.jsonl").rows[0] as ChatRow;

/** The text of the tokens that carry a label, grouped into maximal runs. */
function trainedSpans(tok: CharTokenizer, ex: TokenizedExample): string[] {
  const spans: string[] = [];
  let cur: number[] = [];
  ex.labels!.forEach((l, t) => {
    if (l !== IGNORE_INDEX) {
      assert.equal(l, ex.inputIds[t], "labels equal the input ids where trained");
      cur.push(l);
    } else if (cur.length) {
      spans.push(tok.decode(cur));
      cur = [];
    }
  });
  if (cur.length) spans.push(tok.decode(cur));
  return spans;
}

test("SFT: only assistant tokens (and their end-of-turn) are trained; the prompt is -100", () => {
  const tok = new CharTokenizer();
  const row = chatRow([
    { role: "system", content: "Be brief." },
    { role: "user", content: "2+2?" },
    { role: "assistant", content: "4" },
    { role: "user", content: "and 3+3?" },
    { role: "assistant", content: "6" },
  ]);
  const ex = encodeChat(row, tok);
  assert.equal(tok.decode(ex.inputIds as number[]), tok.applyChatTemplate!(row.messages));
  assert.deepEqual(trainedSpans(tok, ex), ["4<|im_end|>\n", "6<|im_end|>\n"]);
  assert.equal(ex.lastTurnOnly, false);
  // train_on_prompt: every token is trained.
  const all = encodeChat(row, tok, { trainOnPrompt: true });
  assert.deepEqual(all.labels, all.inputIds);
});

test("SFT: EOS is appended (trained) when the template does not end turns with it", () => {
  const tok = new CharTokenizer({ eos: "<eos>" });
  const ex = encodeChat(chatRow([{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }]), tok);
  assert.equal(ex.inputIds[ex.inputIds.length - 1], tok.eosTokenId);
  assert.deepEqual(trainedSpans(tok, ex), ["yo<|im_end|>\n<eos>"]);
  const none = encodeChat(chatRow([{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }]), tok, { appendEos: false });
  assert.equal(none.inputIds.length, ex.inputIds.length - 1);
});

test("SFT: a template that rewrites earlier turns trains the last turn only, or errors on request", () => {
  const tok = new CharTokenizer({ stripOldThinking: true });
  const row = chatRow([
    { role: "user", content: "a?" },
    { role: "assistant", content: "<think>hmm</think>A" },
    { role: "user", content: "b?" },
    { role: "assistant", content: "<think>ok</think>B" },
  ]);
  const ex = encodeChat(row, tok);
  assert.equal(ex.lastTurnOnly, true);
  assert.deepEqual(trainedSpans(tok, ex), ["<think>ok</think>B<|im_end|>\n"]);
  assert.ok(!tok.decode(ex.inputIds as number[]).includes("hmm"), "the earlier turn is rendered as the template renders history");
  assert.throws(() => encodeChat(row, tok, { templateMismatch: "error" }), /chat\.jsonl:1: the chat template renders earlier turns differently/);
  // Single-turn conversations are prefix-stable even with this template.
  assert.equal(encodeChat(chatRow(row.messages.slice(0, 2)), tok).lastTurnOnly, false);
});

test("SFT without a chat template is a clear error", () => {
  const tok = new CharTokenizer({ template: false });
  assert.throws(() => encodeChat(chatRow([{ role: "user", content: "q" }, { role: "assistant", content: "a" }]), tok), /this tokenizer has no chat template/);
});

test("pre-training: ids + EOS, BOS from addSpecialTokens, cutoff truncation", () => {
  const tok = new CharTokenizer({ bos: true, eos: "<eos>" });
  const row = Dataset.fromRows([{ kind: "pretrain", text: "abc" }]).rows[0] as PretrainRow;
  const ex = encodePretrain(row, tok);
  assert.deepEqual(ex.inputIds, [1, 100 + 97, 100 + 98, 100 + 99, 2]);
  assert.deepEqual(ex.labels, ex.inputIds);
  assert.deepEqual(encodePretrain(row, tok, { cutoffLen: 3 }).inputIds, [1, 197, 198]);
  assert.deepEqual(encodePretrain(row, tok, { addSpecialTokens: false }).inputIds, [197, 198, 199, 2]);
});

test("classification: label indices from a sorted train vocabulary", () => {
  const tok = new CharTokenizer();
  const train = Dataset.fromRows([
    { kind: "classification", text: "x", label: "shipping" },
    { kind: "classification", text: "y", label: "billing" },
    { kind: "classification", text: "z", label: "account" },
  ]);
  const vocab = LabelVocab.fromDataset(train);
  assert.deepEqual(vocab.labels, ["account", "billing", "shipping"]);
  assert.equal(LabelVocab.fromDataset(train.shuffle(3)).indexOf("shipping"), 2);
  const ex = encodeClassification(train.rows[0] as ClassificationRow, tok, vocab, { cutoffLen: 5 });
  assert.deepEqual(ex, { id: "<memory>:1", inputIds: [100 + 120], classLabel: 2 });
  assert.throws(() => vocab.indexOf("other"), /label "other" is not in the label vocabulary/);
  const all = tokenizeDataset(train, tok, { labelVocab: vocab });
  assert.deepEqual(all.examples.map((e) => e.classLabel), [2, 1, 0]);
  assert.throws(() => tokenizeDataset(train, tok), /need labelVocab/);
});

test("tokenizeDataset: truncation is counted; SFT rows with no trained token left are dropped and counted", () => {
  const tok = new CharTokenizer();
  const ds = Dataset.fromRows([
    { kind: "chat", messages: [{ role: "user", content: "short" }, { role: "assistant", content: "ok" }] },
    { kind: "chat", messages: [{ role: "user", content: "a very long question indeed ".repeat(3) }, { role: "assistant", content: "ok" }] },
  ], "sft.jsonl");
  const out = tokenizeDataset(ds, tok, { cutoffLen: 40 });
  assert.equal(out.examples.length, 1);
  assert.deepEqual(out.report.countsByReason, { "too-long": 1 });
  assert.equal(out.report.dropped[0].line, 2);
  const pt = tokenizeDataset(Dataset.fromRows([{ kind: "pretrain", text: "abcdefgh" }, { kind: "pretrain", text: "ab" }]), tok, { cutoffLen: 4 });
  assert.equal(pt.truncated, 1);
  assert.deepEqual(pt.examples.map((e) => e.inputIds.length), [4, 3]);
});

test("packing: concat splits a stream into cutoff blocks; bins keep examples whole", () => {
  const ex = (id: string, n: number, masked = 0): TokenizedExample => ({
    id,
    inputIds: Array.from({ length: n }, (_, k) => 1000 + k),
    labels: Array.from({ length: n }, (_, k) => (k < masked ? IGNORE_INDEX : 1000 + k)),
  });
  const exs = [ex("a", 5), ex("b", 3), ex("c", 6), ex("d", 2)];
  const concat = packExamples(exs, { cutoffLen: 4 });
  assert.deepEqual(concat.map((e) => e.inputIds.length), [4, 4, 4, 4]);
  assert.deepEqual(concat.flatMap((e) => e.inputIds), exs.flatMap((e) => e.inputIds));
  assert.deepEqual(concat.map((e) => e.segmentLengths), [[4], [1, 3], [4], [2, 2]]);
  assert.equal(packExamples([ex("a", 5)], { cutoffLen: 4, dropRemainder: true }).length, 1);
  const bins = packExamples([ex("a", 5, 2), ex("b", 3, 1), ex("c", 6), ex("d", 2)], { cutoffLen: 8, mode: "bins" });
  assert.deepEqual(bins.map((b) => b.segmentLengths), [[6, 2], [5, 3]]);
  for (const b of bins) assert.ok(b.inputIds.length <= 8);
  assert.equal(bins.flatMap((b) => b.labels!).filter((l) => l === IGNORE_INDEX).length, 3, "prompt masks survive packing");
  assert.throws(() => packExamples([{ id: "c", inputIds: [1], classLabel: 0 }], { cutoffLen: 4 }), /no token labels/);
});

test("collate: right padding, int64 masks, labels padded with -100, shape [batch, seq]", () => {
  const b = collate(
    [
      { id: "x", inputIds: [5, 6, 7], labels: [IGNORE_INDEX, 6, 7] },
      { id: "y", inputIds: [8], labels: [8] },
    ],
    0,
  );
  assert.deepEqual(b.shape, [2, 3]);
  assert.ok(b.inputIds instanceof BigInt64Array && b.attentionMask instanceof BigInt64Array && b.labels instanceof BigInt64Array);
  assert.deepEqual([...b.inputIds], [5n, 6n, 7n, 8n, 0n, 0n]);
  assert.deepEqual([...b.attentionMask], [1n, 1n, 1n, 1n, 0n, 0n]);
  assert.deepEqual([...b.labels!], [-100n, 6n, 7n, 8n, -100n, -100n]);
  assert.deepEqual([...maskToFloat32(b.attentionMask)], [1, 1, 1, 1, 0, 0]);
  assert.equal(b.numTokens, 4);
  const m8 = collate([{ id: "z", inputIds: [1, 2, 3] , labels: [1, 2, 3] }], 9, 8);
  assert.deepEqual(m8.shape, [1, 8]);
  const cls = collate([{ id: "a", inputIds: [1, 2], classLabel: 3 }, { id: "b", inputIds: [4], classLabel: 0 }], 0);
  assert.deepEqual([...cls.classLabels!], [3n, 0n]);
  assert.equal(cls.labels, undefined);
  assert.throws(() => collate([{ id: "a", inputIds: [1], classLabel: 1 }, { id: "b", inputIds: [1], labels: [1] }], 0), /mixes LM and classification/);
});

test("makeBatches: every example once, seeded order, length grouping cuts padding", () => {
  const rngLen = (k: number) => 1 + ((k * 37) % 50);
  const exs: TokenizedExample[] = Array.from({ length: 200 }, (_, k) => ({
    id: `e${k}`,
    inputIds: Array.from({ length: rngLen(k) }, () => 7),
    labels: Array.from({ length: rngLen(k) }, () => 7),
  }));
  const grouped = makeBatches(exs, { batchSize: 16, padTokenId: 0, seed: 1, megaBatchMult: 4 });
  assert.equal(grouped.length, 13);
  assert.deepEqual(grouped.flatMap((b) => b.ids).sort(), exs.map((e) => e.id).sort());
  assert.deepEqual(grouped.map((b) => b.ids), makeBatches(exs, { batchSize: 16, padTokenId: 0, seed: 1, megaBatchMult: 4 }).map((b) => b.ids));
  assert.notDeepEqual(grouped.map((b) => b.ids), makeBatches(exs, { batchSize: 16, padTokenId: 0, seed: 2, megaBatchMult: 4 }).map((b) => b.ids));
  for (const b of grouped) {
    assert.equal(b.inputIds.length, b.shape[0] * b.shape[1]);
    assert.equal(b.shape[1], Math.max(...b.ids.map((id) => rngLen(Number(id.slice(1))))));
  }
  const pad = (bs: typeof grouped) => bs.reduce((s, b) => s + b.shape[0] * b.shape[1] - b.numTokens, 0);
  const random = makeBatches(exs, { batchSize: 16, padTokenId: 0, seed: 1, groupByLength: false });
  assert.ok(pad(grouped) < pad(random) / 2, `grouped padding ${pad(grouped)} vs random ${pad(random)}`);
  assert.equal(makeBatches(exs, { batchSize: 16, padTokenId: 0, dropLast: true }).length, 12);
  const inOrder = makeBatches(exs.slice(0, 4), { batchSize: 2, padTokenId: 0, shuffle: false, groupByLength: false });
  assert.deepEqual(inOrder.map((b) => b.ids), [["e0", "e1"], ["e2", "e3"]]);
});

test("token-length statistics and filtering by length", () => {
  const stats = tokenLengthStats([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 3);
  assert.equal(stats.count, 10);
  assert.equal(stats.min, 10);
  assert.equal(stats.max, 100);
  assert.equal(stats.mean, 55);
  assert.equal(stats.p50, 50);
  assert.equal(stats.p90, 90);
  assert.equal(stats.p99, 100);
  assert.deepEqual(stats.histogram.counts, [4, 3, 3]);
  assert.equal(stats.histogram.counts.reduce((a, b) => a + b, 0), 10);
  assert.equal(stats.histogram.edges.length, 4);
  assert.equal(tokenLengthStats([]).count, 0);

  const tok = new CharTokenizer();
  const ds = Dataset.fromRows([
    { kind: "pretrain", text: "a" },
    { kind: "pretrain", text: "abcdef" },
    { kind: "pretrain", text: "abcdefghijkl" },
  ], "lens.txt");
  assert.deepEqual(tokenLengths(ds, tok), [2, 7, 13]);
  const kept = filterByLength(ds, tok, { min: 3, max: 10 });
  assert.deepEqual(kept.rows.map((r) => (r as PretrainRow).text), ["abcdef"]);
  assert.deepEqual(kept.report.countsByReason, { "too-short": 1, "too-long": 1 });
  assert.match(kept.report.dropped[1].message, /13 tokens, outside the allowed 3–10/);
  const chat = Dataset.fromRows([{ kind: "chat", messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] }]);
  assert.equal(tokenLengths(chat, tok)[0], encodeChat(chat.rows[0] as ChatRow, tok).inputIds.length);
});
