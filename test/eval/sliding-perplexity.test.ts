/** Sliding-window perplexity on a tiny model: windows, one window = plain perplexity, per-token contexts by hand. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { openModel } from "../../sdk/models/model";
import { evaluateModel } from "../../sdk/eval/evaluate";
import { slidingWindowPerplexity, slidingWindows, scoredTokens } from "../../sdk/eval/sliding-perplexity";
import { IGNORE_INDEX } from "../../sdk/data/tokenize";

test("windows follow the HF guide: each token after the first scored once, the rest context", () => {
  const ids = Array.from({ length: 10 }, (_, i) => 100 + i);
  const w = slidingWindows(ids, 4, 2);
  const I = IGNORE_INDEX;
  assert.deepEqual(
    w.map((x) => [x.inputIds, x.labels]),
    [
      [
        [100, 101, 102, 103],
        [100, 101, 102, 103],
      ],
      [
        [102, 103, 104, 105],
        [I, I, 104, 105],
      ],
      [
        [104, 105, 106, 107],
        [I, I, 106, 107],
      ],
      [
        [106, 107, 108, 109],
        [I, I, 108, 109],
      ],
    ],
  );
  assert.equal(
    w.reduce((n, x) => n + scoredTokens(x), 0),
    9,
  );
  // a last partial window scores only its new tokens
  assert.deepEqual(
    slidingWindows(ids.slice(0, 7), 4, 3).map((x) => x.labels),
    [
      [100, 101, 102, 103],
      [I, 104, 105, 106],
    ],
  );
  assert.throws(() => slidingWindows(ids, 4, 5), /stride must be an integer in 1..maxLength \(4\), got 5/);
});

test("sliding-window perplexity equals per-token NLL with exactly the window's context", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-slide-"));
  try {
    createTinyModel({ arch: "qwen2", out: dir, seed: 3, hiddenSize: 32, numLayers: 1, maxPositionEmbeddings: 64 });
    const model = openModel(dir);
    const ids = model.tokenizer.encode("净利润增长12%，fine-tune", { addSpecialTokens: false }).slice(0, 14);
    assert.ok(ids.length >= 12, `need a longer text, got ${ids.length} tokens`);
    const target = { model, adapter: null, device: "cpu" as const };
    // one window covering the text = plain perplexity
    const plain = await evaluateModel({ ...target, stage: "pt" }, [{ id: "t", inputIds: ids, labels: ids }], 1);
    const one = await slidingWindowPerplexity(target, [ids], { maxLength: 64, stride: 64 });
    assert.equal(one.windows, 1);
    assert.ok(Math.abs(one.loss - plain.loss) < 1e-6);
    // stride 1, window 5: token t is predicted from the previous min(t, 4) tokens; score each token on its own
    const L = 5;
    const slide = await slidingWindowPerplexity(target, [ids], { maxLength: L, stride: 1 });
    assert.equal(slide.tokens, ids.length - 1);
    const single = [];
    for (let t = 1; t < ids.length; t++) {
      const ctx = ids.slice(Math.max(0, t - (L - 1)), t + 1);
      single.push({ id: `p${t}`, inputIds: ctx, labels: ctx.map((x, i) => (i === ctx.length - 1 ? x : IGNORE_INDEX)) });
    }
    const ref = await evaluateModel({ ...target, stage: "pt" }, single, 4);
    assert.ok(Math.abs(slide.loss - ref.loss) < 1e-5, `sliding ${slide.loss} vs per-token ${ref.loss}`);
    assert.ok(Math.abs(slide.loss - plain.loss) > 1e-4, "a 5-token window must change the result on this text");
    await assert.rejects(slidingWindowPerplexity(target, [ids], { maxLength: 65 }), /exceeds the model's max_position_embeddings \(64\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
