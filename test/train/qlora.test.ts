/**
 * QLoRA end to end: a recipe with quantization_bit 4 trains on a 4-bit base, and the adapter it saves is an ordinary
 * PEFT adapter that works on the full-precision base too, for LoRA and DoRA. Methods tunelab cannot honour are
 * refused by name.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { ForwardPass } from "../../sdk/infer/forward-pass";
import { loadAdapter, loraModules, loraNames, loraTrainables, type Adapter } from "../../sdk/models/lora";
import { openModel, type BaseModel } from "../../sdk/models/model";
import { causalLMForward } from "../../sdk/models/tasks";
import { quantConfigOf } from "../../sdk/train/quantization";
import { resolveRecipe, type Recipe } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";

const root = path.join(__dirname, "../../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-qlora-train-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A tiny model and a short run on it with a 4-bit base; `extra` adds recipe keys. */
async function trainOn4Bit(name: string, extra: Record<string, unknown> = {}) {
  const modelDir = path.join(tmp, `model-${name}`);
  createTinyModel({ arch: "llama", out: modelDir, seed: 0, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.1 });
  const recipe = resolveRecipe({
    model_name_or_path: modelDir,
    dataset_path: path.join(root, "data/arithmetic.txt"),
    output_dir: path.join(tmp, `run-${name}`),
    stage: "pt",
    learning_rate: 1e-2,
    warmup_steps: 2,
    max_steps: 16,
    per_device_train_batch_size: 8,
    logging_steps: 1,
    save_steps: 0,
    lora_rank: 4,
    lora_alpha: 8,
    quantization_bit: 4,
    ...extra,
  });
  const result = await train(recipe);
  const first = result.history[0].loss;
  const last = result.history[result.history.length - 1].loss;
  assert.ok(last < 0.8 * first, `loss ${first} -> ${last}`);
  return { recipe, model: openModel(modelDir), adapter: loadAdapter(recipe.output_dir) };
}

/**
 * Losses on the first lines of the data, on the float32 and the 4-bit base, with and without the adapter: the saved
 * adapter is plain PEFT, so it must help the float32 base about as much as the 4-bit one it was trained on.
 */
async function checkOnBothBases(recipe: Recipe, model: BaseModel, adapter: Adapter, label: string): Promise<void> {
  const modules = loraModules(model.config, adapter.config);
  const trained = loraTrainables(modules, 0, adapter);
  const text = fs.readFileSync(path.join(root, "data/arithmetic.txt"), "utf8").split("\n").slice(0, 8).join("\n");
  const ids = model.tokenizer.encode(text).slice(0, 96);
  const batch = {
    input_ids: { dtype: "int64" as const, shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) },
    attention_mask: { dtype: "int64" as const, shape: [1, ids.length], data: new BigInt64Array(ids.length).fill(1n) },
    labels: { dtype: "int64" as const, shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) },
  };
  const loss = async (quantized: boolean, tensors: typeof trained | null) => {
    const weights = model.weights.quantized(quantized ? quantConfigOf(recipe) : null);
    const lora = tensors ? modules : [];
    const pass = new ForwardPass(causalLMForward({ config: model.config, weights, lora, loraDropout: 0 }), tensors ?? []);
    const r = await pass.run(batch, new Map((tensors ?? []).map((t) => [t.name, t.init])));
    await pass.release();
    return r.lossSum / r.count;
  };
  const [fullBase, fullTuned, qBase, qTuned] = [await loss(false, null), await loss(false, trained), await loss(true, null), await loss(true, trained)];
  console.log(
    `${label}: perplexity on the first lines: float32 base ${Math.exp(fullBase).toFixed(2)}, NF4 base ${Math.exp(qBase).toFixed(2)}; with the adapter trained on NF4: float32 ${Math.exp(fullTuned).toFixed(2)}, NF4 ${Math.exp(qTuned).toFixed(2)}`,
  );
  const gainOn4bit = qBase - qTuned;
  const gainOnFull = fullBase - fullTuned;
  assert.ok(gainOn4bit > 0.2 * qBase, `the adapter helps the 4-bit base: ${qBase} -> ${qTuned}`);
  assert.ok(gainOnFull > 0.8 * gainOn4bit, `on the float32 base: ${fullBase} -> ${fullTuned} (4-bit: ${qBase} -> ${qTuned})`);
  assert.ok(Math.abs(fullTuned - qTuned) < 0.1 * qTuned, `tuned losses close: float32 base ${fullTuned}, 4-bit base ${qTuned}`);
}

