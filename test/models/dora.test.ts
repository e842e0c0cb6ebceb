/**
 * DoRA (PEFT's use_dora): the in-graph term and its gradients against central differences in float64 (the weight
 * norm held constant, as PEFT detaches it), the forward against PEFT's formulas computed here on the host (with and
 * without dropout), loss and gradients of a whole model against an independent PyTorch implementation, PEFT's
 * initialisation, the adapter files, merging, generation, and a short training run that learns and resumes exactly.
 */
import { after, test } from "node:test";
import { existsSync, readdirSync } from "node:fs";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Builder, gradients, toOnnx, type Value } from "../../sdk/graph";
import { createTinyModel } from "../../sdk/io/tiny";
import { SafetensorsFile, toFloat32 } from "../../sdk/io/safetensors";
import { BaseModel, openModel } from "../../sdk/models/model";
import {
  adapterTrainables,
  doraDelta,
  doraRowNorms,
  doraWeightNorm,
  hashKeepMask,
  loadAdapter,
  loraConfigOf,
  type LinearParts,
  type LoraModule,
  loraModules,
  loraNames,
  loraTrainables,
  makeLoraConfig,
  mergeDoraInto,
  saveAdapter,
  type Adapter,
  type LoraWeights,
} from "../../sdk/models/lora";
import { causalLMForward } from "../../sdk/models/tasks";
import { compileEval, forwardNames, type InitializedTrainable } from "../../sdk/models/forward";
import { writeMergedModel } from "../../sdk/models/merge";
import { Generator } from "../../sdk/infer/generate";
import { compileGradStep, names } from "../../sdk/train/step";
import { resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { train, type TrainResult } from "../../sdk/train/trainer";
import { HostTensor, Session } from "../../sdk/runtime/session";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import { Rng } from "../../sdk/util/random";
import { ds } from "../../sdk";
import { gradCheck } from "../graph/gradcheck";
import { PYTHON, pythonHas } from "../util/python";

const repo = path.join(__dirname, "../../..");
const root = fs.mkdtempSync(path.join(tmpdir(), "tunelab-dora-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

// ---- the DoRA term on one layer --------------------------------------------------------------------------------

const [N, IN, OUT, R, SCALING] = [5, 6, 4, 2, 1.5];
const layerModule: LoraModule = { path: "layer", rank: R, scaling: SCALING, inFeatures: IN, outFeatures: OUT, dora: true };

/** What DoRA needs of a dense weight W [out, in] given as a graph value. */
function dense(b: Builder, w: Value): Pick<LinearParts, "multiply" | "rowSquares"> {
  return { multiply: (v) => b.linear(v, w), rowSquares: () => b.reduceSumSquare(w, [1]) };
}

/** Random data of one layer: x [N, IN], W [OUT, IN], bias [OUT], A [R, IN], B [OUT, R], magnitude [OUT]. */
function layerData(seed: number) {
  const rng = new Rng(seed);
  const normal = (n: number, scale = 1) => Array.from({ length: n }, () => rng.normal() * scale);
  return { x: normal(N * IN), w: normal(OUT * IN), bias: normal(OUT), a: normal(R * IN, 0.5), b: normal(OUT * R, 0.5), m: normal(OUT).map((v) => 2 + 0.5 * v) };
}

for (const [label, p, withBias] of [
  ["without dropout, with a bias", 0, true],
  ["without dropout or bias", 0, false],
  ["with dropout 0.3 (base output recomputed on the dropped-out input)", 0.3, true],
] as const) {
  test(`DoRA term ${label}: gradients of x, A, B and the magnitude match central differences with the norm held constant`, async () => {
    const d = layerData(7);
    // A and B enter twice: differentiated in the term, and as constant copies (same values) in the weight norm. A finite
    // difference then moves A and B everywhere but in the norm, which is exactly the gradient PEFT's detach gives.
    await gradCheck({
      op: `dora ${label}`,
      seed: 3,
      inputs: [
        { name: "x", shape: [N, IN], data: d.x },
        { name: "w", shape: [OUT, IN], data: d.w, wrt: false },
        { name: "bias", shape: [OUT], data: d.bias, wrt: false },
        { name: "a", shape: [R, IN], data: d.a },
        { name: "b", shape: [OUT, R], data: d.b },
        { name: "m", shape: [OUT], data: d.m },
        { name: "a_norm", shape: [R, IN], data: d.a, wrt: false },
        { name: "b_norm", shape: [OUT, R], data: d.b, wrt: false },
        { name: "seed", shape: [], dtype: "int64", data: [11] },
      ],
      build: (b, [x, w, bias, a, bm, m, a0, b0, seed]) => {
        const y = b.linear(x, w, withBias ? bias : null);
        const norm = doraWeightNorm(b, dense(b, w), a0, b0, SCALING);
        const dropout = p > 0 ? { p, seed } : null;
        return b.add(y, doraDelta(b, { x, y, bias: withBias ? bias : null, ...dense(b, w) }, a, bm, m, layerModule, dropout, 5, norm));
      },
    });
  });
}

/** Runs a float64 graph once on the CPU provider. */
async function runOnce(b: Builder, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const session = await Session.create(toOnnx(b.graph), { device: "cpu", threads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

const f64 = (shape: number[], data: readonly number[]): HostTensor => ({ dtype: "float64", shape, data: Float64Array.from(data) });

test("the weight norm is detached: gradients with the norm taken from the trained A and B equal those with constant copies", async () => {
  const d = layerData(8);
  const b = new Builder();
  const input = (name: string, shape: number[]) => b.graph.input(name, "float64", shape);
  const [x, w, a, bm, m, a0, b0] = [input("x", [N, IN]), input("w", [OUT, IN]), input("a", [R, IN]), input("b", [OUT, R]), input("m", [OUT]), input("a0", [R, IN]), input("b0", [OUT, R])];
  const r = input("r", [N, OUT]);
  const y = b.linear(x, w);
  const layer = { x, y, bias: null, ...dense(b, w) };
  const own = doraDelta(b, layer, a, bm, m, layerModule, null, 1);
  const copies = doraDelta(b, layer, a, bm, m, layerModule, null, 1, doraWeightNorm(b, dense(b, w), a0, b0, SCALING));
  const gOwn = gradients(b, b.sumAll(b.mul(own, r)), [a, bm, m]);
  const gCopies = gradients(b, b.sumAll(b.mul(copies, r)), [a, bm, m]);
  b.graph.output(b.sub(own, copies), "forward_diff");
  gOwn.forEach((g, i) => b.graph.output(b.sub(g, gCopies[i]), `grad_diff_${i}`));
  gOwn.forEach((g, i) => b.graph.output(g, `grad_${i}`));
  const rng = new Rng(4);
  const out = await runOnce(b, {
    x: f64([N, IN], d.x),
    w: f64([OUT, IN], d.w),
    a: f64([R, IN], d.a),
    b: f64([OUT, R], d.b),
    m: f64([OUT], d.m),
    a0: f64([R, IN], d.a),
    b0: f64([OUT, R], d.b),
    r: f64([N, OUT], Array.from({ length: N * OUT }, () => rng.normal())),
  });
  for (const name of ["forward_diff", "grad_diff_0", "grad_diff_1", "grad_diff_2"]) {
    assert.ok(Array.from(out[name].data as Float64Array).every((v) => v === 0), `${name} is not zero`);
  }
  for (const i of [0, 1, 2]) assert.ok((out[`grad_${i}`].data as Float64Array).some((v) => Math.abs(v) > 1e-3), `gradient ${i} is not trivially zero`);
});

/** PEFT's DoRA term computed directly on the host in float64: s = m / ||W + scaling B A||, (s - 1) x' W^T + s scaling x' A^T B^T. */
function hostDora(d: ReturnType<typeof layerData>, keep: ArrayLike<number> | null, p: number): number[] {
  const xin = d.x.map((v, i) => (keep ? (v * keep[i]) / (1 - p) : v));
  const norms = doraRowNorms(Float64Array.from(d.w), Float32Array.from(d.a), Float32Array.from(d.b), R, IN, OUT, SCALING);
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OUT; o++) {
      let base = 0;
      let lora = 0;
      for (let i = 0; i < IN; i++) base += xin[n * IN + i] * d.w[o * IN + i];
      for (let r = 0; r < R; r++) {
        let down = 0;
        for (let i = 0; i < IN; i++) down += xin[n * IN + i] * d.a[r * IN + i];
        lora += down * d.b[o * R + r];
      }
      const s = d.m[o] / norms[o];
      out.push((s - 1) * base + s * SCALING * lora);
    }
  }
  return out;
}

for (const p of [0, 0.4]) {
  test(`the DoRA term equals PEFT's formula computed on the host${p > 0 ? ", with dropout 0.4" : ""}`, async () => {
    const d = layerData(9);
    // float32-exact inputs, so the host's float64 arithmetic sees the very numbers the graph does.
    for (const k of ["a", "b"] as const) d[k] = Array.from(Float32Array.from(d[k]));
    const b = new Builder();
    const x = b.graph.input("x", "float64", [N, IN]);
    const w = b.graph.input("w", "float64", [OUT, IN]);
    const bias = b.graph.input("bias", "float64", [OUT]);
    const [a, bm, m] = [b.graph.input("a", "float64", [R, IN]), b.graph.input("b", "float64", [OUT, R]), b.graph.input("m", "float64", [OUT])];
    const seed = b.graph.input("seed", "int64", []);
    const y = b.linear(x, w, bias);
    const dropout = p > 0 ? { p, seed } : null;
    b.graph.output(doraDelta(b, { x, y, bias, ...dense(b, w) }, a, bm, m, layerModule, dropout, 3), "delta");
    b.graph.output(b.cast(hashKeepMask(b, x, seed, 3, p), "float64"), "keep");
    const out = await runOnce(b, {
      x: f64([N, IN], d.x),
      w: f64([OUT, IN], d.w),
      bias: f64([OUT], d.bias),
      a: f64([R, IN], d.a),
      b: f64([OUT, R], d.b),
      m: f64([OUT], d.m),
      seed: { dtype: "int64", shape: [], data: BigInt64Array.from([21n]) },
    });
    const keep = out.keep.data as Float64Array;
    if (p > 0) assert.ok(keep.some((k) => k === 0) && keep.some((k) => k === 1), "the mask drops some inputs and keeps others");
    const want = hostDora(d, p > 0 ? keep : null, p);
    const got = out.delta.data as Float64Array;
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-12 * (1 + Math.abs(want[i])), `element ${i}: ${got[i]} vs ${want[i]}`);
  });
}

test("doraWeightNorm (never forming B @ A) equals the row norms of W + scaling * B @ A, in float32 too", async () => {
  const rng = new Rng(12);
  const [out, inF, r] = [24, 40, 4];
  const w = Float32Array.from({ length: out * inF }, () => rng.normal() * 0.1);
  const a = Float32Array.from({ length: r * inF }, () => rng.normal() * 0.2);
  const bMat = Float32Array.from({ length: out * r }, () => rng.normal() * 0.2);
  const b = new Builder();
  const [wv, av, bv] = [b.graph.input("w", "float32", [out, inF]), b.graph.input("a", "float32", [r, inF]), b.graph.input("b", "float32", [out, r])];
  b.graph.output(doraWeightNorm(b, dense(b, wv), av, bv, 2), "norm");
  const got = (await runOnce(b, { w: { dtype: "float32", shape: [out, inF], data: w }, a: { dtype: "float32", shape: [r, inF], data: a }, b: { dtype: "float32", shape: [out, r], data: bMat } }))
    .norm.data as Float32Array;
  const want = doraRowNorms(w, a, bMat, r, inF, out, 2);
  for (let o = 0; o < out; o++) assert.ok(Math.abs(got[o] - want[o]) <= 2e-6 * want[o], `row ${o}: ${got[o]} vs ${want[o]}`);
});

// ---- whole models -------------------------------------------------------------------------------------------

function tinyModel(name: string, arch: "llama" | "qwen2", extra: { attentionBias?: boolean; numLayers?: number } = {}): BaseModel {
  const dir = path.join(root, name);
  createTinyModel({ arch, out: dir, seed: 11, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.2, tieWordEmbeddings: arch === "qwen2", ...extra });
  return openModel(dir);
}

const batch = {
  inputIds: [
    [5, 72, 101, 108, 108, 111, 33, 9],
    [5, 84, 117, 110, 101, 0, 0, 0],
  ],
  attentionMask: [
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 0, 0, 0],
  ],
  labels: [
    [-100, -100, 101, 108, 108, 111, 33, 9],
    [-100, 84, 117, 110, 101, -100, -100, -100],
  ],
};
const int64 = (rows: number[][]) => ({ dtype: "int64" as const, shape: [rows.length, rows[0].length], data: BigInt64Array.from(rows.flat().map(BigInt)) });
const batchFeeds = (): Record<string, HostTensor> => ({ input_ids: int64(batch.inputIds), attention_mask: int64(batch.attentionMask), labels: int64(batch.labels) });

/** DoRA trainables as PEFT starts them, then moved away from the start: B random, the magnitude scaled per row. */
function movedDora(model: BaseModel, targets: string[] | "all-linear", seed: number): { modules: LoraModule[]; trainable: InitializedTrainable[] } {
  const modules = loraModules(model.config, makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: targets, useDora: true }));
  const rng = new Rng(seed);
  const trainable = loraTrainables(modules, 3, undefined, model.weights).map((t) => {
    if (t.name.endsWith("lora_B")) return { ...t, init: Float32Array.from(t.init, () => rng.normal() * 0.1) };
    if (t.name.endsWith("lora_magnitude_vector")) return { ...t, init: Float32Array.from(t.init, (v) => v * (1 + 0.2 * rng.normal())) };
    return t;
  });
  return { modules, trainable };
}

