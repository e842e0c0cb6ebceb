import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import type { Feeds } from "../../sdk/infer/forward-pass";
import type { ForwardBuilder } from "../../sdk/models/forward";
import { StepEngine, STREAMED_UPDATE_BYTES, type EngineOptions } from "../../sdk/train/engine";
import type { OptimizerOptions } from "../../sdk/train/optimizers";
import { compileGradStep, names } from "../../sdk/train/step";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import { Rng } from "../../sdk/util/random";

// A two-layer tanh regression: three tensors of sizes 12, 4 and 8, so chunks of 5 values straddle tensor boundaries.
const forward: ForwardBuilder = (b, p) => {
  const x = b.graph.input("x", "float32", ["batch", 3]);
  const y = b.graph.input("y", "float32", ["batch", 2]);
  const h = b.tanh(b.add(b.matmul(x, p.get("w1")!), p.get("b1")!));
  const err = b.sub(b.matmul(h, p.get("w2")!), y);
  return { lossSum: b.sumAll(b.mul(err, err)), count: b.scalar(16) };
};

function trainables() {
  const rng = new Rng(5);
  const init = (n: number) => Float32Array.from({ length: n }, () => rng.normal() * 0.5);
  return [
    { name: "w1", shape: [3, 4], init: init(12) },
    { name: "b1", shape: [4], init: init(4) },
    { name: "w2", shape: [4, 2], init: init(8) },
  ];
}

function batch(seed: number): Feeds {
  const rng = new Rng(seed);
  const values = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  return { x: { dtype: "float32", shape: [16, 3], data: values(48) }, y: { dtype: "float32", shape: [16, 2], data: values(32) } };
}

function engine(optimizer: OptimizerOptions, extra: Partial<EngineOptions> = {}) {
  return StepEngine.create({ forward, trainable: trainables(), optimizer, maxGradNorm: 0.5, ...extra });
}

const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(a));
const OPTIMIZERS: OptimizerOptions[] = [
  { name: "adamw", weightDecay: 0.01 },
  { name: "sgd", momentum: 0.9, weightDecay: 0.01 },
  { name: "sgd" },
  { name: "lion", weightDecay: 0.1 },
];

for (const optimizer of OPTIMIZERS) {
  test(`an update in place, 5 values at a time, follows the fused step (${JSON.stringify(optimizer)}, clipping active)`, async () => {
    const fused = engine(optimizer);
    const inPlace = engine(optimizer, { updateChunk: 5 });
    assert.equal(fused.updatesInPlace, false);
    assert.equal(inPlace.updatesInPlace, true);
    let clipped = 0;
    for (let step = 0; step < 12; step++) {
      const lr = optimizer.name === "lion" ? 0.003 : 0.05;
      const a = await fused.train([batch(step)], lr);
      const b = await inPlace.train([batch(step)], lr);
      assert.ok(a.applied && b.applied);
      assert.ok(close(a.loss, b.loss, 1e-5), `step ${step}: loss ${a.loss} vs ${b.loss}`);
      assert.ok(close(a.gradNorm, b.gradNorm, 1e-5), `step ${step}: grad norm ${a.gradNorm} vs ${b.gradNorm}`);
      assert.ok(close(a.updateNorm, b.updateNorm, 1e-4), `step ${step}: update norm ${a.updateNorm} vs ${b.updateNorm}`);
      if (a.gradNorm > 0.5) clipped++;
    }
    assert.equal(inPlace.step, 12);
    assert.ok(clipped > 0, "clipping never applied: the test would not see a wrong clip factor");
    const [sa, sb] = [fused.snapshot(), inPlace.snapshot()];
    for (const [name, values] of Object.entries({ ...sa.params, ...sa.optimizer })) {
      const other = sb.params[name] ?? sb.optimizer[name];
      values.forEach((v, i) => assert.ok(close(v, other[i], 1e-4), `${name}[${i}]: ${v} vs ${other[i]}`));
    }
    await fused.release();
    await inPlace.release();
  });
}

