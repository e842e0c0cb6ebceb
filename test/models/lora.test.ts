import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  checkAdapterAgainstModel,
  isTargeted,
  loadAdapter,
  loraScaling,
  makeLoraConfig,
  parseLoraConfig,
  saveAdapter,
  type Adapter,
  type LoraWeights,
} from "../../sdk/models/lora";
import { SafetensorsFile, writeSafetensors } from "../../sdk/io/safetensors";
import { parseModelConfig } from "../../sdk/io/config";
import { Rng } from "../../sdk/util/random";
import { tempDir } from "../io/tmp";

const tmp = () => tempDir("tunelab-peft-");

function randomLora(rng: Rng, rank: number, inFeatures: number, outFeatures: number): LoraWeights {
  return {
    A: Float32Array.from({ length: rank * inFeatures }, () => rng.normal()),
    B: Float32Array.from({ length: outFeatures * rank }, () => rng.normal()),
    rank,
    inFeatures,
    outFeatures,
  };
}

/** Tiny Qwen2-shaped config: hidden 64, 4 heads of 16, 2 kv heads, intermediate 128, 2 layers. */
const MODEL = parseModelConfig({
  architectures: ["Qwen2ForCausalLM"],
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 261,
});

function sampleAdapter(): Adapter {
  const rng = new Rng(5);
  const config = makeLoraConfig({
    r: 4,
    loraAlpha: 8,
    loraDropout: 0.05,
    targetModules: ["q_proj", "v_proj", "down_proj"],
    taskType: "SEQ_CLS",
    modulesToSave: ["score"],
    baseModelNameOrPath: "models/tiny-qwen2",
  });
  const lora: Record<string, LoraWeights> = {};
  for (let l = 0; l < 2; l++) {
    lora[`model.layers.${l}.self_attn.q_proj`] = randomLora(rng, 4, 64, 64);
    lora[`model.layers.${l}.self_attn.v_proj`] = randomLora(rng, 4, 64, 32);
    lora[`model.layers.${l}.mlp.down_proj`] = randomLora(rng, 4, 128, 64);
  }
  const score = { shape: [3, 64], data: Float32Array.from({ length: 192 }, () => rng.normal()) };
  return { config, lora, modulesToSave: { "score.weight": score } };
}

test("save/load round trip with PEFT's tensor names, shapes and adapter_config.json keys", () => {
  const dir = tmp();
  const adapter = sampleAdapter();
  saveAdapter(dir, adapter);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["adapter_config.json", "adapter_model.safetensors"]);

  const st = SafetensorsFile.open(path.join(dir, "adapter_model.safetensors"));
  const expected = new Map<string, number[]>([["base_model.model.score.weight", [3, 64]]]);
  for (let l = 0; l < 2; l++) {
    expected.set(`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`, [4, 64]);
    expected.set(`base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`, [64, 4]);
    expected.set(`base_model.model.model.layers.${l}.self_attn.v_proj.lora_A.weight`, [4, 64]);
    expected.set(`base_model.model.model.layers.${l}.self_attn.v_proj.lora_B.weight`, [32, 4]);
    expected.set(`base_model.model.model.layers.${l}.mlp.down_proj.lora_A.weight`, [4, 128]);
    expected.set(`base_model.model.model.layers.${l}.mlp.down_proj.lora_B.weight`, [64, 4]);
  }
  assert.deepEqual(new Set(st.names()), new Set(expected.keys()));
  for (const [name, shape] of expected) {
    assert.deepEqual(st.info(name).shape, shape, name);
    assert.equal(st.info(name).dtype, "F32");
  }
  assert.deepEqual(st.metadata, { format: "pt" });
  // Row-major A as PEFT's nn.Linear(in, r).weight: [r, in].
  assert.deepEqual(
    Array.from(st.read("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").data as Float32Array),
    Array.from(adapter.lora["model.layers.1.mlp.down_proj"].A),
  );
  st.close();

  const json = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
  assert.equal(json.peft_type, "LORA");
  assert.equal(json.r, 4);
  assert.equal(json.lora_alpha, 8);
  assert.equal(json.lora_dropout, 0.05);
  assert.deepEqual(json.target_modules, ["q_proj", "v_proj", "down_proj"]);
  assert.equal(json.task_type, "SEQ_CLS");
  assert.deepEqual(json.modules_to_save, ["score"]);
  assert.equal(json.bias, "none");
  assert.equal(json.fan_in_fan_out, false);
  assert.equal(json.use_rslora, false);
  assert.equal(json.use_dora, false);
  assert.equal(json.init_lora_weights, true);
  assert.equal(json.base_model_name_or_path, "models/tiny-qwen2");

  const back = loadAdapter(dir);
  assert.deepEqual(back, adapter);
  checkAdapterAgainstModel(back, MODEL, dir);
});

