/**
 * Model presets against the published files: config values, weight file names, shard counts and total bytes,
 * written out here independently of sdk/io/presets.ts from the Hugging Face listings and configs the presets
 * cite. Also the streaming writer's sharding on small tensors, and that the weights depend on the seed only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { expectedWeights, parseModelConfig } from "../../sdk/io/config";
import { presetTokenizer } from "../../sdk/io/preset-tokenizers";
import { PRESET_NAMES, PRESETS, presetConfig, presetTensors, presetWeightFill } from "../../sdk/io/presets";
import { openWeights, ShardedSafetensors, SHARD_INDEX_NAME } from "../../sdk/io/safetensors";
import { planShards, tensorByteLength, writeModelStream, type StreamFill, type StreamTensor } from "../../sdk/io/safetensors-writer";
import { tempDir } from "./tmp";

type Published = {
  arch: string;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  maxPos: number;
  theta: number;
  scaling: Record<string, unknown> | null;
  tie: boolean;
  eps: number;
  bos: number;
  eos: number | number[];
  window: number | null;
  windowLayers: number | null;
  /** Weight file names as listed on the repository page. */
  files: string[];
  /** Published file sizes in GB (as the listing rounds them). */
  gb: number[];
};

const qwen = "Qwen2ForCausalLM";
const llama = "LlamaForCausalLM";
const llama3 = (factor: number) => ({ factor, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" });

const PUBLISHED: Record<string, Published> = {
  "deepseek-r1-distill-qwen-1.5b": {
    arch: qwen,
    hidden: 1536,
    intermediate: 8960,
    layers: 28,
    heads: 12,
    kvHeads: 2,
    vocab: 151936,
    maxPos: 131072,
    theta: 10000,
    scaling: null,
    tie: false,
    eps: 1e-6,
    bos: 151643,
    eos: 151643,
    window: 4096,
    windowLayers: 21,
    files: ["model.safetensors"],
    gb: [3.55],
  },
  "deepseek-r1-distill-qwen-7b": {
    arch: qwen,
    hidden: 3584,
    intermediate: 18944,
    layers: 28,
    heads: 28,
    kvHeads: 4,
    vocab: 152064,
    maxPos: 131072,
    theta: 10000,
    scaling: null,
    tie: false,
    eps: 1e-6,
    bos: 151643,
    eos: 151643,
    window: 4096,
    windowLayers: 28,
    files: ["model-00001-of-000002.safetensors", "model-00002-of-000002.safetensors"],
    gb: [8.61, 6.62],
  },
  "deepseek-r1-distill-qwen-14b": {
    arch: qwen,
    hidden: 5120,
    intermediate: 13824,
    layers: 48,
    heads: 40,
    kvHeads: 8,
    vocab: 152064,
    maxPos: 131072,
    theta: 1000000,
    scaling: null,
    tie: false,
    eps: 1e-5,
    bos: 151643,
    eos: 151643,
    window: 131072,
    windowLayers: 48,
    files: [1, 2, 3, 4].map((k) => `model-0000${k}-of-000004.safetensors`),
    gb: [8.71, 8.67, 8.67, 3.49],
  },
  "deepseek-r1-distill-llama-8b": {
    arch: llama,
    hidden: 4096,
    intermediate: 14336,
    layers: 32,
    heads: 32,
    kvHeads: 8,
    vocab: 128256,
    maxPos: 131072,
    theta: 500000,
    scaling: llama3(8.0),
    tie: false,
    eps: 1e-5,
    bos: 128000,
    eos: 128001,
    window: null,
    windowLayers: null,
    files: ["model-00001-of-000002.safetensors", "model-00002-of-000002.safetensors"],
    gb: [8.67, 7.39],
  },
  "qwen2.5-0.5b-instruct": {
    arch: qwen,
    hidden: 896,
    intermediate: 4864,
    layers: 24,
    heads: 14,
    kvHeads: 2,
    vocab: 151936,
    maxPos: 32768,
    theta: 1000000,
    scaling: null,
    tie: true,
    eps: 1e-6,
    bos: 151643,
    eos: 151645,
    window: 32768,
    windowLayers: 21,
    files: ["model.safetensors"],
    gb: [0.988],
  },
  "llama-3.2-1b-instruct": {
    arch: llama,
    hidden: 2048,
    intermediate: 8192,
    layers: 16,
    heads: 32,
    kvHeads: 8,
    vocab: 128256,
    maxPos: 131072,
    theta: 500000,
    scaling: llama3(32.0),
    tie: true,
    eps: 1e-5,
    bos: 128000,
    eos: [128001, 128008, 128009],
    window: null,
    windowLayers: null,
    files: ["model.safetensors"],
    gb: [2.47],
  },
};

test("the presets are exactly the published models, no more and no fewer", () => {
  assert.deepEqual([...PRESET_NAMES].sort(), Object.keys(PUBLISHED).sort());
});

for (const [name, p] of Object.entries(PUBLISHED)) {
  test(`${name}: config.json values are the published ones`, () => {
    const c = PRESETS[name as keyof typeof PRESETS].config as Record<string, unknown>;
    assert.deepEqual(c.architectures, [p.arch]);
    assert.equal(c.model_type, p.arch === qwen ? "qwen2" : "llama");
    const got = {
      hidden: c.hidden_size,
      intermediate: c.intermediate_size,
      layers: c.num_hidden_layers,
      heads: c.num_attention_heads,
      kvHeads: c.num_key_value_heads,
      vocab: c.vocab_size,
      maxPos: c.max_position_embeddings,
      theta: c.rope_theta,
      scaling: c.rope_scaling ?? null,
      tie: c.tie_word_embeddings,
      eps: c.rms_norm_eps,
      bos: c.bos_token_id,
      eos: c.eos_token_id,
      window: c.sliding_window ?? null,
      windowLayers: c.max_window_layers ?? null,
    };
    const { files: _f, gb: _g, arch: _a, ...want } = p;
    assert.deepEqual(got, want);
    assert.equal(c.torch_dtype, "bfloat16");
    assert.equal(c.hidden_act, "silu");
    if (p.arch === qwen) assert.equal(c.use_sliding_window, false);
    // tunelab reads it as transformers does.
    const parsed = parseModelConfig({ ...c });
    assert.equal(parsed.headDim, p.hidden / p.heads);
    assert.equal(parsed.slidingWindow, null);
  });

  test(`${name}: weight files, shard sizes and total bytes as published`, () => {
    const preset = PRESETS[name as keyof typeof PRESETS];
    const tensors = presetTensors(name as keyof typeof PRESETS);
    const plan = planShards(tensors, preset.layout);
    assert.deepEqual(
      plan.map((s) => s.file),
      p.files,
    );
    const sizes = plan.map((s) => s.tensors.reduce((a, t) => a + tensorByteLength(t), 0) / 1e9);
    // The listing rounds to 3 significant digits; a different split would miss by a whole tensor (>= 0.1 GB).
    sizes.forEach((gb, i) => assert.ok(Math.abs(gb - p.gb[i]) < 0.006, `${p.files[i]}: ${gb.toFixed(3)} GB, published ${p.gb[i]} GB`));
    const expected = expectedWeights(presetConfig(name as keyof typeof PRESETS));
    assert.deepEqual(tensors.map((t) => t.name).sort(), [...expected.keys()].sort());
    assert.ok(tensors.every((t) => t.dtype === "BF16"));
  });
}

test("the 7B preset's total_size is Qwen2-7B's published 15231233024 bytes", () => {
  const total = presetTensors("deepseek-r1-distill-qwen-7b").reduce((a, t) => a + tensorByteLength(t), 0);
  assert.equal(total, 15231233024);
});

test("preset tokenizers: R1 distills keep DeepSeek's special ids, Qwen2.5 its chatml ids, Llama 3's ids are real", () => {
  const r1 = presetTokenizer("r1-distill-qwen");
  const added = new Map((r1.tokenizerJson.added_tokens as { id: number; content: string }[]).map((t) => [t.content, t.id]));
  assert.equal(added.get("<｜begin▁of▁sentence｜>"), 151646);
  assert.equal(added.get("<｜end▁of▁sentence｜>"), 151643);
  assert.equal(added.get("<think>"), 151648);
  assert.equal(added.get("</think>"), 151649);
  assert.match(String(r1.tokenizerConfig.chat_template), /<｜Assistant｜><think>\\n/);
  const q = presetTokenizer("qwen2.5");
  assert.equal(q.vocabSize, 151665);
  assert.equal(q.eosTokenIds[0], 151645);
  const l = presetTokenizer("llama3-byte");
  assert.equal(l.bosTokenId, 128000);
  assert.ok(l.eosTokenIds.includes(128009));
});

test("preset weights depend on the seed and the tensor name only, not on how they are chunked", () => {
  const t: StreamTensor = { name: "model.layers.0.mlp.up_proj.weight", dtype: "BF16", shape: [64, 32] };
  const whole = new Uint8Array(4096);
  presetWeightFill(7)(t, 0, whole);
  const parts = new Uint8Array(4096);
  const fill = presetWeightFill(7);
  fill(t, 0, parts.subarray(0, 1000));
  fill(t, 1000, parts.subarray(1000));
  assert.deepEqual(parts, whole);
  const other = new Uint8Array(4096);
  presetWeightFill(8)(t, 0, other);
  assert.notDeepEqual(other, whole);
  const norm = new Uint8Array(128);
  presetWeightFill(7)({ name: "model.layers.0.input_layernorm.weight", dtype: "BF16", shape: [64] }, 0, norm);
  assert.ok(new Uint16Array(norm.buffer).every((b) => b === 0x3f80));
});

test("writeModelStream shards in order, names shards with the given digits, writes a correct index", () => {
  const dir = tempDir("tunelab-stream-");
  fs.writeFileSync(path.join(dir, "model.safetensors"), "stale");
  const tensors: StreamTensor[] = [0, 1, 2, 3, 4].map((i) => ({ name: `w${i}`, dtype: "F32", shape: [10, 100 + i] }));
  // Tensor i holds i + position, so reading back checks every byte landed where the header says.
  const fill: StreamFill = (t, offset, out) => {
    const v = new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4);
    for (let j = 0; j < v.length; j++) v[j] = Number(t.name.slice(1)) + offset / 4 + j;
  };
  const res = writeModelStream(dir, tensors, fill, { maxShardBytes: 9000, countDigits: 6 });
  assert.deepEqual(res.files, [
    "model-00001-of-000003.safetensors",
    "model-00002-of-000003.safetensors",
    "model-00003-of-000003.safetensors",
    SHARD_INDEX_NAME,
  ]);
  assert.ok(!fs.existsSync(path.join(dir, "model.safetensors")), "the stale single file was removed");
  const index = JSON.parse(fs.readFileSync(path.join(dir, SHARD_INDEX_NAME), "utf8"));
  assert.equal(
    index.metadata.total_size,
    tensors.reduce((a, t) => a + tensorByteLength(t), 0),
  );
  assert.equal(res.totalSize, index.metadata.total_size);
  const w = openWeights(dir);
  try {
    assert.ok(w instanceof ShardedSafetensors);
    for (const t of tensors) {
      const data = w.read(t.name).data as Float32Array;
      assert.equal(data.length, 10 * t.shape[1]);
      assert.equal(data[0], Number(t.name.slice(1)));
      assert.equal(data[data.length - 1], Number(t.name.slice(1)) + data.length - 1);
    }
  } finally {
    w.close();
  }
});
