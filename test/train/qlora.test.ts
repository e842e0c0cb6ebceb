/**
 * QLoRA end to end: a recipe with quantization_bit 4 trains on a 4-bit base, and the adapter it saves is an ordinary
 * PEFT adapter that works on the full-precision base too. Methods tunelab cannot honour are refused by name.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { ForwardPass } from "../../sdk/infer/forward-pass";
import { loadAdapter, loraModules, loraTrainables } from "../../sdk/models/lora";
import { openModel } from "../../sdk/models/model";
import { causalLMForward } from "../../sdk/models/tasks";
import { quantConfigOf } from "../../sdk/train/quantization";
import { resolveRecipe } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";

const root = path.join(__dirname, "../../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-qlora-train-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("a 4-bit (NF4) base trains, and its adapter improves the float32 base about as much as the 4-bit one", async () => {
  const modelDir = path.join(tmp, "model");
  createTinyModel({ arch: "llama", out: modelDir, seed: 0, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.1 });
  const recipe = resolveRecipe({
    model_name_or_path: modelDir,
    dataset_path: path.join(root, "data/arithmetic.txt"),
    output_dir: path.join(tmp, "run"),
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
  });
  assert.deepEqual(quantConfigOf(recipe), { type: "nf4", blockSize: 64, doubleQuant: true }, "LLaMA-Factory's defaults");
  const result = await train(recipe);
  const first = result.history[0].loss;
  const last = result.history[result.history.length - 1].loss;
  assert.ok(last < 0.8 * first, `loss ${first} -> ${last}`);

  // The saved adapter is plain PEFT: evaluate it on the float32 base and on the 4-bit base, with and without it.
  const adapter = loadAdapter(recipe.output_dir);
  const model = openModel(modelDir);
  const modules = loraModules(model.config, adapter.config);
  const trained = loraTrainables(modules, 0, adapter);
  const untrained = loraTrainables(modules, 0); // B = 0: the base alone
  const text = fs.readFileSync(path.join(root, "data/arithmetic.txt"), "utf8").split("\n").slice(0, 8).join("\n");
  const ids = model.tokenizer.encode(text).slice(0, 96);
  const batch = {
    input_ids: { dtype: "int64" as const, shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) },
    attention_mask: { dtype: "int64" as const, shape: [1, ids.length], data: new BigInt64Array(ids.length).fill(1n) },
    labels: { dtype: "int64" as const, shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) },
  };
  const loss = async (quantized: boolean, tensors: typeof trained) => {
    const weights = model.weights.quantized(quantized ? quantConfigOf(recipe) : null);
    const pass = new ForwardPass(causalLMForward({ config: model.config, weights, lora: modules, loraDropout: 0 }), tensors);
    const r = await pass.run(batch, new Map(tensors.map((t) => [t.name, t.init])));
    await pass.release();
    return r.lossSum / r.count;
  };
  const [fullBase, fullTuned, qBase, qTuned] = [
    await loss(false, untrained),
    await loss(false, trained),
    await loss(true, untrained),
    await loss(true, trained),
  ];
  console.log(
    `perplexity on the first lines: float32 base ${Math.exp(fullBase).toFixed(2)}, NF4 base ${Math.exp(qBase).toFixed(2)}; with the adapter trained on NF4: float32 ${Math.exp(fullTuned).toFixed(2)}, NF4 ${Math.exp(qTuned).toFixed(2)}`,
  );
  const gainOn4bit = qBase - qTuned;
  const gainOnFull = fullBase - fullTuned;
  assert.ok(gainOn4bit > 0.2 * qBase, `the adapter helps the 4-bit base: ${qBase} -> ${qTuned}`);
  assert.ok(gainOnFull > 0.8 * gainOn4bit, `on the float32 base: ${fullBase} -> ${fullTuned} (4-bit: ${qBase} -> ${qTuned})`);
  assert.ok(Math.abs(fullTuned - qTuned) < 0.1 * qTuned, `tuned losses close: float32 base ${fullTuned}, 4-bit base ${qTuned}`);
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
  assert.throws(
    () => resolveRecipe({ model_name_or_path: "m", dataset_path: "d.txt", output_dir: "o", quantization_bit: 4, use_dora: true }),
    /use_dora must be false with quantization_bit \(DoRA on a quantised base is not supported yet/,
  );
});