test("an adapter folder written the way PEFT writes it loads, bf16 weights included", () => {
  const dir = tmp();
  // adapter_config.json as PEFT 0.13 / LLaMA-Factory write it, with keys tunelab does not model.
  const config = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 16,
    lora_dropout: 0.0,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    r: 2,
    rank_pattern: {},
    revision: null,
    target_modules: ["v_proj", "q_proj"],
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: true,
  };
  fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(dir, "adapter_model.safetensors"), {
    "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": { dtype: "BF16", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": { dtype: "BF16", shape: [4, 2], data: Float32Array.from([0.5, 0, 0, 0.25, 0, 0, 1, 1]) },
  }, { format: "pt" });
  const a = loadAdapter(dir);
  assert.equal(a.config.r, 2);
  assert.equal(a.config.useRslora, true);
  assert.equal(a.config.taskType, "CAUSAL_LM");
  assert.deepEqual(a.config.targetModules, ["v_proj", "q_proj"]);
  assert.equal(a.config.extra.megatron_core, "megatron.core");
  assert.equal(loraScaling(a.config, "model.layers.0.self_attn.q_proj"), 16 / Math.sqrt(2));
  const q = a.lora["model.layers.0.self_attn.q_proj"];
  assert.deepEqual([q.rank, q.inFeatures, q.outFeatures], [2, 3, 4]);
  assert.ok(q.A instanceof Float32Array);
  assert.deepEqual(Array.from(q.A), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(q.B), [0.5, 0, 0, 0.25, 0, 0, 1, 1]);
  // Saving again keeps the keys tunelab does not model.
  const out = tmp();
  saveAdapter(out, a);
  const again = JSON.parse(fs.readFileSync(path.join(out, "adapter_config.json"), "utf8"));
  assert.deepEqual(again, { ...config });
});

test("scaling, rank/alpha patterns and target matching follow PEFT", () => {
  const c = makeLoraConfig({ r: 8, loraAlpha: 16, targetModules: ["q_proj", "v_proj"], rankPattern: { "layers.1.self_attn.q_proj": 4 }, alphaPattern: { v_proj: 4 } });
  assert.equal(loraScaling(c, "model.layers.0.self_attn.q_proj"), 2);
  assert.equal(loraScaling(c, "model.layers.1.self_attn.q_proj"), 4); // 16 / 4
  assert.equal(loraScaling(c, "model.layers.0.self_attn.v_proj"), 0.5); // 4 / 8
  assert.equal(isTargeted(c, "model.layers.3.self_attn.q_proj"), true);
  assert.equal(isTargeted(c, "model.layers.3.self_attn.k_proj"), false);
  assert.equal(isTargeted(c, "model.layers.3.self_attn.xq_proj"), false, "a name matches whole path components only");
  const re = makeLoraConfig({ r: 8, targetModules: String.raw`.*layers\.0\..*(q|k)_proj` });
  assert.equal(isTargeted(re, "model.layers.0.self_attn.k_proj"), true);
  assert.equal(isTargeted(re, "model.layers.1.self_attn.k_proj"), false);
  assert.equal(isTargeted(makeLoraConfig({ r: 8, targetModules: "all-linear" }), "model.layers.0.mlp.up_proj"), true);
  // A different rank for one module must be saved and loaded with that rank.
  const dir = tmp();
  const rng = new Rng(1);
  saveAdapter(dir, {
    config: c,
    lora: { "model.layers.1.self_attn.q_proj": randomLora(rng, 4, 8, 8), "model.layers.0.self_attn.q_proj": randomLora(rng, 8, 8, 8) },
    modulesToSave: {},
  });
  assert.equal(loadAdapter(dir).lora["model.layers.1.self_attn.q_proj"].rank, 4);
});