test("gradient accumulation updates in place as the per-tensor apply does", async () => {
  const optimizer: OptimizerOptions = { name: "adamw" };
  const [a, b] = [engine(optimizer), engine(optimizer, { updateChunk: 7 })];
  for (let step = 0; step < 4; step++) {
    const [ra, rb] = [await a.train([batch(step), batch(step + 10)], 0.05), await b.train([batch(step), batch(step + 10)], 0.05)];
    assert.ok(close(ra.loss, rb.loss, 1e-5) && close(ra.gradNorm, rb.gradNorm, 1e-5), `step ${step}: ${JSON.stringify([ra, rb])}`);
  }
  a.param("w2").forEach((v, i) => assert.ok(close(v, b.param("w2")[i], 1e-4), `w2[${i}]`));
  await a.release();
  await b.release();
});

test("a step in place whose update is not finite (AdamW, eps 0, a zero gradient: 0/0) changes nothing", async () => {
  // Zero inputs give w1 a zero gradient, so its AdamW step is 0 / (0 + eps) = NaN.
  const e = engine({ name: "adamw", eps: 0 }, { updateChunk: 5 });
  const before = e.snapshot();
  const zeros: Feeds = { x: { dtype: "float32", shape: [16, 3], data: new Float32Array(48) }, y: batch(1).y };
  const result = await e.train([zeros], 0.05);
  assert.equal(result.applied, false);
  assert.equal(result.nonFinite, "update");
  assert.equal(e.step, 0);
  assert.deepEqual(e.snapshot(), before);
  await e.release();
});

test("a resumed in-place run continues bit for bit", async () => {
  const optimizer: OptimizerOptions = { name: "adamw", weightDecay: 0.01 };
  const whole = engine(optimizer, { updateChunk: 5 });
  const first = engine(optimizer, { updateChunk: 5 });
  for (let step = 0; step < 3; step++) {
    await whole.train([batch(step)], 0.05);
    await first.train([batch(step)], 0.05);
  }
  const resumed = engine(optimizer, { updateChunk: 5 });
  resumed.restore(first.snapshot());
  for (let step = 3; step < 6; step++) {
    await whole.train([batch(step)], 0.05);
    await resumed.train([batch(step)], 0.05);
  }
  assert.deepEqual(resumed.snapshot(), whole.snapshot());
  for (const e of [whole, first, resumed]) await e.release();
});

test("the engine updates in place by default when the trainable tensors and their state exceed STREAMED_UPDATE_BYTES", () => {
  const big = Math.ceil(STREAMED_UPDATE_BYTES / 4 / 3) + 1; // AdamW: the tensor plus two state slots
  const make = (n: number) =>
    StepEngine.create({ forward, trainable: [{ name: "p", shape: [n], init: new Float32Array(n) }], optimizer: { name: "adamw" }, maxGradNorm: 1 });
  assert.equal(make(big).updatesInPlace, true);
  assert.equal(make(big - 2).updatesInPlace, false);
  assert.throws(() => engine({ name: "sgd" }, { updateChunk: 0 }), /updateChunk must be a positive integer, got 0/);
});

const hasVulkan = existsSync("/usr/share/vulkan/icd.d") && readdirSync("/usr/share/vulkan/icd.d").length > 0;

test("an update in place on webgpu agrees with cpu", { skip: hasVulkan ? false : "no Vulkan driver installed" }, async () => {
  const optimizer: OptimizerOptions = { name: "adamw", weightDecay: 0.01 };
  const [cpu, gpu] = [engine(optimizer, { updateChunk: 5 }), engine(optimizer, { updateChunk: 5, device: "webgpu" })];
  for (let step = 0; step < 5; step++) {
    const [a, b] = [await cpu.train([batch(step)], 0.05), await gpu.train([batch(step)], 0.05)];
    assert.ok(close(a.loss, b.loss, 1e-4), `step ${step}: loss ${a.loss} vs ${b.loss}`);
  }
  cpu.param("w1").forEach((v, i) => assert.ok(Math.abs(v - gpu.param("w1")[i]) < 1e-3, `w1[${i}]`));
  await cpu.release();
  await gpu.release();
});

test("the gradient step's grad_sq is the summed squares of the gradients it returns", async () => {
  const session = await sessionForGraph(compileGradStep(forward, trainables()));
  const feeds: Feeds = { ...batch(3) };
  for (const t of trainables()) feeds[names.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
  const out = await session.run(feeds);
  await session.release();
  const squares = trainables().reduce((sum, t) => sum + (out[names.grad(t.name)].data as Float32Array).reduce((s, g) => s + g * g, 0), 0);
  assert.ok(squares > 0 && close(Number(out[names.gradSq].data[0]), squares, 1e-6), `${out[names.gradSq].data[0]} vs ${squares}`);
});
