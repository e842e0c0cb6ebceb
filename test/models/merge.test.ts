import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { SafetensorsFile, toFloat32 } from "../../sdk/io/safetensors";
import { BaseModel, openModel } from "../../sdk/models/model";
import { Adapter, loadAdapter, LoraModule, loraModules, loraNames, LoraState, loraTrainables, makeLoraConfig, saveAdapter } from "../../sdk/models/lora";
import { causalLMForward } from "../../sdk/models/tasks";
import { compileEval, forwardNames as names } from "../../sdk/models/forward";
import type { HostTensor } from "../../sdk/runtime/session";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import { Rng } from "../../sdk/util/random";
import { Generator } from "../../sdk/infer/generate";
import { writeMergedModel } from "../../sdk/models/merge";

const root = fs.mkdtempSync(path.join(tmpdir(), "tunelab-merge-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function tinyModel(name: string, arch: "llama" | "qwen2", dtype: "float32" | "bfloat16" = "float32"): BaseModel {
  const dir = path.join(root, name);
  createTinyModel({ arch, out: dir, seed: 3, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.2, dtype, tieWordEmbeddings: arch === "qwen2" });
  return openModel(dir);
}

/** LoRA on q/v/down only (so some linears stay untouched), with random A and B. */
function randomLora(model: BaseModel, seed: number): LoraState {
  const modules = loraModules(model.config, makeLoraConfig({ r: 4, loraAlpha: 16, targetModules: ["q_proj", "v_proj", "down_proj"] }));
  const rng = new Rng(seed);
  const tensors = new Map(loraTrainables(modules, seed).map((t) => [t.name, t.name.endsWith("lora_B") ? Float32Array.from(t.init, () => rng.normal() * 0.2) : t.init]));
  return { modules, tensors };
}

const batch = {
  ids: [
    [72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100],
    [84, 117, 110, 101, 108, 97, 98, 0, 0, 0, 0, 0],
  ],
  mask: [
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
  ],
};

/** Mean causal-LM loss of `batch` through the eval graph (LoRA tensors fed as parameters when given). */
async function causalLoss(model: BaseModel, modules: readonly LoraModule[], tensors: ReadonlyMap<string, Float32Array>): Promise<number> {
  const trainable = modules.flatMap((m) => {
    const n = loraNames(m.path);
    return [
      { name: n.A, shape: [m.rank, m.inFeatures], init: tensors.get(n.A)! },
      { name: n.B, shape: [m.outFeatures, m.rank], init: tensors.get(n.B)! },
    ];
  });
  const session = await sessionForGraph(compileEval(causalLMForward({ config: model.config, weights: model.weights, lora: modules, loraDropout: 0 }), trainable));
  const int64 = (rows: number[][]) => ({ dtype: "int64" as const, shape: [rows.length, rows[0].length], data: BigInt64Array.from(rows.flat().map(BigInt)) });
  const labels = batch.ids.map((row, r) => row.map((t, i) => (batch.mask[r][i] ? t : -100)));
  const feeds: Record<string, HostTensor> = { input_ids: int64(batch.ids), attention_mask: int64(batch.mask), labels: int64(labels) };
  for (const t of trainable) feeds[names.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
  const out = await session.run(feeds);
  await session.release();
  return Number(out[names.lossSum].data[0]) / Number(out[names.count].data[0]);
}

for (const arch of ["llama", "qwen2"] as const) {
  test(`${arch}: the merged model's loss equals base + adapter, and the folder loads with openModel`, async () => {
    const base = tinyModel(`base-${arch}`, arch);
    const lora = randomLora(base, 8);
    const out = path.join(root, `merged-${arch}`);
    const result = writeMergedModel(base, lora, out);
    assert.equal(result.dir, out);
    assert.equal(result.merged.length, lora.modules.length);

    const merged = openModel(out);
    assert.deepEqual(merged.config, { ...base.config, raw: merged.config.raw });
    const withAdapter = await causalLoss(base, lora.modules, lora.tensors);
    const mergedLoss = await causalLoss(merged, [], new Map());
    const baseLoss = await causalLoss(base, [], new Map());
    assert.ok(Math.abs(mergedLoss - withAdapter) <= 1e-5 * Math.abs(withAdapter), `merged ${mergedLoss} vs base+adapter ${withAdapter}`);
    assert.ok(Math.abs(baseLoss - withAdapter) > 1e-3 * Math.abs(withAdapter), `the adapter does not change the loss (${baseLoss})`);

    // Tokenizer, generation config and config are copied byte for byte; untouched tensors are identical.
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]) {
      assert.ok(result.copied.includes(f), f);
      assert.deepEqual(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(base.dir, f)), f);
    }
    const [a, b] = [SafetensorsFile.open(path.join(base.dir, "model.safetensors")), SafetensorsFile.open(path.join(out, "model.safetensors"))];
    assert.deepEqual(b.names().sort(), a.names().sort());
    for (const name of a.names()) {
      const same = Buffer.from(a.read(name).data.buffer).equals(Buffer.from(b.read(name).data.buffer));
      assert.equal(same, !result.merged.includes(name), name);
    }
    a.close();
    b.close();
    // No temporary folders are left beside the output.
    assert.deepEqual(fs.readdirSync(root).filter((f) => f.startsWith(".")), []);

    // Greedy generation agrees between the merged model and base + adapter.
    const prompt = base.tokenizer.encode("Once upon a time");
    const [g1, g2] = [new Generator(base, { lora }), new Generator(merged)];
    const opts = { doSample: false, maxNewTokens: 12, eosTokenIds: [] };
    assert.deepEqual((await g2.generate(prompt, opts)).tokens, (await g1.generate(prompt, opts)).tokens);
    await Promise.all([g1.release(), g2.release()]);
  });
}

