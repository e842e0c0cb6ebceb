import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { readGenerationConfig, readModelConfig } from "../../sdk/io/config";
import { SafetensorsFile, openWeights, toFloat32 } from "../../sdk/io/safetensors";
import { Tokenizer } from "../../sdk/io/tokenizer";
import { command } from "../../sdk/cli/commands/model";
import { tempDir } from "./tmp";

const root = tempDir("tunelab-tiny-");

/**
 * The tensor names and shapes transformers' LlamaForCausalLM / Qwen2ForCausalLM have for
 * hidden 64, intermediate 128, 2 layers, 4 heads of 16, 2 kv heads, written out by hand.
 */
function hfNames(arch: "llama" | "qwen2", vocab: number, tied: boolean): Map<string, number[]> {
  const m = new Map<string, number[]>([["model.embed_tokens.weight", [vocab, 64]]]);
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}`;
    m.set(`${p}.self_attn.q_proj.weight`, [64, 64]);
    m.set(`${p}.self_attn.k_proj.weight`, [32, 64]);
    m.set(`${p}.self_attn.v_proj.weight`, [32, 64]);
    m.set(`${p}.self_attn.o_proj.weight`, [64, 64]);
    if (arch === "qwen2") {
      m.set(`${p}.self_attn.q_proj.bias`, [64]);
      m.set(`${p}.self_attn.k_proj.bias`, [32]);
      m.set(`${p}.self_attn.v_proj.bias`, [32]);
    }
    m.set(`${p}.mlp.gate_proj.weight`, [128, 64]);
    m.set(`${p}.mlp.up_proj.weight`, [128, 64]);
    m.set(`${p}.mlp.down_proj.weight`, [64, 128]);
    m.set(`${p}.input_layernorm.weight`, [64]);
    m.set(`${p}.post_attention_layernorm.weight`, [64]);
  }
  m.set("model.norm.weight", [64]);
  if (!tied) m.set("lm_head.weight", [vocab, 64]);
  return m;
}

for (const arch of ["llama", "qwen2"] as const) {
  test(`${arch}: createTinyModel writes a folder every reader loads, with HF's exact names and shapes`, () => {
    const out = path.join(root, arch);
    const info = createTinyModel({ arch, out, seed: 42 });
    assert.deepEqual(fs.readdirSync(out).sort(), ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);

    const config = readModelConfig(out);
    assert.equal(config.architecture, arch === "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM");
    assert.equal(config.hiddenSize, 64);
    assert.equal(config.intermediateSize, 128);
    assert.equal(config.numHiddenLayers, 2);
    assert.equal(config.numAttentionHeads, 4);
    assert.equal(config.numKeyValueHeads, 2);
    assert.equal(config.headDim, 16);
    assert.equal(config.torchDtype, "float32");
    assert.equal(config.tieWordEmbeddings, false);
    assert.deepEqual(info.config, config);

    const tok = Tokenizer.fromDir(out);
    assert.equal(config.vocabSize, tok.vocabSize);
    assert.equal(config.vocabSize, arch === "llama" ? 262 : 261);
    assert.deepEqual(config.eosTokenIds, [tok.eosTokenId]);
    assert.equal(config.bosTokenId, tok.bosTokenId ?? null);
    assert.ok(tok.hasChatTemplate);
    const gen = readGenerationConfig(out)!;
    assert.deepEqual(gen.eosTokenIds, tok.eosTokenIds);

    const expected = hfNames(arch, config.vocabSize, false);
    const w = openWeights(out);
    assert.deepEqual(new Set(w.names()), new Set(expected.keys()));
    let total = 0;
    let sumSq = 0;
    for (const [name, shape] of expected) {
      const t = w.read(name);
      assert.deepEqual(t.shape, shape, name);
      assert.equal(t.dtype, "F32", name);
      const v = toFloat32(t);
      if (name.endsWith("norm.weight"))
        assert.ok(
          v.every((x) => x === 1),
          `${name} is ones`,
        );
      else {
        assert.ok(
          v.some((x) => x !== 0),
          `${name} is random`,
        );
        for (const x of v) sumSq += x * x;
        total += v.length;
      }
    }
    const std = Math.sqrt(sumSq / total);
    assert.ok(Math.abs(std - 0.02) < 0.001, `weights have std ${std}, want 0.02`);
    w.close();
  });
}

test("same seed gives the same bytes, another seed other weights; tensors differ from each other", () => {
  const a = createTinyModel({ arch: "qwen2", out: path.join(root, "s1"), seed: 7, hiddenSize: 16, numLayers: 1 });
  createTinyModel({ arch: "qwen2", out: path.join(root, "s2"), seed: 7, hiddenSize: 16, numLayers: 1 });
  createTinyModel({ arch: "qwen2", out: path.join(root, "s3"), seed: 8, hiddenSize: 16, numLayers: 1 });
  const bytes = (d: string) => fs.readFileSync(path.join(root, d, "model.safetensors"));
  assert.deepEqual(bytes("s1"), bytes("s2"));
  assert.notDeepEqual(bytes("s1"), bytes("s3"));
  const w = openWeights(a.dir);
  const q = toFloat32(w.read("model.layers.0.self_attn.q_proj.weight"));
  const o = toFloat32(w.read("model.layers.0.self_attn.o_proj.weight"));
  assert.notDeepEqual(Array.from(q), Array.from(o));
  w.close();
});

