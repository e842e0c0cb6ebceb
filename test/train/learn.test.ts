import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { Feeds, ForwardPass } from "../../sdk/infer/forward-pass";
import { ForwardBuilder } from "../../sdk/models/forward";
import { StepEngine } from "../../sdk/train/engine";
import { Rng } from "../../sdk/util/random";

// Two interleaved spirals: not linearly separable, so only a working MLP + backprop + optimizer gets low loss.
function spirals(n: number, rng: Rng): { x: Float32Array; y: BigInt64Array } {
  const x = new Float32Array(n * 2);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const r = (i / n) * 2 + 0.2;
    const angle = r * 2.5 + cls * Math.PI + rng.normal() * 0.05;
    x[2 * i] = r * Math.cos(angle);
    x[2 * i + 1] = r * Math.sin(angle);
    y[i] = BigInt(cls);
  }
  return { x, y };
}

const hidden = 32;
const mlp: ForwardBuilder = (b, p) => {
  const x = b.graph.input("x", "float32", ["batch", 2]);
  const labels = b.graph.input("labels", "int64", ["batch"]);
  const h1 = b.tanh(b.add(b.matmul(x, p.get("w1")!), p.get("b1")!));
  const h2 = b.tanh(b.add(b.matmul(h1, p.get("w2")!), p.get("b2")!));
  const logits = b.add(b.matmul(h2, p.get("w3")!), p.get("b3")!);
  const lossSum = b.crossEntropy(logits, labels, -100, "sum");
  return { lossSum, count: b.countNotIgnored(labels, -100, "float32"), outputs: { logits } };
};

function mlpTrainables(seed: number) {
  const rng = new Rng(seed);
  const init = (rows: number, cols: number) => Float32Array.from({ length: rows * cols }, () => rng.normal() / Math.sqrt(rows));
  return [
    { name: "w1", shape: [2, hidden], init: init(2, hidden) },
    { name: "b1", shape: [hidden], init: new Float32Array(hidden) },
    { name: "w2", shape: [hidden, hidden], init: init(hidden, hidden) },
    { name: "b2", shape: [hidden], init: new Float32Array(hidden) },
    { name: "w3", shape: [hidden, 2], init: init(hidden, 2) },
    { name: "b3", shape: [2], init: new Float32Array(2) },
  ];
}

function engineFor(device: "cpu" | "webgpu", seed: number) {
  return StepEngine.create({
    forward: mlp,
    trainable: mlpTrainables(seed),
    optimizer: { name: "adamw", weightDecay: 0 },
    maxGradNorm: 5,
    device,
  });
}

const data = spirals(256, new Rng(7));
const feeds: Feeds = {
  x: { dtype: "float32", shape: [256, 2], data: data.x },
  labels: { dtype: "int64", shape: [256], data: data.y },
};

test("an MLP learns two spirals through the compiled training step", async () => {
  const engine = engineFor("cpu", 1);
  const first = await engine.train([feeds], 0.01);
  let last = first;
  for (let i = 0; i < 400; i++) last = await engine.train([feeds], 0.01);
  const pass = new ForwardPass(mlp, mlpTrainables(1));
  const { outputs } = await pass.run(feeds, engine.values());
  await pass.release();
  const logits = outputs.logits.data as Float32Array;
  let correct = 0;
  for (let i = 0; i < 256; i++) correct += Number(logits[2 * i + 1] > logits[2 * i]) === Number(data.y[i]) ? 1 : 0;
  await engine.release();
  assert.ok(first.loss > 0.6, `initial loss ${first.loss}`);
  assert.ok(last.loss < 0.1, `final loss ${last.loss}`);
  assert.ok(correct / 256 > 0.97, `train accuracy ${correct / 256}`);
});

const hasVulkan = existsSync("/usr/share/vulkan/icd.d") && readdirSync("/usr/share/vulkan/icd.d").length > 0;

test("the same steps on cpu and webgpu agree", { skip: hasVulkan ? false : "no Vulkan driver installed" }, async () => {
  const cpu = engineFor("cpu", 3);
  const gpu = engineFor("webgpu", 3);
  const losses: [number, number][] = [];
  for (let i = 0; i < 20; i++) losses.push([(await cpu.train([feeds], 0.01)).loss, (await gpu.train([feeds], 0.01)).loss]);
  const w1c = cpu.param("w1");
  const w1g = gpu.param("w1");
  const maxDiff = w1c.reduce((m, v, i) => Math.max(m, Math.abs(v - w1g[i])), 0);
  await cpu.release();
  await gpu.release();
  // float32 on different hardware/kernels: agree to 1e-4 relative on losses and 1e-3 on weights after 20 Adam steps.
  for (const [a, b] of losses) assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(a)), `loss cpu ${a} vs webgpu ${b}`);
  assert.ok(maxDiff < 1e-3, `w1 differs by ${maxDiff}`);
});

test("a one-block Llama transformer learns a sequence task to low loss through the compiled step", async () => {
  const { createTinyModel } = await import("../../sdk/io/tiny");
  const { resolveRecipe } = await import("../../sdk/train/recipe");
  const { train } = await import("../../sdk/train/trainer");
  const fs = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-oneblock-"));
  try {
    createTinyModel({ arch: "llama", out: path.join(dir, "model"), seed: 3, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });
    // Digits counting up mod 10 from a different start on each row: every next token follows from the current one.
    const rows = Array.from({ length: 64 }, (_, i) => JSON.stringify({ text: Array.from({ length: 24 }, (_, j) => (i + j) % 10).join("") }));
    fs.writeFileSync(path.join(dir, "cycle.jsonl"), rows.join("\n"));
    const result = await train(
      resolveRecipe({
        model_name_or_path: path.join(dir, "model"),
        dataset_path: path.join(dir, "cycle.jsonl"),
        output_dir: path.join(dir, "run"),
        stage: "pt",
        finetuning_type: "full",
        learning_rate: 1e-2,
        lr_scheduler_type: "constant",
        warmup_steps: 0,
        max_steps: 120,
        per_device_train_batch_size: 16,
        save_steps: 0,
      }),
    );
    const first = result.history[0].loss;
    const last = result.history.at(-1)!.loss;
    assert.ok(first > 5, `initial loss ${first} (about ln 262 for a random model)`);
    assert.ok(last < 0.15, `final loss ${last}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
