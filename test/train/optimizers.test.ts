import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import type { Value } from "../../sdk/graph/ir";
import type { HostTensor } from "../../sdk/runtime/session";
import { Rng } from "../../sdk/util/random";
import { StepEngine, StepResult } from "../../sdk/train/engine";
import { ForwardBuilder } from "../../sdk/models/forward";
import { OptimizerOptions } from "../../sdk/train/optimizers";
import { PYTHON, pythonHas } from "../util/python";

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

// ---- Against torch.optim, with gradients that vary by element, step and micro-batch --------------------------------
// Each micro-batch's loss is sum(coef * p + 0.5 * quad * p^2) over its rows, with random coef and quad fed per step,
// so the gradient (coef + quad * p, summed over rows) differs in every element and step and depends on p. Two tensors
// of different shapes exercise the flat update over all trainables. test/train/optim_reference.py runs the same
// steps through PyTorch (SGD, AdamW) and Lion's published update in float64.

const hasTorch = pythonHas("torch");
const shapes: Record<string, number[]> = { a: [2, 3], b: [4] };
const sizeOf = (name: string) => shapes[name].reduce((x, y) => x * y, 1);

const quadratic: ForwardBuilder = (b, params) => {
  let lossSum: Value | null = null;
  let rows: Value | null = null;
  for (const [name, shape] of Object.entries(shapes)) {
    const coef = b.graph.input(`coef.${name}`, "float32", ["rows", ...shape]);
    const quad = b.graph.input(`quad.${name}`, "float32", ["rows", ...shape]);
    const p = params.get(name)!;
    const term = b.sumAll(b.add(b.mul(coef, p), b.mul(b.scalar(0.5), b.mul(quad, b.mul(p, p)))));
    lossSum = lossSum ? b.add(lossSum, term) : term;
    rows ??= b.cast(b.gather(b.shapeOf(coef), b.scalar(0, "int64")), "float32");
  }
  return { lossSum: lossSum!, count: rows! };
};

interface MicroBatch {
  rows: number;
  coef: Record<string, number[]>;
  quad: Record<string, number[]>;
}
interface Case {
  optim: OptimizerOptions;
  maxGradNorm: number;
  init: Record<string, number[]>;
  steps: { lr: number; micro: MicroBatch[] }[];
}

const float32 = (xs: number[]) => Array.from(Float32Array.from(xs));

/** Six steps with varying learning rates; each step has `micro` micro-batches of 1, 2, 3, ... rows. */
function makeCase(optim: OptimizerOptions, maxGradNorm: number, micro: number, seed: number): Case {
  const rng = new Rng(seed);
  const init = Object.fromEntries(Object.keys(shapes).map((n) => [n, float32(Array.from({ length: sizeOf(n) }, () => rng.normal()))]));
  const lrs = [0.02, 0.05, 0.03, 0.04, 0.01, 0.03].map((lr) => (optim.name === "lion" ? lr / 5 : lr));
  const steps = lrs.map((lr) => ({
    lr,
    micro: Array.from({ length: micro }, (_, k) => {
      const rows = k + 1;
      const draw = (f: () => number) => Object.fromEntries(Object.keys(shapes).map((n) => [n, float32(Array.from({ length: rows * sizeOf(n) }, f))]));
      return { rows, coef: draw(() => rng.normal()), quad: draw(() => rng.next()) };
    }),
  }));
  return { optim, maxGradNorm, init, steps };
}

/** tunelab's compiled step on a case: the tensors after each step and the reported gradient norms. */
async function runCase(c: Case) {
  const trainable = Object.keys(shapes).map((name) => ({ name, shape: shapes[name], init: Float32Array.from(c.init[name]) }));
  const engine = StepEngine.create({ forward: quadratic, trainable, optimizer: c.optim, maxGradNorm: c.maxGradNorm });
  const out: { gradNorm: number; params: Record<string, number[]> }[] = [];
  for (const step of c.steps) {
    const feeds = step.micro.map((m) => {
      const f: Record<string, HostTensor> = {};
      for (const [name, shape] of Object.entries(shapes)) {
        f[`coef.${name}`] = { dtype: "float32", shape: [m.rows, ...shape], data: Float32Array.from(m.coef[name]) };
        f[`quad.${name}`] = { dtype: "float32", shape: [m.rows, ...shape], data: Float32Array.from(m.quad[name]) };
      }
      return f;
    });
    const result = await engine.train(feeds, step.lr);
    assert.ok(result.applied);
    out.push({ gradNorm: result.gradNorm, params: Object.fromEntries(Object.keys(shapes).map((n) => [n, Array.from(engine.param(n))])) });
  }
  await engine.release();
  return out;
}

const torchCases: { label: string; c: Case }[] = [];
const optimizers: OptimizerOptions[] = [
  { name: "sgd", momentum: 0.9, weightDecay: 0.1 },
  { name: "adamw", beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 },
  { name: "adamw", weightDecay: 0.01 },
  { name: "lion", beta1: 0.9, beta2: 0.99, weightDecay: 0.1 },
];
optimizers.forEach((optim, i) => {
  for (const [what, maxGradNorm, micro] of [
    ["plain", 0, 1],
    ["clipped", 0.3, 1],
    ["accumulated over 3 micro-batches", 0, 3],
    ["accumulated and clipped", 0.3, 3],
  ] as const) {
    torchCases.push({ label: `${JSON.stringify(optim)} ${what}`, c: makeCase(optim, maxGradNorm, micro, 100 + i) });
  }
});
let torchResults: { gradNorm: number; params: Record<string, number[]> }[][] | undefined;
/** PyTorch's results for every case, computed once (one Python start). */
function torchReference() {
  torchResults ??= JSON.parse(
    execFileSync(PYTHON, [path.join(__dirname, "../../../test/train/optim_reference.py")], {
      input: JSON.stringify(torchCases.map((t) => ({ ...t.c, shapes }))),
      encoding: "utf8",
    }),
  );
  return torchResults!;
}

torchCases.forEach(({ label, c }, k) => {
  test(`${label}: 6 steps match torch.optim`, { skip: hasTorch ? false : "python3-torch is not installed" }, async () => {
    const want = torchReference()[k];
    const got = await runCase(c);
    got.forEach((step, s) => {
      const norm = want[s].gradNorm;
      assert.ok(Math.abs(step.gradNorm - norm) <= 1e-5 * norm, `step ${s + 1}: grad norm ${step.gradNorm}, torch ${norm}`);
      if (c.maxGradNorm > 0) assert.ok(norm > c.maxGradNorm, `step ${s + 1}: clipping is active (norm ${norm})`);
      for (const name of Object.keys(shapes)) {
        step.params[name].forEach((x, i) => {
          const ref = want[s].params[name][i];
          assert.ok(Math.abs(x - ref) <= 1e-5 * Math.max(1, Math.abs(ref)), `step ${s + 1}: ${name}[${i}] = ${x}, torch ${ref}`);
        });
      }
    });
  });
});