test("a bfloat16 checkpoint stays bfloat16: each merged weight is W + scaling * B @ A rounded once", () => {
  const base = tinyModel("base-bf16", "llama", "bfloat16");
  const lora = randomLora(base, 2);
  const out = path.join(root, "merged-bf16");
  writeMergedModel(base, lora, out);
  const [a, b] = [SafetensorsFile.open(path.join(base.dir, "model.safetensors")), SafetensorsFile.open(path.join(out, "model.safetensors"))];
  const m = lora.modules.find((x) => x.path === "model.layers.1.mlp.down_proj")!;
  const name = `${m.path}.weight`;
  const merged = b.read(name);
  assert.equal(merged.dtype, "BF16");
  const w = toFloat32(a.read(name));
  const got = toFloat32(merged);
  const A = lora.tensors.get(loraNames(m.path).A)!;
  const B = lora.tensors.get(loraNames(m.path).B)!;
  let changed = 0;
  for (let o = 0; o < m.outFeatures; o++) {
    for (let i = 0; i < m.inFeatures; i++) {
      let delta = 0;
      for (let r = 0; r < m.rank; r++) delta += B[o * m.rank + r] * A[r * m.inFeatures + i];
      const want = w[o * m.inFeatures + i] + m.scaling * delta;
      const k = o * m.inFeatures + i;
      // bfloat16 keeps 8 significant bits: within half a unit in the last place (plus float32 noise).
      assert.ok(Math.abs(got[k] - want) <= Math.abs(want) * 2 ** -8 * 1.01 + 1e-30, `[${o}, ${i}]: ${got[k]} vs ${want}`);
      if (got[k] !== w[k]) changed++;
    }
  }
  assert.ok(changed > (m.outFeatures * m.inFeatures) / 2, `only ${changed} values changed`);
  assert.equal(b.read("model.embed_tokens.weight").dtype, "BF16");
  a.close();
  b.close();
});

test("a PEFT adapter folder merges to the same bytes as the trainer's tensors; existing folders need overwrite", () => {
  const base = tinyModel("base-peft", "qwen2");
  const lora = randomLora(base, 5);
  const config = makeLoraConfig({ r: 4, loraAlpha: 16, targetModules: ["q_proj", "v_proj", "down_proj"] });
  const adapter: Adapter = {
    config,
    modulesToSave: {},
    lora: Object.fromEntries(
      lora.modules.map((m) => [m.path, { A: lora.tensors.get(loraNames(m.path).A)!, B: lora.tensors.get(loraNames(m.path).B)!, rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures }]),
    ),
  };
  const adapterDir = path.join(root, "adapter-peft");
  saveAdapter(adapterDir, adapter);
  const fromTensors = path.join(root, "merged-from-tensors");
  const fromPeft = path.join(root, "merged-from-peft");
  writeMergedModel(base, lora, fromTensors);
  writeMergedModel(base, loadAdapter(adapterDir), fromPeft);
  const bytes = (dir: string) => fs.readFileSync(path.join(dir, "model.safetensors"));
  assert.deepEqual(bytes(fromPeft), bytes(fromTensors));

  // An existing folder is refused and left alone; overwrite replaces it whole.
  fs.writeFileSync(path.join(fromPeft, "marker.txt"), "keep");
  assert.throws(() => writeMergedModel(base, lora, fromPeft), /already exists; pass overwrite: true/);
  assert.equal(fs.readFileSync(path.join(fromPeft, "marker.txt"), "utf8"), "keep");
  writeMergedModel(base, lora, fromPeft, { overwrite: true });
  assert.ok(!fs.existsSync(path.join(fromPeft, "marker.txt")));
  assert.deepEqual(bytes(fromPeft), bytes(fromTensors));
  assert.throws(() => writeMergedModel(base, lora, base.dir, { overwrite: true }), /base model's own folder/);

  // A module that is not a layer of this model is refused before anything is written.
  const wrong: LoraState = { modules: [{ ...lora.modules[0], inFeatures: 7 }], tensors: lora.tensors };
  assert.throws(() => writeMergedModel(base, wrong, path.join(root, "never")), /is 7 -> \d+, the model's layer is 32 -> \d+/);
  assert.ok(!fs.existsSync(path.join(root, "never")));
});