test("a 4-bit (NF4) base trains, and its adapter improves the float32 base about as much as the 4-bit one", async () => {
  const { recipe, model, adapter } = await trainOn4Bit("lora");
  assert.deepEqual(quantConfigOf(recipe), { type: "nf4", blockSize: 64, doubleQuant: true }, "LLaMA-Factory's defaults");
  await checkOnBothBases(recipe, model, adapter, "LoRA");
});

test("use_dora on a 4-bit base (QDoRA) trains from the dequantised weights' row norms; its PEFT adapter works on the float32 base too", async () => {
  const { recipe, model, adapter } = await trainOn4Bit("dora", { use_dora: true });
  assert.equal(adapter.config.useDora, true);
  const modules = loraModules(model.config, adapter.config);
  assert.ok(modules.length > 0 && modules.every((m) => adapter.lora[m.path]?.magnitude), "every module carries a lora_magnitude_vector");
  // PEFT starts the magnitude at ||W|| of the weight the layer computes with: on a 4-bit base, the dequantised one.
  const quantized = model.weights.quantized(quantConfigOf(recipe));
  const start = new Map(loraTrainables(modules, 0, undefined, quantized).map((t) => [t.name, t.init]));
  const m = modules[0];
  const rowNorms = (w: Float32Array) => Array.from({ length: m.outFeatures }, (_, o) => Math.hypot(...w.subarray(o * m.inFeatures, (o + 1) * m.inFeatures)));
  const magnitude = start.get(loraNames(m.path).magnitude)!;
  const fromQuantized = rowNorms(quantized.get(`${m.path}.weight`).data);
  const fromFull = rowNorms(model.weights.get(`${m.path}.weight`).data);
  fromQuantized.forEach((v, o) => assert.ok(Math.abs(magnitude[o] - v) <= 1e-5 * v, `row ${o}: ${magnitude[o]} vs the dequantised norm ${v}`));
  assert.ok(
    fromFull.some((v, o) => Math.abs(v - fromQuantized[o]) > 1e-3 * v),
    "the 4-bit weights' norms differ from the float32 ones",
  );
  const trained = adapter.lora[m.path].magnitude!;
  assert.ok(
    trained.some((v, o) => Math.abs(v - magnitude[o]) > 1e-4),
    "the magnitudes moved",
  );
  await checkOnBothBases(recipe, model, adapter, "DoRA");
});

test("quantization options tunelab cannot honour are refused naming the option and what it can do", () => {
  const base = { quantization_method: "bnb", quantization_type: "nf4" as const, double_quantization: true, quantization_block_size: 64 };
  assert.equal(quantConfigOf(base), null, "no quantization_bit: a 16/32-bit base");
  assert.deepEqual(quantConfigOf({ ...base, quantization_bit: 8 }), { type: "int8", blockSize: 64, doubleQuant: false });
  assert.deepEqual(quantConfigOf({ ...base, quantization_bit: 4, quantization_type: "int4" }), { type: "int4", blockSize: 64, doubleQuant: false });
  for (const method of ["hqq", "eetq", "gptq", "awq"]) {
    assert.throws(
      () => quantConfigOf({ ...base, quantization_bit: 4, quantization_method: method }),
      new RegExp(`quantization_method: "${method}" is not supported.*quantization_bit 4 \\(nf4, fp4 or int4\\) or 8`),
    );
  }
  for (const bits of [2, 3]) assert.throws(() => quantConfigOf({ ...base, quantization_bit: bits }), new RegExp(`quantization_bit: ${bits} is not supported`));
  assert.throws(() => quantConfigOf({ ...base, quantization_bit: 4, quantization_block_size: 48 }), /quantization_block_size: 48 must be a power of two/);
});