test("saveAdapter refuses inconsistent adapters", () => {
  const dir = tmp();
  const rng = new Rng(2);
  const config = makeLoraConfig({ r: 4, targetModules: ["q_proj"] });
  const save = (lora: Record<string, LoraWeights>, extra: Partial<Adapter> = {}) => () => saveAdapter(dir, { config, lora, modulesToSave: {}, ...extra });
  assert.throws(save({ "model.layers.0.self_attn.k_proj": randomLora(rng, 4, 8, 8) }), /"model.layers.0.self_attn.k_proj": not covered by target_modules/);
  assert.throws(save({ "model.layers.0.self_attn.q_proj": randomLora(rng, 2, 8, 8) }), /rank 2 but the config gives r = 4/);
  const short = { ...randomLora(rng, 4, 8, 8), A: new Float32Array(5) };
  assert.throws(save({ "model.layers.0.self_attn.q_proj": short }), /A must be a Float32Array of rank\*inFeatures = 4\*8 values, got 5/);
  assert.throws(save({ "base_model.model.model.layers.0.self_attn.q_proj": randomLora(rng, 4, 8, 8) }), /plain module path/);
  assert.throws(save({}, { modulesToSave: { "score.weight": { shape: [2, 8], data: new Float32Array(16) } } }), /"score.weight" is not in a module listed in modules_to_save/);
  assert.throws(save({}), /no tensors to save/);
  assert.throws(() => makeLoraConfig({ r: 8, targetModules: ["q_proj"], bias: "all" as "none" }), /"bias" must be "none"/);
  assert.throws(() => makeLoraConfig({ r: 8, targetModules: [] }), /"target_modules" must be a non-empty list/);
  assert.throws(() => makeLoraConfig({ targetModules: ["q_proj"], r: 0 }), /"r" must be a positive integer/);
  assert.throws(() => makeLoraConfig({ r: 8, targetModules: ["q_proj"], loraDropout: 1 }), /"lora_dropout" must be a number in \[0, 1\)/);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test("loadAdapter explains damaged or unsupported adapters", () => {
  const make = (config: Record<string, unknown>, tensors: Record<string, number[]>): string => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: 2, lora_alpha: 4, target_modules: ["q_proj"], ...config }));
    const st: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const [name, shape] of Object.entries(tensors)) st[name] = { dtype: "F32", shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
    if (Object.keys(st).length > 0) writeSafetensors(path.join(dir, "adapter_model.safetensors"), st);
    return dir;
  };
  const p = "base_model.model.model.layers.0.self_attn.q_proj";
  const bad = (dir: string, pattern: RegExp) => assert.throws(() => loadAdapter(dir), pattern);
  bad(make({}, { [`${p}.lora_A.weight`]: [2, 8] }), /q_proj": has lora_A but no lora_B/);
  bad(make({}, { [`${p}.lora_A.weight`]: [4, 8], [`${p}.lora_B.weight`]: [8, 4] }), /rank 4 in the weights but .*adapter_config.json gives r = 2/);
  bad(make({}, { [`${p}.lora_A.weight`]: [2, 8], [`${p}.lora_B.weight`]: [8, 3] }), /B's columns must equal A's rows/);
  bad(make({}, { "base_model.model.score.weight": [2, 8] }), /"base_model.model.score.weight": neither a lora_A\/lora_B weight nor in modules_to_save/);
  bad(make({}, { "model.layers.0.self_attn.q_proj.lora_A.weight": [2, 8] }), /PEFT tensor names start with "base_model.model."/);
  const pair = { [`${p}.lora_A.weight`]: [2, 8], [`${p}.lora_B.weight`]: [8, 2] };
  bad(make({ use_dora: true }, { [`${p}.lora_magnitude_vector`]: [8] }), /q_proj": has a lora_magnitude_vector but no lora_A and lora_B/);
  bad(make({ use_dora: true }, pair), /q_proj" has no lora_magnitude_vector but .*adapter_config.json sets use_dora/);
  bad(make({}, { ...pair, [`${p}.lora_magnitude_vector`]: [8] }), /lora_magnitude_vector \(DoRA\) but .*adapter_config.json does not set use_dora: true/);
  bad(make({ use_dora: true }, { ...pair, [`${p}.lora_magnitude_vector`]: [1, 8] }), /a DoRA magnitude must be 1-D \[out_features\]/);
  bad(make({ use_dora: true }, { ...pair, [`${p}.lora_magnitude_vector`]: [7] }), /lora_magnitude_vector has 7 values but lora_B has 8 rows/);
  bad(make({ use_dora: "yes" }, pair), /"use_dora" must be true or false/);
  bad(make({ peft_type: "IA3" }, {}), /"peft_type" must be "LORA"/);
  bad(make({ fan_in_fan_out: true }, {}), /"fan_in_fan_out" must be false/);
  bad(make({}, {}), /no adapter_model.safetensors/);
  const binOnly = make({}, {});
  fs.writeFileSync(path.join(binOnly, "adapter_model.bin"), "x");
  bad(binOnly, /only adapter_model.bin, a pickle file/);
  bad(tmp(), /not a PEFT adapter folder \(no adapter_config.json\)/);
  assert.throws(() => parseLoraConfig({ peft_type: "LORA", target_modules: ["q"], lora_alpha: "x" }, "a.json"), /a.json: "lora_alpha" must be a positive number/);
});

test("checkAdapterAgainstModel catches adapters made for another model", () => {
  const config = makeLoraConfig({ r: 2, targetModules: "all-linear" });
  const rng = new Rng(3);
  const check = (lora: Record<string, LoraWeights>) => () => checkAdapterAgainstModel({ config, lora, modulesToSave: {} }, MODEL, "ad");
  check({ "model.layers.1.self_attn.k_proj": randomLora(rng, 2, 64, 32) })();
  assert.throws(check({ "model.layers.0.self_attn.k_proj": randomLora(rng, 2, 64, 64) }), /ad: .*k_proj" is 64 -> 64 but the model's layer is 64 -> 32/);
  assert.throws(check({ "model.layers.2.mlp.up_proj": randomLora(rng, 2, 64, 128) }), /is in layer 2 but the model has 2 layers/);
  assert.throws(check({ "lm_head": randomLora(rng, 2, 64, 261) }), /"lm_head" is not a decoder linear layer of a Qwen2ForCausalLM/);
});

test("half-precision adapters save and load (values rounded to the dtype)", () => {
  const dir = tmp();
  const adapter = sampleAdapter();
  saveAdapter(dir, adapter, { dtype: "F16" });
  const st = SafetensorsFile.open(path.join(dir, "adapter_model.safetensors"));
  assert.equal(st.info("base_model.model.score.weight").dtype, "F16");
  st.close();
  const back = loadAdapter(dir);
  const a = adapter.lora["model.layers.0.self_attn.q_proj"].A;
  const b = back.lora["model.layers.0.self_attn.q_proj"].A;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(a[i]) * 2 ** -11 + 2 ** -24, `${a[i]} vs ${b[i]}`);
});
