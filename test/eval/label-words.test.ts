/** Label-word classification on a tiny chat model without a head: scores equal uncached forward passes. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { openModel } from "../../sdk/models/model";
import { Generator } from "../../sdk/infer/generate";
import { labelWordPredict } from "../../sdk/eval/label-words";
import { classification } from "../../sdk/eval/classification";

function logSoftmax(logits: Float32Array, i: number): number {
  const max = Math.max(...logits);
  return logits[i] - max - Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
}

test("label-word scoring: summed label log-probabilities, first-token restriction, then sklearn-style metrics", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-labels-"));
  try {
    createTinyModel({ arch: "llama", out: dir, seed: 4, hiddenSize: 32, numLayers: 1, initStd: 0.2 });
    const gen = new Generator(openModel(dir));
    const tok = gen.tokenizer;
    const labels = ["正面", "负面", "neutral"];
    const texts = ["这个产品很好用", "质量太差了", "It arrived on Tuesday."];
    const r = await labelWordPredict(gen, texts, labels);
    // brute force: the whole sequence through the model without a cache, one label token at a time
    for (const [i, t] of texts.entries()) {
      const prompt = tok.encode(tok.applyChatTemplate([{ role: "user", content: t }], { addGenerationPrompt: true }), { addSpecialTokens: false });
      for (const [j, l] of labels.entries()) {
        const lab = tok.encode(l, { addSpecialTokens: false });
        let lp = 0;
        for (let k = 0; k < lab.length; k++) lp += logSoftmax((await gen.forward({ inputIds: [[...prompt, ...lab.slice(0, k)]] })).logits[0], lab[k]);
        assert.ok(Math.abs(r.scores[i][j] - lp) < 1e-3, `text ${i} label ${l}: ${r.scores[i][j]} vs ${lp}`);
      }
      assert.equal(r.predicted[i], labels[r.scores[i].indexOf(Math.max(...r.scores[i]))]);
    }
    // first-token restriction: only the log-probability of each label's first token after the prompt
    const f = await labelWordPredict(gen, texts, labels, { firstTokenOnly: true });
    for (const [i, t] of texts.entries()) {
      const prompt = tok.encode(tok.applyChatTemplate([{ role: "user", content: t }], { addGenerationPrompt: true }), { addSpecialTokens: false });
      const logits = (await gen.forward({ inputIds: [prompt] })).logits[0];
      labels.forEach((l, j) => assert.ok(Math.abs(f.scores[i][j] - logSoftmax(logits, tok.encode(l, { addSpecialTokens: false })[0])) < 1e-4));
    }
    await assert.rejects(labelWordPredict(gen, texts, ["正面", "正确"], { firstTokenOnly: true }), /start with the same token; score whole labels/);
    const m = classification(["正面", "负面", "neutral"], r.predicted);
    assert.equal(
      m.confusion.matrix.flat().reduce((a, b) => a + b, 0),
      3,
    );
    await assert.rejects(labelWordPredict(gen, texts, ["x"]), /at least two labels/);
    await gen.release();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
