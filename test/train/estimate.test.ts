/** `tunelab estimate`: symbolic sizes, the liveness walk, the parts of the estimate and the CLI's verdict. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Builder } from "../../sdk/graph/ops";
import { main } from "../../sdk/cli/main";
import { parseSize } from "../../sdk/cli/commands/estimate";
import { readModelConfig } from "../../sdk/io/config";
import { presetConfig } from "../../sdk/io/presets";
import { createTinyModel } from "../../sdk/io/tiny";
import { Model } from "../../sdk/plan/model";
import { JUPYTER_DISPLAY } from "../../sdk/viz/display";
import { ACTIVATION_OVERHEAD, estimateTrainingMemory, evalDim, peakActivationBytes, RUNTIME_BYTES } from "../../sdk/train/estimate";

test("symbolic dimensions evaluate with the given sizes", () => {
  assert.equal(evalDim("batch*seq", { batch: 2, seq: 5 }), 10);
  assert.equal(evalDim("seq-1+1", { seq: 7 }), 7);
  assert.equal(evalDim("past+seq", { past: 3, seq: 4 }), 7);
  assert.throws(() => evalDim("numel", { seq: 1 }), /"numel" is not one of seq/);
});

test("the liveness walk frees a tensor after its last reader and keeps inputs and outputs", () => {
  const b = new Builder();
  const x = b.graph.input("x", "float32", ["n", 100]); // 400n bytes, live throughout
  const a = b.exp(x); // freed after c reads it
  const c = b.add(a, a);
  const d = b.exp(c);
  b.graph.output(d, "y");
  // x + a + c at the add (a freed after), then x + c + d at the second exp.
  assert.equal(peakActivationBytes(b.graph, { n: 10 }), 3 * 4000);
  const wide = new Builder();
  const w = wide.graph.input("x", "float32", ["n", 100]);
  const parts = [wide.exp(w), wide.neg(w), wide.abs(w)]; // all three alive until the sum
  wide.graph.output(wide.add(wide.add(parts[0], parts[1]), parts[2]), "y");
  assert.equal(peakActivationBytes(wide.graph, { n: 10 }), 5 * 4000); // x, the three parts and their first sum
});

test("the estimate sums exact weight bytes, LoRA state, scaled activations and the runtime; a Model shows it as a table", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-estimate-"));
  try {
    createTinyModel({ arch: "qwen2", out: dir, seed: 0 });
    const config = readModelConfig(dir);
    const e = estimateTrainingMemory(config, { rank: 4, seq: 64, budgetBytes: 2 ** 40 });
    const h = config.hiddenSize;
    assert.ok(e.weights > config.vocabSize * h * 4, "weights include the embedding in float32");
    assert.equal(estimateTrainingMemory(config, { rank: 4, seq: 64, halfPrecision: true }).weights, e.weights / 2);
    assert.equal(e.total, e.weights + e.loraAndOptimizer + e.activations + RUNTIME_BYTES);
    assert.equal(e.fits, true);
    const longer = estimateTrainingMemory(config, { rank: 4, seq: 256 });
    assert.ok(longer.activations > 3 * e.activations, `activations grow with tokens: ${e.activations} -> ${longer.activations}`);
    assert.ok(e.activations / ACTIVATION_OVERHEAD > 64 * h * 4 * config.numHiddenLayers, "at least one hidden state per layer is kept");
    const bigger = estimateTrainingMemory(config, { rank: 64, seq: 64 });
    assert.ok(bigger.loraAndOptimizer > 10 * e.loraAndOptimizer);
    const view = (await Model.open(dir)).estimate({ rank: 4, seq: 64 });
    assert.equal(view.estimate.total, e.total);
    assert.match(String(view[JUPYTER_DISPLAY]()["text/html"]), /activations \(peak\).*total/s);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("tunelab estimate: a verdict, sizes with units, and a clear refusal of what it cannot estimate", async () => {
  assert.equal(parseSize("24GiB"), 24 * 2 ** 30);
  assert.equal(parseSize("16 GB"), 16e9);
  assert.throws(() => parseSize("lots"), /--memory must be a size/);
  const log: string[] = [];
  const original = console.log;
  console.log = (line: string) => void log.push(line);
  try {
    assert.equal(await main(["estimate", "--preset", "qwen2.5-0.5b-instruct", "--seq", "128", "--memory", "1GiB"]), 3);
    assert.match(log.join("\n"), /budget\s+1 GiB: does not fit/);
    assert.equal(await main(["estimate", "--preset", "qwen2.5-0.5b-instruct", "--seq", "128", "--memory", "64GiB"]), 0);
  } finally {
    console.log = original;
  }
  await assert.rejects(main(["estimate", "--preset", "qwen2.5-0.5b-instruct", "--quantization_bit", "3"]), /--quantization_bit must be 4 or 8/);
  await assert.rejects(main(["estimate", "--preset", "nope"]), /--preset must be one of/);
});

test("a 4-bit base: linears at about 4.1 bits per weight (NF4 codes, double-quantised scales), 8-bit in between", () => {
  const config = presetConfig("deepseek-r1-distill-qwen-7b");
  const options = { seq: 256, gradientCheckpointing: true };
  const full = estimateTrainingMemory(config, options);
  const q4 = estimateTrainingMemory(config, { ...options, quantizationBit: 4 });
  const q8 = estimateTrainingMemory(config, { ...options, quantizationBit: 8 });
  // lm_head stays in the checkpoint's 16 bits (152064 x 3584); the mapped embedding costs only the batch's rows;
  // 6.53e9 linear weights.
  const lmHead = 152064 * 3584 * 2;
  const linears = 28 * (3584 * 3584 * 2 + 512 * 3584 * 2 + 3 * 18944 * 3584);
  assert.ok(Math.abs(q4.weights - lmHead - linears * (0.5 + 1 / 64 + 4 / (64 * 256))) < 2e6, `4-bit weights ${q4.weights}`);
  assert.ok(Math.abs(q8.weights - lmHead - linears * (1 + 4 / 64)) < 2e6, `8-bit weights ${q8.weights}`);
  assert.ok(q4.total < q8.total && q8.total < full.total);
});