/** Mean causal-LM loss of the batch through the eval graph. */
async function meanLoss(model: BaseModel, modules: readonly LoraModule[], trainable: readonly InitializedTrainable[]): Promise<number> {
  const session = await sessionForGraph(compileEval(causalLMForward({ config: model.config, weights: model.weights, lora: modules, loraDropout: 0 }), trainable));
  const feeds = batchFeeds();
  for (const t of trainable) feeds[forwardNames.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
  const out = await session.run(feeds);
  await session.release();
  return Number(out[forwardNames.lossSum].data[0]) / Number(out[forwardNames.count].data[0]);
}

const hasTorch = pythonHas("torch");
for (const [arch, bias] of [
  ["llama", true],
  ["qwen2", true],
] as const) {
  test(
    `${arch}${arch === "llama" ? " with attention biases" : " (q/k/v biases)"}: DoRA loss and gradients of A, B and the magnitude match an independent PyTorch implementation`,
    { skip: hasTorch ? false : "python3-torch is not installed" },
    async () => {
      const model = tinyModel(`ref-${arch}`, arch, arch === "llama" ? { attentionBias: bias } : {});
      const { modules, trainable } = movedDora(model, "all-linear", 5);
      const session = await sessionForGraph(compileGradStep(causalLMForward({ config: model.config, weights: model.weights, lora: modules, loraDropout: 0 }), trainable));
      const feeds = batchFeeds();
      for (const t of trainable) feeds[names.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
      const out = await session.run(feeds);
      await session.release();
      const count = Number(out[names.count].data[0]);
      const loss = Number(out[names.lossSum].data[0]) / count;

      const spec = {
        model: model.dir,
        scaling: modules[0].scaling,
        lora: Object.fromEntries(trainable.map((t) => [t.name, t.shape.length === 1 ? Array.from(t.init) : chunk(Array.from(t.init), t.shape[1])])),
        input_ids: batch.inputIds,
        attention_mask: batch.attentionMask,
        labels: batch.labels,
      };
      const ref = JSON.parse(execFileSync(PYTHON, [path.join(repo, "test/models/reference.py")], { input: JSON.stringify(spec), encoding: "utf8" }));
      assert.ok(Math.abs(loss - ref.loss) < 1e-5 * Math.abs(ref.loss), `loss ${loss} vs reference ${ref.loss}`);
      let worst = 0;
      for (const t of trainable) {
        const got = out[names.grad(t.name)].data as Float32Array;
        const want: number[] = ref.grads[t.name];
        assert.equal(got.length, want.length, t.name);
        const scale = Math.max(...want.map(Math.abs));
        assert.ok(scale > 0, `${t.name}: reference gradient is all zero`);
        for (let i = 0; i < want.length; i++) {
          const err = Math.abs(got[i] / count - want[i]) / scale;
          worst = Math.max(worst, err);
          assert.ok(err < 2e-4, `${t.name}[${i}]: ${got[i] / count} vs reference ${want[i]}`);
        }
      }
      assert.ok(trainable.some((t) => t.name.endsWith("lora_magnitude_vector")));
      console.log(`${arch} DoRA: loss ${loss.toFixed(6)} (ref ${ref.loss.toFixed(6)}), worst relative gradient error ${worst.toExponential(2)}`);
    },
  );
}

function chunk(values: number[], cols: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < values.length; i += cols) rows.push(values.slice(i, i + cols));
  return rows;
}

test("PEFT's initialisation: magnitude = row norms of the base weight, A as LoRA's, and the model starts as the base model", async () => {
  const model = tinyModel("init", "qwen2");
  const lora = makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear" });
  const dora = { ...lora, useDora: true };
  const plain = loraTrainables(loraModules(model.config, lora), 9);
  const doraModules = loraModules(model.config, dora);
  assert.ok(doraModules.every((m) => m.dora === true));
  const withDora = loraTrainables(doraModules, 9, undefined, model.weights);
  assert.equal(withDora.length, plain.length * 1.5);
  for (const t of plain) assert.deepEqual(withDora.find((u) => u.name === t.name)!.init, t.init, t.name);
  for (const m of doraModules) {
    const w = model.weights.get(`${m.path}.weight`);
    const mag = withDora.find((t) => t.name === loraNames(m.path).magnitude)!;
    assert.deepEqual(mag.shape, [m.outFeatures]);
    for (let o = 0; o < m.outFeatures; o++) {
      let sum = 0;
      for (let i = 0; i < m.inFeatures; i++) sum += w.data[o * m.inFeatures + i] ** 2;
      assert.ok(Math.abs(mag.init[o] - Math.sqrt(sum)) <= 1e-6 * Math.sqrt(sum), `${m.path} row ${o}`);
    }
  }
  assert.throws(() => loraTrainables(doraModules, 9), /needs the model's weights/);
  const [base, start] = [await meanLoss(model, [], []), await meanLoss(model, doraModules, withDora)];
  assert.ok(Math.abs(start - base) <= 1e-6 * base, `DoRA at init ${start} vs base ${base}`);
});

test("a DoRA adapter saves with PEFT's names, loads back, merges into the base and generates the same as base + adapter", async () => {
  const model = tinyModel("adapter", "llama", { attentionBias: true });
  const targets = ["q_proj", "v_proj", "o_proj", "down_proj"];
  const { modules, trainable } = movedDora(model, targets, 6);
  const config = loraConfigOf({ lora_rank: 4, lora_alpha: 8, lora_dropout: 0, lora_target: targets.join(","), use_rslora: false, use_dora: true, model_name_or_path: model.dir }, null);
  const value = (name: string) => trainable.find((t) => t.name === name)!.init;
  const lora: Record<string, LoraWeights> = {};
  for (const m of modules) {
    const n = loraNames(m.path);
    lora[m.path] = { A: value(n.A), B: value(n.B), magnitude: value(n.magnitude), rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures };
  }
  const adapter: Adapter = { config, lora, modulesToSave: {} };
  const dir = path.join(root, "adapter-out");
  saveAdapter(dir, adapter);

  // The files as PEFT writes them: use_dora in the config, one 1-D lora_magnitude_vector per module.
  const json = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
  assert.equal(json.use_dora, true);
  const file = SafetensorsFile.open(path.join(dir, "adapter_model.safetensors"));
  const key = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector";
  assert.ok(file.names().includes(key), `${key} in ${file.names().join(", ")}`);
  assert.equal(file.names().filter((k) => k.endsWith(".lora_magnitude_vector")).length, modules.length);
  assert.deepEqual(file.read(key).shape, [model.config.hiddenSize]);
  assert.deepEqual(toFloat32(file.read(key)), lora["model.layers.0.self_attn.q_proj"].magnitude);
  file.close();

  const loaded = loadAdapter(dir);
  assert.equal(loaded.config.useDora, true);
  assert.deepEqual(loaded.lora, adapter.lora);
  const fromFile = adapterTrainables(model.config, loaded, false);
  assert.ok(fromFile.modules.every((m) => m.dora));
  const doraLoss = await meanLoss(model, modules, trainable);
  assert.equal(await meanLoss(model, fromFile.modules, fromFile.trainable), doraLoss);
  const baseLoss = await meanLoss(model, [], []);
  assert.ok(Math.abs(doraLoss - baseLoss) > 1e-3 * baseLoss, `the adapter changes the loss (${doraLoss} vs ${baseLoss})`);

  // Merged: W' = m / ||W + s B A|| (W + s B A); the merged model's loss is the adapter's, and generation agrees.
  const merged = openModel(writeMergedModel(model, loaded, path.join(root, "merged")).dir);
  const mergedLoss = await meanLoss(merged, [], []);
  assert.ok(Math.abs(mergedLoss - doraLoss) <= 1e-5 * doraLoss, `merged ${mergedLoss} vs base + DoRA ${doraLoss}`);
  const m = modules[0];
  const n = loraNames(m.path);
  const w = model.weights.get(`${m.path}.weight`).data;
  mergeDoraInto(w, value(n.A), value(n.B), value(n.magnitude), m.rank, m.inFeatures, m.outFeatures, m.scaling);
  const rowNorms = doraRowNorms(w, new Float32Array(m.rank * m.inFeatures), new Float32Array(m.outFeatures * m.rank), m.rank, m.inFeatures, m.outFeatures, 0);
  rowNorms.forEach((v, o) => assert.ok(Math.abs(v - value(n.magnitude)[o]) <= 1e-5 * v, `merged row ${o} has the magnitude's norm`));
  const prompt = model.tokenizer.encode("Once upon a time");
  const [g1, g2] = [new Generator(model, { lora: loaded }), new Generator(merged)];
  const opts = { doSample: false, maxNewTokens: 10, eosTokenIds: [] };
  assert.deepEqual((await g1.generate(prompt, opts)).tokens, (await g2.generate(prompt, opts)).tokens);
  await Promise.all([g1.release(), g2.release()]);

  // A DoRA file under a plain-LoRA config, and the other way round, are refused by name.
  fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify({ ...json, use_dora: false }));
  assert.throws(() => loadAdapter(dir), /lora_magnitude_vector \(DoRA\) but .*adapter_config\.json does not set use_dora/);
  assert.throws(() => saveAdapter(path.join(root, "bad"), { ...adapter, config: { ...config, useDora: false } }), /has a DoRA magnitude but use_dora is false/);
});

// ---- training ------------------------------------------------------------------------------------------------

const trainModel = path.join(root, "train-model");
createTinyModel({ arch: "llama", out: trainModel, seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, initStd: 0.2 });
// Digits counting up mod 10 from a different start on each row: every next token follows from the current one.
const cycle = path.join(root, "cycle.jsonl");
fs.writeFileSync(cycle, Array.from({ length: 64 }, (_, i) => JSON.stringify({ text: Array.from({ length: 24 }, (_, j) => (i + j) % 10).join("") })).join("\n"));

function doraRecipe(out: string, extra: Partial<RecipeInput> = {}) {
  return resolveRecipe({
    model_name_or_path: trainModel,
    dataset_path: cycle,
    output_dir: path.join(root, out),
    stage: "pt",
    learning_rate: 0.05,
    lr_scheduler_type: "constant",
    warmup_steps: 0,
    max_steps: 12,
    per_device_train_batch_size: 8,
    logging_steps: 1,
    save_steps: 3,
    lora_rank: 4,
    lora_alpha: 8,
    lora_dropout: 0.1,
    use_dora: true,
    ...extra,
  });
}

test("use_dora: true trains through fit's trainer: the loss falls, the magnitudes move, gradient checkpointing changes nothing, and an interrupted run resumes bit for bit", async () => {
  const whole: TrainResult = await train(doraRecipe("whole"));
  const losses = whole.history.map((h) => h.loss);
  console.log(`DoRA training losses: ${losses.map((l) => l.toFixed(3)).join(" ")}`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-3)) < 0.5 * mean(losses.slice(0, 3)), `loss falls: ${losses.map((l) => l.toFixed(3)).join(" ")}`);
  const adapter = loadAdapter(whole.outputDir);
  assert.equal(adapter.config.useDora, true);
  const model = openModel(trainModel);
  for (const [modulePath, w] of Object.entries(adapter.lora)) {
    const start = doraRowNorms(model.weights.get(`${modulePath}.weight`).data, w.A, new Float32Array(w.B.length), w.rank, w.inFeatures, w.outFeatures, 0);
    assert.ok(w.magnitude!.some((v, o) => Math.abs(v - start[o]) > 1e-4), `${modulePath}: magnitude trained`);
  }

  // Gradient checkpointing recomputes each layer (the detached norm included) in the backward pass: the same steps.
  const recomputed = await train(doraRecipe("recomputed", { gradient_checkpointing: true, max_steps: 4, save_steps: 0 }));
  recomputed.history.forEach((h, i) => assert.ok(Math.abs(h.loss - whole.history[i].loss) <= 1e-6 * h.loss, `step ${i + 1}: ${h.loss} vs ${whole.history[i].loss}`));

  const stop = new AbortController();
  const first = await train(doraRecipe("resumed"), { signal: stop.signal, callbacks: [{ onStep: (e) => (e.step === 4 ? stop.abort() : undefined) }] });
  assert.equal(first.steps, 4);
  const rest = await train(doraRecipe("resumed", { resume_from_checkpoint: true }));
  assert.deepEqual([...first.history, ...rest.history], whole.history);
  const bytes = (r: TrainResult) => fs.readFileSync(path.join(r.outputDir, "adapter_model.safetensors"));
  assert.ok(bytes(rest).equals(bytes(whole)), "the resumed run's adapter is the uninterrupted run's, byte for byte");
});

