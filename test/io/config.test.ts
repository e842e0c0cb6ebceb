import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  expectedWeights,
  linearFeatures,
  parseGenerationConfig,
  parseModelConfig,
  readGenerationConfig,
  readJsonObject,
  readModelConfig,
} from "../../sdk/io/config";
import { tempDir } from "./tmp";

/** The config.json of DeepSeek-R1-Distill-Qwen-1.5B (its published values). */
const R1_QWEN_1_5B = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: "silu",
  hidden_size: 1536,
  initializer_range: 0.02,
  intermediate_size: 8960,
  max_position_embeddings: 131072,
  max_window_layers: 21,
  model_type: "qwen2",
  num_attention_heads: 12,
  num_hidden_layers: 28,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  use_cache: true,
  use_mrope: false,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** A Llama 3.1-style config (DeepSeek-R1-Distill-Llama-8B shape) with llama3 rope scaling and eos list. */
const LLAMA_8B = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  hidden_act: "silu",
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  vocab_size: 128256,
};

test("Qwen2 config: fields, defaults and the always-on q/k/v bias", () => {
  const c = parseModelConfig(R1_QWEN_1_5B);
  assert.equal(c.arch, "qwen2");
  assert.equal(c.architecture, "Qwen2ForCausalLM");
  assert.equal(c.hiddenSize, 1536);
  assert.equal(c.intermediateSize, 8960);
  assert.equal(c.numHiddenLayers, 28);
  assert.equal(c.numAttentionHeads, 12);
  assert.equal(c.numKeyValueHeads, 2);
  assert.equal(c.headDim, 128); // 1536 / 12
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.vocabSize, 151936);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.qkvBias, true);
  assert.equal(c.oProjBias, false);
  assert.equal(c.mlpBias, false);
  assert.deepEqual(c.eosTokenIds, [151643]);
  assert.equal(c.bosTokenId, 151643);
  assert.equal(c.padTokenId, null);
  assert.equal(c.torchDtype, "bfloat16");
  assert.equal(c.slidingWindow, null, "use_sliding_window is false");
  assert.equal(c.maxPositionEmbeddings, 131072);
});

test("Llama config: llama3 rope scaling, eos list, GQA, bias flags", () => {
  const c = parseModelConfig(LLAMA_8B);
  assert.equal(c.arch, "llama");
  assert.equal(c.headDim, 128);
  assert.equal(c.numKeyValueHeads, 8);
  assert.deepEqual(c.ropeScaling, {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  });
  assert.deepEqual(c.eosTokenIds, [128001, 128008, 128009]);
  assert.equal(c.qkvBias, false);
  const biased = parseModelConfig({ ...LLAMA_8B, attention_bias: true, mlp_bias: true });
  assert.equal(biased.qkvBias, true);
  assert.equal(biased.oProjBias, true);
  assert.equal(biased.mlpBias, true);
  assert.deepEqual(linearFeatures(c, "k_proj"), { inFeatures: 4096, outFeatures: 1024 });
  assert.deepEqual(linearFeatures(c, "down_proj"), { inFeatures: 14336, outFeatures: 4096 });
});

test("defaults: kv heads = heads, head_dim = hidden/heads, explicit head_dim wins", () => {
  const minimal = {
    architectures: ["LlamaForCausalLM"],
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 100,
  };
  const c = parseModelConfig(minimal);
  assert.equal(c.numKeyValueHeads, 4);
  assert.equal(c.headDim, 16);
  assert.equal(c.ropeTheta, 10000);
  assert.deepEqual(c.eosTokenIds, []);
  assert.equal(parseModelConfig({ ...minimal, head_dim: 32 }).headDim, 32);
  assert.deepEqual(parseModelConfig({ ...minimal, rope_scaling: { type: "linear", factor: 2 } }).ropeScaling, { rope_type: "linear", factor: 2 });
  assert.deepEqual(parseModelConfig({ ...minimal, rope_scaling: { rope_type: "dynamic", factor: 2 } }).ropeScaling, { rope_type: "dynamic", factor: 2 });
  assert.deepEqual(
    parseModelConfig({ ...minimal, rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 32768, beta_fast: 32 } }).ropeScaling,
    { rope_type: "yarn", factor: 4, original_max_position_embeddings: 32768, beta_fast: 32 },
  );
  assert.equal(parseModelConfig({ ...minimal, rope_scaling: { rope_type: "default" } }).ropeScaling, null);
  // Tied: no lm_head in the expected weights.
  const tied = expectedWeights(parseModelConfig({ ...minimal, tie_word_embeddings: true }));
  assert.equal(tied.has("lm_head.weight"), false);
  assert.deepEqual(tied.get("model.layers.1.self_attn.o_proj.weight"), [64, 64]);
});

