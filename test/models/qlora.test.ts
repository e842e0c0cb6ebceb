/**
 * QLoRA: a 4/8-bit base gives the loss and LoRA gradients of the float32 model whose weights are its dequantised
 * values (through onnxruntime's MatMulBnb4 / MatMulNBits forward and the in-graph dequantised backward), with and
 * without gradient checkpointing; no dequantisation is constant-folded at session creation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { existsSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { dequantChunk } from "../../sdk/graph/quant";
import { castChunk } from "../../sdk/graph/half-linear";
import { createTinyModel, type TinyModelOptions } from "../../sdk/io/tiny";
import { QUANTIZED_WEIGHT, type QuantConfig } from "../../sdk/io/quantize";
import { openWeights, writeSafetensors, toFloat32 } from "../../sdk/io/safetensors";
import { dequantizedWeight } from "../../sdk/io/weight-cache";
import { loraModules, loraTrainables, makeLoraConfig } from "../../sdk/models/lora";
import { openModel } from "../../sdk/models/model";
import { causalLMForward } from "../../sdk/models/tasks";
import { FrozenWeights } from "../../sdk/models/weights";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import type { Device } from "../../sdk/runtime/device";
import type { HostTensor } from "../../sdk/runtime/session";
import { compileGradStep, names } from "../../sdk/train/step";
import { Rng } from "../../sdk/util/random";
import { float32ToBf16Bits } from "../../sdk/util/float16";
import { tempDir } from "../io/tmp";

const CONFIGS: QuantConfig[] = [
  { type: "nf4", blockSize: 64, doubleQuant: true },
  { type: "fp4", blockSize: 32, doubleQuant: false },
  { type: "int4", blockSize: 32, doubleQuant: false },
  { type: "int8", blockSize: 64, doubleQuant: false },
];

/**
 * A tiny model, and a float32 copy of it holding what the quantised base computes with: the dequantised values of
 * `quant` for the linears, and the vocabulary matrices as the weight file keeps them (16 bits for a 16-bit model).
 */
function models(quant: QuantConfig, cache: string, tiny: Partial<TinyModelOptions> = {}) {
  const dir = tempDir("tunelab-qlora-");
  createTinyModel({ arch: "qwen2", out: dir, seed: 3, numLayers: 2, initStd: 0.2, ...tiny });
  const base = openModel(dir);
  const quantized = new FrozenWeights(openWeights(dir), "float32", cache, quant);
  const file = quantized.weightFile();
  const denseDir = tempDir("tunelab-qlora-dense-");
  const source = openWeights(dir);
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  let replaced = 0;
  for (const name of source.names()) {
    const t = source.read(name);
    const stored = QUANTIZED_WEIGHT.test(name) || file.tensors.get(name)?.dtype === "float16";
    if (QUANTIZED_WEIGHT.test(name)) replaced++;
    const data = stored ? dequantizedWeight(file, name) : Float32Array.from(toFloat32(t));
    tensors[name] = { dtype: "F32", shape: t.shape, data };
  }
  assert.equal(replaced, 7 * base.config.numHiddenLayers, "every linear of every layer is quantised");
  assert.equal(file.quantized.size, replaced);
  writeSafetensors(path.join(denseDir, "model.safetensors"), tensors);
  return { base, quantized, dense: new FrozenWeights(openWeights(denseDir), "float32", cache) };
}