const hasVulkan = existsSync("/usr/share/vulkan/icd.d") && readdirSync("/usr/share/vulkan/icd.d").length > 0;

test("DoRA trains on webgpu as on cpu, in float32 and float16", { skip: hasVulkan ? false : "no Vulkan driver installed" }, async () => {
  process.env.XDG_RUNTIME_DIR ??= "/tmp/xdg-0";
  // q/v/down only: the step graph's Split of all trainables into outputs stays within lavapipe's 16 storage buffers.
  const run = async (name: string, extra: Partial<RecipeInput>) =>
    (await train(doraRecipe(name, { max_steps: 5, save_steps: 0, lora_target: "q_proj,v_proj,down_proj", ...extra }))).history.map((h) => h.loss);
  const cpu = await run("cpu", {});
  const gpu = await run("webgpu", { device: "webgpu" });
  const gpu16 = await run("webgpu-fp16", { device: "webgpu", fp16: true });
  for (let i = 0; i < cpu.length; i++) {
    assert.ok(Math.abs(gpu[i] - cpu[i]) <= 1e-4 * cpu[i], `step ${i + 1}: webgpu ${gpu[i]} vs cpu ${cpu[i]}`);
    assert.ok(Math.abs(gpu16[i] - cpu[i]) <= 2e-2 * cpu[i], `step ${i + 1}: webgpu float16 ${gpu16[i]} vs cpu ${cpu[i]}`);
  }
  assert.ok(cpu.at(-1)! < cpu[0], "the loss falls");
});

test("the fluent plan's .lora({ dora: true }) is the recipe's use_dora", () => {
  const plan = ds.load(path.join(repo, "data/support_tickets.jsonl")).lora({ rank: 8, dora: true });
  assert.equal(plan.toRecipe(trainModel).use_dora, true);
  assert.equal(ds.load(path.join(repo, "data/support_tickets.jsonl")).lora({ rank: 8 }).toRecipe(trainModel).use_dora, false);
});
