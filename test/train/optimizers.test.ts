import { test } from "node:test";
import assert from "node:assert/strict";
import { StepEngine, StepResult } from "../../sdk/train/engine";
import { ForwardBuilder } from "../../sdk/models/forward";
import { OptimizerOptions } from "../../sdk/train/optimizers";

// loss = sum(p * c) / n over a batch of n identical rows, so dloss/dp = c exactly.
const c = Float32Array.from([0.5, -1.5, 2, 0.25]);
const forward: ForwardBuilder = (b, params) => {
  const coef = b.graph.input("coef", "float32", ["n", 4]);
  const p = params.get("p")!;
  const lossSum = b.sumAll(b.mul(coef, p));
  const count = b.cast(b.reduceSum(b.cast(b.shapeOf(coef), "float32"), [0]), "float32");
  // count = n + 4 - 4: the number of rows, from the run-time shape
  return { lossSum, count: b.sub(count, b.scalar(4)) };
};
const batch = (rows: number) => ({ coef: { dtype: "float32" as const, shape: [rows, 4], data: Float32Array.from({ length: rows * 4 }, (_, i) => c[i % 4]) } });
const init = Float32Array.from([1, -2, 0.5, 3]);

/** PyTorch's update rules in float64, the reference the graph must match. */
function reference(opt: OptimizerOptions, steps: number, lr: number, maxNorm = 0): number[] {
  const p = Array.from(init);
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    const norm = Math.sqrt(Array.from(c).reduce((a, x) => a + x * x, 0));
    const coef = maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
    for (let i = 0; i < p.length; i++) {
      let g = c[i] * coef;
      if (opt.name === "sgd") {
        g += (opt.weightDecay ?? 0) * p[i];
        m[i] = (opt.momentum ?? 0) * m[i] + g;
        p[i] -= lr * ((opt.momentum ?? 0) > 0 ? m[i] : g);
      } else if (opt.name === "adamw") {
        const [b1, b2, eps] = [opt.beta1 ?? 0.9, opt.beta2 ?? 0.999, opt.eps ?? 1e-8];
        p[i] *= 1 - lr * (opt.weightDecay ?? 0);
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p[i] -= (lr * (m[i] / (1 - b1 ** t))) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps);
      } else {
        const [b1, b2] = [opt.beta1 ?? 0.9, opt.beta2 ?? 0.99];
        p[i] *= 1 - lr * (opt.weightDecay ?? 0);
        p[i] -= lr * Math.sign(b1 * m[i] + (1 - b1) * g);
        m[i] = b2 * m[i] + (1 - b2) * g;
      }
    }
  }
  return p;
}

async function run(opt: OptimizerOptions, steps: number, lr: number, maxGradNorm = 0, micro = 1) {
  const engine = StepEngine.create({ forward, trainable: [{ name: "p", shape: [4], init }], optimizer: opt, maxGradNorm });
  let last: StepResult | undefined;
  for (let s = 0; s < steps; s++)
    last = await engine.train(
      Array.from({ length: micro }, (_, k) => batch(k + 1)),
      lr,
    );
  const p = Array.from(engine.param("p"));
  await engine.release();
  return { p, last: last! };
}

const cases: OptimizerOptions[] = [
  { name: "sgd" },
  { name: "sgd", momentum: 0.9, weightDecay: 0.1 },
  { name: "adamw", weightDecay: 0.01 },
  { name: "adamw", beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0 },
  { name: "lion", weightDecay: 0.1 },
];

for (const opt of cases) {
  test(`${opt.name} ${JSON.stringify(opt)} matches PyTorch's update rule over 3 steps`, async () => {
    const { p } = await run(opt, 3, 0.05);
    const want = reference(opt, 3, 0.05);
    p.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `p[${i}] = ${x}, want ${want[i]}`));
  });
}

test("global-norm clipping scales the gradient and reports the unclipped norm", async () => {
  const { p, last } = await run({ name: "sgd" }, 2, 0.1, 0.5);
  const norm = Math.sqrt(Array.from(c).reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(last.gradNorm - norm) < 1e-5);
  const want = reference({ name: "sgd" }, 2, 0.1, 0.5);
  p.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5, `p[${i}] = ${x}, want ${want[i]}`));
});

test("gradient accumulation over micro-batches equals one step on the whole batch", async () => {
  const accumulated = await run({ name: "adamw" }, 2, 0.05, 1, 3);
  const whole = await run({ name: "adamw" }, 2, 0.05, 1, 1);
  // Both see the same mean gradient c, so the updates agree; counts differ (1+2+3 rows vs 1).
  accumulated.p.forEach((x, i) => assert.ok(Math.abs(x - whole.p[i]) < 1e-6));
  assert.equal(accumulated.last.count, 6);
  assert.equal(whole.last.count, 1);
});

test("a graph passed as a model file with external data trains exactly like one passed in memory", async () => {
  const opts = { forward, trainable: [{ name: "p", shape: [4], init }], optimizer: { name: "adamw" } as OptimizerOptions, maxGradNorm: 1 };
  const inMemory = StepEngine.create(opts);
  // Threshold 0: every graph goes through writeOnnxWithExternalData, the path models over 2 GB take.
  const external = StepEngine.create({ ...opts, externalDataBytes: 0 });
  for (let s = 0; s < 3; s++) {
    const a = await inMemory.train([batch(2)], 0.05);
    const b = await external.train([batch(2)], 0.05);
    assert.equal(b.loss, a.loss);
  }
  assert.deepEqual(Array.from(external.param("p")), Array.from(inMemory.param("p")));
  await inMemory.release();
  await external.release();
});