function batchOf(trainable: ReturnType<typeof loraTrainables>, rng: Rng): Record<string, HostTensor> {
  const seq = 10;
  const ids = Array.from({ length: 2 * seq }, () => BigInt(3 + rng.int(200)));
  const batch: Record<string, HostTensor> = {
    input_ids: { dtype: "int64", shape: [2, seq], data: BigInt64Array.from(ids) },
    attention_mask: { dtype: "int64", shape: [2, seq], data: BigInt64Array.from(ids, (_, i) => (i === 2 * seq - 1 ? 0n : 1n)) },
    labels: { dtype: "int64", shape: [2, seq], data: BigInt64Array.from(ids) },
  };
  for (const t of trainable) batch[names.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
  return batch;
}

/** What else a comparison trains with: a 16-bit tiny model, DoRA, LoRA dropout. */
interface CompareOptions {
  tiny?: Partial<TinyModelOptions>;
  dora?: boolean;
  dropout?: number;
}

async function compare(quant: QuantConfig, device: Device, gradientCheckpointing: boolean, opts: CompareOptions = {}): Promise<void> {
  const cache = tempDir("tunelab-qlora-cache-");
  const { base, quantized, dense } = models(quant, cache, opts.tiny);
  const modules = loraModules(base.config, makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear", useDora: opts.dora ?? false }));
  const rng = new Rng(11);
  // A DoRA magnitude starts at the quantised base's row norms (the dense copy holds the same values).
  const trainable = loraTrainables(modules, 1, undefined, quantized).map((t) => ({
    ...t,
    init: t.name.endsWith("lora_B") ? Float32Array.from(t.init, () => rng.normal() * 0.1) : t.init,
  }));
  const batch = batchOf(trainable, rng);
  const loraDropout = opts.dropout ?? 0;
  if (loraDropout > 0) batch.dropout_seed = { dtype: "int64", shape: [], data: BigInt64Array.of(5n) };
  const outs = [];
  for (const weights of [quantized, dense]) {
    const graph = compileGradStep(causalLMForward({ config: base.config, weights, lora: modules, loraDropout, gradientCheckpointing }), trainable);
    const ops = new Set(graph.nodes.map((n) => n.op));
    if (weights === quantized) assert.ok(ops.has(quant.type === "nf4" || quant.type === "fp4" ? "MatMulBnb4" : "MatMulNBits"), `kernel in ${[...ops]}`);
    const session = await sessionForGraph(graph, { device });
    outs.push(await session.run(batch));
    await session.release();
  }
  const [lq, ld] = outs.map((o) => o[names.lossSum].data[0] as number);
  assert.ok(Math.abs(lq - ld) <= 2e-5 * Math.abs(ld), `${quant.type} ${device}: loss ${lq} vs dequantised float32 ${ld}`);
  for (const t of trainable) {
    const [a, b] = outs.map((o) => o[names.grad(t.name)].data as Float32Array);
    const scale = Math.max(...b.map(Math.abs));
    assert.ok(scale > 0, `${t.name} has a gradient`);
    const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    assert.ok(diff <= 2e-4 * scale, `${quant.type} ${device} ${t.name}: max difference ${diff} (scale ${scale})`);
  }
}

for (const quant of CONFIGS) {
  test(`${quant.type} base (block ${quant.blockSize}${quant.doubleQuant ? ", double quantisation" : ""}): loss and LoRA gradients equal the dequantised float32 model's on cpu`, async () => {
    await compare(quant, "cpu", false);
  });
}

const hasVulkan = existsSync("/usr/share/vulkan/icd.d") && readdirSync("/usr/share/vulkan/icd.d").length > 0;

for (const quant of [CONFIGS[0], CONFIGS[2]]) {
  test(`${quant.type} base on webgpu: loss and LoRA gradients equal the dequantised float32 model's`, { skip: hasVulkan ? false : "no Vulkan driver installed" }, async () => {
    await compare(quant, "webgpu", false);
  });
}

test("nf4 base with gradient checkpointing: same loss and gradients as the dequantised float32 model", async () => {
  await compare({ type: "nf4", blockSize: 64, doubleQuant: true }, "cpu", true);
});

for (const quant of [CONFIGS[0], CONFIGS[3]]) {
  test(`DoRA on a ${quant.type} base: loss, LoRA and magnitude gradients equal DoRA on the dequantised float32 model's (with dropout, with checkpointing)`, async () => {
    await compare(quant, "cpu", false, { dora: true });
    await compare(quant, "cpu", false, { dora: true, dropout: 0.2 });
    await compare(quant, "cpu", true, { dora: true, dropout: 0.2 });
  });
}

test("DoRA on an nf4 base on webgpu: same loss and gradients as on the dequantised float32 model", { skip: hasVulkan ? false : "no Vulkan driver installed" }, async () => {
  await compare(CONFIGS[0], "webgpu", false, { dora: true });
});

test("the backward pass and DoRA's weight norm dequantising a few rows at a time give the same gradients (int4 and nf4, chunks of 1024 weights)", async () => {
  const saved = dequantChunk.values;
  dequantChunk.values = 1024; // 16 rows of 64 or 8 of 128 per chunk: every weight of the tiny model takes several
  try {
    await compare({ type: "nf4", blockSize: 64, doubleQuant: true }, "cpu", false);
    await compare({ type: "int4", blockSize: 32, doubleQuant: false }, "cpu", true);
    await compare({ type: "nf4", blockSize: 64, doubleQuant: true }, "cpu", true, { dora: true }); // DoRA's row squares too
  } finally {
    dequantChunk.values = saved;
  }
});

for (const tie of [false, true]) {
  test(`a bfloat16 model's ${tie ? "tied " : ""}vocabulary matrices stay in 16 bits: same loss and gradients, cast a few rows at a time`, async () => {
    const cache = tempDir("tunelab-qlora-cache-");
    const { quantized } = models({ type: "nf4", blockSize: 64, doubleQuant: true }, cache, { dtype: "bfloat16", tieWordEmbeddings: tie });
    const kept = [...quantized.weightFile().tensors].filter(([, s]) => s.dtype === "float16").map(([name]) => name);
    assert.deepEqual(kept.sort(), tie ? ["model.embed_tokens.weight"] : ["lm_head.weight", "model.embed_tokens.weight"]);
    const saved = castChunk.values;
    castChunk.values = 64 * 40; // 40 rows of the 64-wide matrix per cast: the vocabulary takes several chunks
    try {
      await compare({ type: "nf4", blockSize: 64, doubleQuant: true }, "cpu", false, { tiny: { dtype: "bfloat16", tieWordEmbeddings: tie } });
      await compare({ type: "nf4", blockSize: 64, doubleQuant: true }, "cpu", true, { tiny: { dtype: "bfloat16", tieWordEmbeddings: tie } });
    } finally {
      castChunk.values = saved;
    }
  });
}

test("a vocabulary matrix with a value beyond float16's range stays float32 in a quantised base", () => {
  const dir = tempDir("tunelab-qlora-");
  createTinyModel({ arch: "llama", out: dir, seed: 4, numLayers: 1, dtype: "bfloat16" });
  const source = openWeights(dir);
  const tensors: Record<string, { dtype: "BF16"; shape: number[]; data: Uint16Array }> = {};
  for (const name of source.names()) {
    const t = source.read(name);
    tensors[name] = { dtype: "BF16", shape: t.shape, data: Uint16Array.from(t.data as Uint16Array) };
  }
  tensors["lm_head.weight"].data[5] = float32ToBf16Bits([1e6])[0];
  writeSafetensors(path.join(dir, "model.safetensors"), tensors);
  const file = new FrozenWeights(openWeights(dir), "float32", tempDir("tunelab-qlora-cache-"), { type: "nf4", blockSize: 64, doubleQuant: true }).weightFile();
  assert.equal(file.tensors.get("lm_head.weight")!.dtype, undefined);
  assert.equal(file.tensors.get("model.embed_tokens.weight")!.dtype, "float16");
});

test("a quantised cache entry is published whole and reused; other settings get another entry", () => {
  const cache = tempDir("tunelab-qlora-cache-");
  const dir = tempDir("tunelab-qlora-");
  createTinyModel({ arch: "llama", out: dir, seed: 4, numLayers: 1 });
  const quant: QuantConfig = { type: "nf4", blockSize: 64, doubleQuant: true };
  const first = new FrozenWeights(openWeights(dir), "float32", cache, quant).weightFile();
  const again = new FrozenWeights(openWeights(dir), "float32", cache, quant).weightFile();
  assert.equal(again.file, first.file);
  const other = new FrozenWeights(openWeights(dir), "float32", cache, { ...quant, doubleQuant: false }).weightFile();
  assert.notEqual(other.file, first.file);
  const entries = fs.readdirSync(path.join(cache, "weights"));
  assert.equal(entries.length, 2, `entries: ${entries}`);
  assert.ok(!entries.some((e) => e.includes(".tmp-")), "no temporary folder is left");
  // 4 bits per weight plus one byte per 64 weights (double-quantised scales) instead of 32 bits.
  const q = first.quantized.get("model.layers.0.mlp.down_proj.weight")!;
  assert.equal(q.codes.length, (q.n * q.k) / 2);
});

test("a block size that does not divide a linear's input features is refused naming the tensor", () => {
  const cache = tempDir("tunelab-qlora-cache-");
  const dir = tempDir("tunelab-qlora-");
  createTinyModel({ arch: "llama", out: dir, seed: 4, numLayers: 1, hiddenSize: 48, numHeads: 4, numKvHeads: 2 });
  assert.throws(
    () => new FrozenWeights(openWeights(dir), "float32", cache, { type: "nf4", blockSize: 64, doubleQuant: false }).weightFile(),
    /"model\.layers\.0\.mlp\.down_proj\.weight" has 96 input features, not a multiple of the quantization block size 64/,
  );
});