test("bad config.json gives errors naming the file and the key", () => {
  const dir = tempDir("tunelab-cfg-");
  const file = path.join(dir, "config.json");
  const expectError = (obj: unknown, pattern: RegExp) => {
    fs.writeFileSync(file, typeof obj === "string" ? obj : JSON.stringify(obj));
    assert.throws(
      () => readModelConfig(dir),
      (err: Error) => {
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, pattern);
        return true;
      },
    );
  };
  const { hidden_size: _h, ...noHidden } = R1_QWEN_1_5B;
  expectError(noHidden, /missing required key "hidden_size"/);
  expectError({ ...R1_QWEN_1_5B, num_hidden_layers: "28" }, /"num_hidden_layers" must be an integer >= 1, got "28"/);
  expectError({ ...R1_QWEN_1_5B, num_attention_heads: 0 }, /"num_attention_heads" must be an integer >= 1/);
  expectError({ ...R1_QWEN_1_5B, num_key_value_heads: 5 }, /must be a multiple of "num_key_value_heads" \(5\)/);
  expectError({ ...R1_QWEN_1_5B, architectures: ["GPT2LMHeadModel"] }, /architecture "GPT2LMHeadModel" is not supported/);
  expectError({ ...R1_QWEN_1_5B, architectures: [] }, /"architectures" must be a non-empty list/);
  expectError({ ...R1_QWEN_1_5B, rms_norm_eps: -1 }, /"rms_norm_eps" must be a positive number/);
  expectError({ ...R1_QWEN_1_5B, tie_word_embeddings: "yes" }, /"tie_word_embeddings" must be true or false/);
  expectError({ ...R1_QWEN_1_5B, eos_token_id: ["x"] }, /"eos_token_id" must be a token id or a list of token ids/);
  expectError({ ...R1_QWEN_1_5B, hidden_act: "gelu" }, /"hidden_act" "gelu" is not supported/);
  expectError({ ...LLAMA_8B, rope_scaling: { rope_type: "llama3", factor: 8 } }, /rope_scaling: missing required key "low_freq_factor"/);
  expectError({ ...LLAMA_8B, rope_scaling: { rope_type: "longrope", factor: 8 } }, /rope_type "longrope" is not supported/);
  expectError({ ...R1_QWEN_1_5B, hidden_size: 1537, head_dim: undefined }, /not divisible by "num_attention_heads"/);
  expectError("{ nope", /not valid JSON/);
  expectError("[1]", /expected a JSON object/);
  fs.rmSync(file);
  assert.throws(
    () => readModelConfig(dir),
    (err: Error) => err.message.includes(file) && /cannot read/.test(err.message),
  );
});

test("generation_config.json: sampling fields, eos lists, absent file, bad values", () => {
  const g = parseGenerationConfig({
    bos_token_id: 151646,
    eos_token_id: 151643,
    do_sample: true,
    temperature: 0.6,
    top_p: 0.95,
    top_k: 20,
    repetition_penalty: 1.1,
    max_new_tokens: 512,
    transformers_version: "4.44.0",
  });
  assert.equal(g.temperature, 0.6);
  assert.equal(g.topP, 0.95);
  assert.equal(g.topK, 20);
  assert.equal(g.repetitionPenalty, 1.1);
  assert.equal(g.maxNewTokens, 512);
  assert.equal(g.doSample, true);
  assert.equal(g.bosTokenId, 151646);
  assert.deepEqual(g.eosTokenIds, [151643]);
  assert.deepEqual(parseGenerationConfig({ eos_token_id: [1, 2] }).eosTokenIds, [1, 2]);
  const empty = parseGenerationConfig({});
  assert.equal(empty.temperature, undefined);
  assert.equal(empty.doSample, undefined);
  assert.throws(() => parseGenerationConfig({ top_p: 1.5 }, "g.json"), /g.json: "top_p" must be in \[0, 1\]/);
  assert.throws(() => parseGenerationConfig({ temperature: "hot" }, "g.json"), /g.json: "temperature" must be a number/);
  assert.throws(() => parseGenerationConfig({ max_new_tokens: 0 }, "g.json"), /g.json: "max_new_tokens" must be an integer >= 1/);
  const dir = tempDir("tunelab-gen-");
  assert.equal(readGenerationConfig(dir), null);
  fs.writeFileSync(path.join(dir, "generation_config.json"), JSON.stringify({ temperature: 0.7 }));
  assert.equal(readGenerationConfig(dir)!.temperature, 0.7);
});

test("readJsonObject: a BOM is dropped; invalid UTF-8 and very deep nesting are errors naming the file", () => {
  const dir = tempDir();
  const file = path.join(dir, "x.json");
  fs.writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a": 1}')]));
  assert.deepEqual(readJsonObject(file), { a: 1 });
  fs.writeFileSync(file, Buffer.concat([Buffer.from('{"a": "'), Buffer.from([0xff]), Buffer.from('"}')]));
  assert.throws(() => readJsonObject(file), /x\.json: not valid UTF-8 \(at byte 7\)/);
  fs.writeFileSync(file, `{"a": ${"[".repeat(5000)}${"]".repeat(5000)}, "b": "[[["}`);
  assert.throws(() => readJsonObject(file), /x\.json: JSON nested 5001 levels deep, more than the 1000 accepted/);
  fs.writeFileSync(file, `{"a": ${"[".repeat(999)}${"]".repeat(999)}, "b": "[[[[\\"["}`);
  assert.equal(Object.keys(readJsonObject(file)).length, 2);
});