test("options: tied embeddings, bf16/f16 storage, sizes, llama biases, and bad options", () => {
  const tied = createTinyModel({ arch: "llama", out: path.join(root, "tied"), seed: 1, tieWordEmbeddings: true });
  const w = SafetensorsFile.open(path.join(tied.dir, "model.safetensors"));
  assert.equal(w.has("lm_head.weight"), false);
  assert.equal(readModelConfig(tied.dir).tieWordEmbeddings, true);
  w.close();

  const bf = createTinyModel({
    arch: "qwen2",
    out: path.join(root, "bf16"),
    seed: 1,
    dtype: "bfloat16",
    hiddenSize: 32,
    intermediateSize: 48,
    numHeads: 8,
    numKvHeads: 8,
    numLayers: 3,
  });
  const cfg = readModelConfig(bf.dir);
  assert.equal(cfg.torchDtype, "bfloat16");
  assert.equal(cfg.headDim, 4);
  assert.equal(cfg.numHiddenLayers, 3);
  const wb = openWeights(bf.dir);
  const down = wb.read("model.layers.2.mlp.down_proj.weight");
  assert.equal(down.dtype, "BF16");
  assert.deepEqual(down.shape, [32, 48]);
  assert.deepEqual(wb.read("model.layers.2.self_attn.k_proj.bias").shape, [32]);
  wb.close();

  const f16 = createTinyModel({ arch: "llama", out: path.join(root, "f16"), seed: 1, dtype: "float16", attentionBias: true, mlpBias: true, numLayers: 1 });
  const wf = openWeights(f16.dir);
  assert.equal(wf.info("model.embed_tokens.weight").dtype, "F16");
  for (const n of ["q_proj", "k_proj", "v_proj", "o_proj"]) assert.ok(wf.has(`model.layers.0.self_attn.${n}.bias`), n);
  for (const n of ["gate_proj", "up_proj", "down_proj"]) assert.ok(wf.has(`model.layers.0.mlp.${n}.bias`), n);
  wf.close();

  const o = path.join(root, "bad");
  assert.throws(() => createTinyModel({ arch: "gpt2" as "llama", out: o, seed: 1 }), /arch must be "llama" or "qwen2"/);
  assert.throws(() => createTinyModel({ arch: "llama", out: o, seed: 1, numHeads: 4, numKvHeads: 3 }), /multiple of numKvHeads/);
  assert.throws(() => createTinyModel({ arch: "llama", out: o, seed: 1, hiddenSize: 30, numHeads: 4 }), /divisible by numHeads/);
  assert.throws(() => createTinyModel({ arch: "qwen2", out: o, seed: 1, mlpBias: true }), /Llama options/);
  assert.throws(() => createTinyModel({ arch: "llama", out: o, seed: 1, tokenizer: "gpt2" as "byte" }), /unknown tokenizer "gpt2"/);
  assert.throws(() => createTinyModel({ arch: "llama", out: o, seed: 1.5 }), /seed must be an integer/);
});

test("tunelab model create / info", async () => {
  const out = path.join(root, "cli");
  const lines: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const code = await command.run([
      "create",
      "--arch",
      "qwen2",
      "--out",
      out,
      "--seed",
      "3",
      "--hidden-size",
      "32",
      "--layers",
      "1",
      "--heads",
      "4",
      "--kv-heads",
      "1",
      "--intermediate-size",
      "40",
      "--tie",
    ]);
    assert.equal(code, 0, lines.join("\n"));
    const c = readModelConfig(out);
    assert.deepEqual(
      [c.hiddenSize, c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads, c.intermediateSize, c.tieWordEmbeddings],
      [32, 1, 4, 1, 40, true],
    );
    assert.equal(await command.run(["info", out]), 0);
    const infoJson = JSON.parse(lines.slice(1).join("\n"));
    assert.equal(infoJson.architecture, "Qwen2ForCausalLM");
    assert.equal(infoJson.vocabSize, infoJson.tokenizerVocabSize);
    lines.length = 0;
    assert.equal(await command.run(["create", "--arch", "bert", "--out", out, "--seed", "1"]), 1);
    assert.match(lines.join("\n"), /--arch must be llama or qwen2/);
    assert.equal(await command.run(["create", "--arch", "llama", "--out", out, "--seed", "x"]), 1);
    assert.match(lines.join("\n"), /--seed needs an integer/);
    assert.equal(await command.run(["create", "--arch", "llama", "--out", out, "--seed", "1", "--bogus", "2"]), 1);
    assert.match(lines.join("\n"), /unknown option --bogus/);
    assert.equal(await command.run(["frobnicate"]), 2);
  } finally {
    console.log = log;
    console.error = error;
  }
});
