/**
 * One finite-difference gradient check per op kind of the autodiff table, with broadcasting, odd shapes,
 * scalar operands, rank-0 outputs and symbolic dims (see gradcheck.ts for how each check works).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Builder, GRAD_RULES, gradients, Value } from "../../sdk/graph";
import type { GradRule } from "../../sdk/graph/autodiff/rule";
import { awayFromZero, gradCheck, GradCheckOptions, GradCheckResult, InputSpec, uniform } from "./gradcheck";

type Build = (b: Builder, x: Value[]) => Value;

/** Runs one check and also asserts every checked gradient is non-zero somewhere, so a check cannot pass vacuously. */
async function check(op: string, inputs: InputSpec[], build: Build, extra: Partial<GradCheckOptions> = {}): Promise<GradCheckResult> {
  const r = await gradCheck({ op, inputs, build, ...extra });
  r.grads.forEach((g, i) => {
    if (g)
      assert.ok(
        g.some((v) => Math.abs(v) > 1e-4),
        `${op}: gradient of input ${i} is zero everywhere, the check proves nothing`,
      );
  });
  return r;
}

/** `check` for tests that need nothing from the result. */
async function gc(op: string, inputs: InputSpec[], build: Build, extra: Partial<GradCheckOptions> = {}): Promise<void> {
  await check(op, inputs, build, extra);
}

const f64 = (shape: number[], data?: InputSpec["data"]): InputSpec => ({ shape, data });
const i64 = (shape: number[], data: number[]): InputSpec => ({ shape, dtype: "int64", data });

// ---- MatMul ----------------------------------------------------------------------------------------------

test("MatMul 2-D [3,4] @ [4,5]", () => gc("MatMul", [f64([3, 4]), f64([4, 5])], (b, [x, w]) => b.matmul(x, w)));
test("MatMul batched [2,3,4] @ [2,4,5]", () => gc("MatMul", [f64([2, 3, 4]), f64([2, 4, 5])], (b, [x, w]) => b.matmul(x, w)));
test("MatMul broadcast batch on both sides [2,1,3,4] @ [3,4,2]", () => gc("MatMul", [f64([2, 1, 3, 4]), f64([3, 4, 2])], (b, [x, w]) => b.matmul(x, w)));
test("MatMul rank-4 @ rank-2 [2,3,4,5] @ [5,6] (folded weight gradient)", () => gc("MatMul", [f64([2, 3, 4, 5]), f64([5, 6])], (b, [x, w]) => b.matmul(x, w)));
test("MatMul linear layer rank-3 @ rank-2 [2,3,4] @ [4,5] (folded weight gradient)", () =>
  gc("MatMul", [f64([2, 3, 4]), f64([4, 5])], (b, [x, w]) => b.matmul(x, w)));
test("MatMul linear layer with a symbolic batch [n,3,4] @ [4,5]", () =>
  gc("MatMul", [{ shape: [2, 3, 4], declared: ["n", 3, 4] }, f64([4, 5])], (b, [x, w]) => b.matmul(x, w)));
test("MatMul rank-2 @ rank-3 [3,4] @ [2,4,5] (x gradient summed over the broadcast batch)", () =>
  gc("MatMul", [f64([3, 4]), f64([2, 4, 5])], (b, [x, w]) => b.matmul(x, w)));

// ---- Gemm (linear layers: the weight used in place as [out, in]) ------------------------------------------------

for (const [transA, transB] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
]) {
  const a = transA ? [4, 3] : [3, 4];
  const w = transB ? [5, 4] : [4, 5];
  test(`Gemm transA=${+transA} transB=${+transB} [${a}] x [${w}]`, () => gc("Gemm", [f64(a), f64(w)], (b, [x, y]) => b.gemm(x, y, { transA, transB })));
}
test("Gemm linear layer over a symbolic batch with bias: [n,3,4] x [5,4]^T + [5]", () =>
  gc("Gemm", [{ shape: [2, 3, 4], declared: ["n", 3, 4] }, f64([5, 4]), f64([5])], (b, [x, w, bias]) => b.linear(x, w, bias)));

// ---- binary element-wise with broadcasting -------------------------------------------------------------------

test("Add [2,3,5] + [5]", () => gc("Add", [f64([2, 3, 5]), f64([5])], (b, [x, y]) => b.add(x, y)));
test("Add [5] + [2,3,5] (broadcast on the left)", () => gc("Add", [f64([5]), f64([2, 3, 5])], (b, [x, y]) => b.add(x, y)));
test("Sub [3,1] - [1,4]", () => gc("Sub", [f64([3, 1]), f64([1, 4])], (b, [x, y]) => b.sub(x, y)));
test("Sub scalar - [2,3]", () => gc("Sub", [f64([]), f64([2, 3])], (b, [x, y]) => b.sub(x, y)));
test("Mul [3,1] * [1,4]", () => gc("Mul", [f64([3, 1]), f64([1, 4])], (b, [x, y]) => b.mul(x, y)));
test("Mul [2,3] * scalar input", () => gc("Mul", [f64([2, 3]), f64([])], (b, [x, y]) => b.mul(x, y)));
test("Mul of the same value x * x", () => gc("Mul", [f64([2, 3])], (b, [x]) => b.mul(x, x)));
test("Div [2,1,4] / [3,1]", () => gc("Div", [f64([2, 1, 4]), f64([3, 1], awayFromZero(0.5, 2))], (b, [x, y]) => b.div(x, y)));
test("Div [4] / [2,3,1] (broadcast on both sides)", () => gc("Div", [f64([4]), f64([2, 3, 1], awayFromZero(0.5, 2))], (b, [x, y]) => b.div(x, y)));
test("MatMul of a value with its own transpose x @ x^T (gradients from both operands add up)", () =>
  gc("MatMul", [f64([3, 4])], (b, [x]) => b.matmul(x, b.transpose(x, [1, 0]))));
test("Add [n,3] + [4,3] where the symbol n is 1 at run time (axes found at run time)", () =>
  gc("Add", [{ shape: [1, 3], declared: ["n", 3] }, f64([4, 3])], (b, [x, y]) => b.add(x, y), { outputShape: [4, 3] }));
test("Add [n,3] + [4,3] where the symbol n is 4 at run time (nothing to reduce)", () =>
  gc("Add", [{ shape: [4, 3], declared: ["n", 3] }, f64([4, 3])], (b, [x, y]) => b.add(x, y), { outputShape: [4, 3] }));
test("Add of two scalars (rank-0 output)", () => gc("Add", [f64([]), f64([])], (b, [x, y]) => b.mul(b.add(x, y), y)));
test("Pow base and exponent [2,3] ^ [3]", () => gc("Pow", [f64([2, 3], uniform(0.5, 2)), f64([3], uniform(-1.5, 1.5))], (b, [x, p]) => b.pow(x, p)));
test("Pow scalar base ^ [2,2] exponent", () => gc("Pow", [f64([], uniform(1.2, 2)), f64([2, 2])], (b, [x, p]) => b.pow(x, p)));
test("Pow negative base, constant integer exponent x ^ 3", () => gc("Pow", [f64([2, 3])], (b, [x]) => b.pow(x, b.scalar(3, "float64"))));

// ---- unary ---------------------------------------------------------------------------------------------------

const unaryCases: [string, (b: Builder, x: Value) => Value, InputSpec["data"]?][] = [
  ["Neg", (b, x) => b.neg(x)],
  ["Sqrt", (b, x) => b.sqrt(x), uniform(0.3, 3)],
  ["Reciprocal", (b, x) => b.reciprocal(x), awayFromZero(0.4, 2)],
  ["Exp", (b, x) => b.exp(x)],
  ["Log", (b, x) => b.log(x), uniform(0.2, 3)],
  ["Tanh", (b, x) => b.tanh(x)],
  ["Sigmoid", (b, x) => b.sigmoid(x)],
  ["Relu", (b, x) => b.relu(x), awayFromZero()],
  ["Abs", (b, x) => b.abs(x), awayFromZero()],
  ["Sin", (b, x) => b.sin(x)],
  ["Cos", (b, x) => b.cos(x)],
  ["silu", (b, x) => b.silu(x)],
  ["gelu (tanh form)", (b, x) => b.gelu(x, "tanh")],
  ["Identity", (b, x) => b.identity(x)],
];
for (const [op, f, data] of unaryCases) {
  test(`${op} on [2,3,2]`, () => gc(op, [f64([2, 3, 2], data)], (b, [x]) => f(b, x)));
}

// onnxruntime's CPU provider has no float64 Erf kernel, so Erf (and exact GELU, built on it) are checked in float32
// between two casts. float32 rounding (relative 6e-8) of the output and of x + h limits a finite difference to about
// 6e-8 / (2h); with h = 1e-3 that is ~3e-5 relative, while the truncation error h^2 f'''/6 stays under 1e-6. Hence the
// larger step and the tolerances below.
const float32Tol: Partial<GradCheckOptions> = { h: 1e-3, atol: 2e-4, rtol: 1e-3 };
test("Erf (computed in float32)", () => gc("Erf", [f64([2, 3, 2])], (b, [x]) => b.cast(b.erf(b.cast(x, "float32")), "float64"), float32Tol));
test("gelu exact (erf form, computed in float32)", () => gc("gelu", [f64([2, 3, 2])], (b, [x]) => b.cast(b.gelu(b.cast(x, "float32")), "float64"), float32Tol));
test("Erf on a float64 input (Builder.erf computes it in float32 there)", () => gc("Erf", [f64([4])], (b, [x]) => b.erf(x), float32Tol));

// ---- softmax family --------------------------------------------------------------------------------------------

test("Softmax axis -1 on [2,3,4]", () => gc("Softmax", [f64([2, 3, 4])], (b, [x]) => b.softmax(x, -1)));
test("Softmax middle axis 1 on [2,4,3]", () => gc("Softmax", [f64([2, 4, 3])], (b, [x]) => b.softmax(x, 1)));
test("LogSoftmax axis -1 on [2,3,4]", () => gc("LogSoftmax", [f64([2, 3, 4])], (b, [x]) => b.logSoftmax(x, -1)));
test("LogSoftmax middle axis 1 on [2,4,3]", () => gc("LogSoftmax", [f64([2, 4, 3])], (b, [x]) => b.logSoftmax(x, 1)));

// ---- reductions ---------------------------------------------------------------------------------------------------

for (const [name, reduce] of [
  ["ReduceSum", (b: Builder, x: Value, axes: number[], keep: boolean) => b.reduceSum(x, axes, keep)],
  ["ReduceMean", (b: Builder, x: Value, axes: number[], keep: boolean) => b.reduceMean(x, axes, keep)],
  ["ReduceMax", (b: Builder, x: Value, axes: number[], keep: boolean) => b.reduceMax(x, axes, keep)],
] as const) {
  for (const [axes, keep] of [
    [[1], true],
    [[1], false],
    [[0, 2], true],
    [[-1, 0], false],
    [[0, 1, 2], false],
  ] as [number[], boolean][]) {
    test(`${name} axes [${axes}] keepdims ${keep} on [2,3,4]`, () => gc(name, [f64([2, 3, 4])], (b, [x]) => reduce(b, x, axes, keep)));
  }
}
test("ReduceMean over a symbolic dim [n,4] axis 0 (run-time count)", () =>
  gc("ReduceMean", [{ shape: [3, 4], declared: ["n", 4] }], (b, [x]) => b.reduceMean(x, [0])));
test("ReduceMean over two symbolic dims [n,m] to a scalar (run-time count)", () =>
  gc("ReduceMean", [{ shape: [3, 5], declared: ["n", "m"] }], (b, [x]) => b.mul(b.reduceMean(x, [0, 1]), b.reduceMean(x, [0, 1]))));
test("ReduceMax with a two-way tie shares the gradient (central difference also gives 1/2)", async () => {
  // With two equal maxima a central difference on either one sees (x + h - x) / 2h = 1/2, which is exactly the
  // share the rule gives each tied element, so the check is valid at this kink.
  const r = await check("ReduceMax", [f64([2, 4], [0.3, 1.5, 1.5, -0.2, 0.1, -0.7, 0.9, 0.4])], (b, [x]) => b.reduceMax(x, [1], true));
  const g = r.grads[0]!;
  assert.ok(Math.abs(g[1] - g[2]) < 1e-12 && g[1] !== 0, "tied maxima get equal shares");
  assert.ok(g[0] === 0);
});

// ---- shape ops ---------------------------------------------------------------------------------------------------

test("Reshape [2,3,4] -> [0,-1]", () => gc("Reshape", [f64([2, 3, 4])], (b, [x]) => b.reshape(x, [0, -1])));
test("Reshape [n,3,4] -> [0,2,-1] -> [-1,3] with a symbolic first dim", () =>
  gc("Reshape", [{ shape: [2, 3, 4], declared: ["n", 3, 4] }], (b, [x]) => b.reshape(b.reshape(x, [0, 2, -1]), [-1, 3]), {
    outputShape: [8, 3],
  }));
test("Transpose perm [2,0,1] on [2,3,4]", () => gc("Transpose", [f64([2, 3, 4])], (b, [x]) => b.transpose(x, [2, 0, 1])));
test("Squeeze axes [1,-1] of [2,1,3,1]", () => gc("Squeeze", [f64([2, 1, 3, 1])], (b, [x]) => b.squeeze(x, [1, -1])));
test("Unsqueeze axes [0,-1] of [2,3]", () => gc("Unsqueeze", [f64([2, 3])], (b, [x]) => b.unsqueeze(x, [0, -1])));
test("Slice negative starts, clamped ends, two axes of [4,5,6]", () => gc("Slice", [f64([4, 5, 6])], (b, [x]) => b.slice(x, [-3, 1], [1000, -1], [0, 2])));
test("Slice start clamped below 0 and negative axis", () => gc("Slice", [f64([3, 5])], (b, [x]) => b.slice(x, [-100, 2], [2, 4], [0, -1])));
test("Slice of a symbolic dim [n,6] with a negative start", () =>
  gc("Slice", [{ shape: [4, 6], declared: ["n", 6] }], (b, [x]) => b.slice(x, [-2, 1], [2 ** 40, 5], [0, 1]), { outputShape: [2, 4] }));
test("Concat of 3 inputs on a middle axis", () => gc("Concat", [f64([2, 1, 3]), f64([2, 4, 3]), f64([2, 2, 3])], (b, xs) => b.concat(xs, 1)));
test("Concat where one input needs no gradient", () =>
  gc("Concat", [f64([2, 1, 3]), { shape: [2, 2, 3], wrt: false }, f64([2, 2, 3])], (b, xs) => b.concat(xs, -2)));
test("Concat along a symbolic axis [n,3] ++ [2,3]", () =>
  gc("Concat", [{ shape: [3, 3], declared: ["n", 3] }, f64([2, 3])], (b, xs) => b.concat(xs, 0), { outputShape: [5, 3] }));
test("Split uneven sizes [2,3,1] with the middle output unused", async () => {
  const r = await check("Split", [f64([2, 6, 3])], (b, [x]) => {
    const [p0, , p2] = b.split(x, 1, [2, 3, 1]);
    return b.concat([p2, b.tanh(p0)], 1);
  });
  const g = r.grads[0]!;
  // Elements [., 2..4, .] went to the unused piece: their gradient must be exactly zero.
  for (let i = 0; i < 2; i++) for (let j = 2; j < 5; j++) for (let k = 0; k < 3; k++) assert.ok(g[i * 18 + j * 3 + k] === 0);
});
test("Expand [3,1] -> [2,3,4]", () => gc("Expand", [f64([3, 1])], (b, [x]) => b.expand(x, b.int64s([2, 3, 4]), [2, 3, 4])));
test("Expand rank-0 -> [2,3]", () => gc("Expand", [f64([])], (b, [x]) => b.expand(x, b.int64s([2, 3]), [2, 3])));
test("Gather embedding lookup with repeated indices, 2-D index tensor", () =>
  gc("Gather", [f64([7, 3]), i64([2, 4], [1, 3, 1, 6, 0, 3, 3, 1])], (b, [table, ids]) => b.gather(table, ids, 0)));
test("Gather from a 1-D table with a negative index", () => gc("Gather", [f64([5]), i64([4], [4, -1, 0, 2])], (b, [table, ids]) => b.gather(table, ids, 0)));
test("GatherElements axis 1 with repeats", () =>
  gc("GatherElements", [f64([3, 4]), i64([3, 5], [0, 3, 3, 1, 0, 2, 2, 2, 1, 0, 3, 0, 1, 1, 2])], (b, [x, i]) => b.gatherElements(x, i, 1)));
test("GatherElements axis 0, indices smaller than data", () =>
  gc("GatherElements", [f64([3, 4]), i64([2, 4], [2, 0, 2, 1, 2, 1, 0, 0])], (b, [x, i]) => b.gatherElements(x, i, 0)));

// ---- selection, casts, dropout ------------------------------------------------------------------------------------

test("Where with both branches differentiated and broadcasting", () =>
  gc("Where", [{ shape: [3, 1], dtype: "bool", data: [1, 0, 1] }, f64([3, 4]), f64([4])], (b, [c, x, y]) => b.where(c, x, y)));
test("Where with a scalar branch", () =>
  gc("Where", [{ shape: [2, 3], dtype: "bool", data: [1, 0, 0, 1, 1, 0] }, f64([]), f64([2, 3])], (b, [c, x, y]) => b.where(c, x, y)));
test("Where with a condition computed from the input", () =>
  gc("Where", [f64([2, 5], awayFromZero())], (b, [x]) => b.where(b.compare("Greater", x, b.scalar(0, "float64")), b.exp(x), b.mul(x, x))));
test("Cast float64 -> float32 -> float64 round trip", () =>
  // The float32 leg rounds x (relative 6e-8), so loss(x +- h) is a step function at that scale: a finite difference
  // errs by up to ~6e-8 / (2h). With h = 1e-3 that is 3e-5 relative, so the tolerance is loosened to match.
  gc("Cast", [f64([2, 3]), f64([2, 3])], (b, [x, w]) => b.mul(b.cast(b.tanh(b.cast(x, "float32")), "float64"), w), float32Tol));
test("dropout with a fixed keep-mask", async () => {
  const mask = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1];
  const r = await check("dropout", [f64([3, 4]), { shape: [3, 4], dtype: "bool", data: mask }], (b, [x, m]) => b.dropout(x, m, 0.25));
  const g = r.grads[0]!;
  mask.forEach((k, i) => k === 0 && assert.ok(g[i] === 0, `dropped element ${i} must get no gradient`));
});

// ---- normalisation -----------------------------------------------------------------------------------------------

test("rmsNorm with weight on [2,3,5]", () => gc("rmsNorm", [f64([2, 3, 5]), f64([5], uniform(0.5, 1.5))], (b, [x, w]) => b.rmsNorm(x, w, 1e-6)));
test("layerNorm with weight and bias on [n,3,5]", () =>
  gc("layerNorm", [{ shape: [2, 3, 5], declared: ["n", 3, 5] }, f64([5], uniform(0.5, 1.5)), f64([5])], (b, [x, w, c]) => b.layerNorm(x, w, c, 1e-5)));

// ---- cross-entropy -----------------------------------------------------------------------------------------------

/** PyTorch's F.cross_entropy with ignore_index, in plain float64 JavaScript. */
function crossEntropyRef(logits: Float64Array, labels: number[], classes: number, ignore: number, reduction: "mean" | "sum"): number {
  let sum = 0;
  let count = 0;
  labels.forEach((label, row) => {
    if (label === ignore) return;
    const z = logits.subarray(row * classes, (row + 1) * classes);
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
    sum += lse - z[label];
    count++;
  });
  return reduction === "mean" ? sum / count : sum;
}

for (const reduction of ["mean", "sum"] as const) {
  test(`crossEntropy with ignore index -100, reduction ${reduction}`, async () => {
    const labels = [2, -100, 0, 4, -100, 1];
    const r = await check("crossEntropy", [f64([6, 5]), i64([6], labels)], (b, [x, l]) => b.crossEntropy(x, l, -100, reduction));
    const logits = r.feeds[0].data as Float64Array;
    const expected = crossEntropyRef(logits, labels, 5, -100, reduction);
    const got = Number(r.output.data[0]);
    assert.ok(Math.abs(got - expected) <= 1e-12 * Math.abs(expected), `forward loss ${got} vs reference ${expected}`);
    const g = r.grads[0]!;
    for (const row of [1, 4]) for (let c = 0; c < 5; c++) assert.ok(g[row * 5 + c] === 0, `ignored row ${row} must get no gradient`);
  });
}
test("crossEntropy on a symbolic number of rows", () =>
  gc(
    "crossEntropy",
    [
      { shape: [4, 3], declared: ["n", 3] },
      { shape: [4], declared: ["n"], dtype: "int64", data: [0, -100, 2, 2] },
    ],
    (b, [x, l]) => b.crossEntropy(x, l, -100, "mean"),
  ));

// ---- what gets differentiated ------------------------------------------------------------------------------------

test("gradients(): an input that does not reach the loss gets zeros and no gradient work", async () => {
  const r = await gradCheck({
    op: "unused input",
    inputs: [f64([2, 3]), f64([2, 3])],
    build: (b, [x, z]) => {
      b.graph.output(b.exp(b.tanh(z)), "side"); // z feeds only a side output
      return b.sin(x);
    },
  });
  assert.ok(
    r.grads[1]!.every((v) => v === 0),
    "gradient of the unused input is all zeros",
  );

  // Structural: no node appended by gradients() reads a value computed only from z.
  const b = new Builder();
  const x = b.graph.input("x", "float64", [2, 3]);
  const z = b.graph.input("z", "float64", [2, 3]);
  const side = b.exp(b.tanh(z));
  const mid = side.producer!.inputs[0]!;
  b.graph.output(side, "side");
  const loss = b.sumAll(b.sin(x));
  const before = b.graph.nodes.length;
  gradients(b, loss, [x, z]);
  for (const node of b.graph.nodes.slice(before)) {
    assert.ok(!node.inputs.includes(side) && !node.inputs.includes(mid), `gradient node ${node.op} reads the unused branch`);
    assert.notEqual(node.op, "Exp");
  }
});

test("gradients(): differentiating fewer inputs appends fewer nodes", () => {
  const build = () => {
    const b = new Builder();
    const x = b.graph.input("x", "float64", [2, 3]);
    const z = b.graph.input("z", "float64", [1, 3]);
    const loss = b.sumAll(b.mul(b.tanh(x), b.exp(b.log(z))));
    return { b, x, z, loss };
  };
  const one = build();
  const n0 = one.b.graph.nodes.length;
  gradients(one.b, one.loss, [one.x]);
  const onlyX = one.b.graph.nodes.slice(n0);
  const both = build();
  const n1 = both.b.graph.nodes.length;
  gradients(both.b, both.loss, [both.x, both.z]);
  const bothCount = both.b.graph.nodes.length - n1;
  assert.ok(onlyX.length < bothCount, `wrt [x] appended ${onlyX.length} nodes, wrt [x, z] ${bothCount}`);
  // The z-only chain (Log, Exp) has no rule work when only x is wanted: no node reads z or log(z).
  const logZ = one.b.graph.nodes.find((n) => n.op === "Log")!.outputs[0];
  for (const node of onlyX) assert.ok(!node.inputs.includes(one.z) && !node.inputs.includes(logZ), `${node.op} works on z's branch`);
});

// ---- the harness itself ---------------------------------------------------------------------------------------------

test("the checker rejects a wrong rule and names op, input, element and both values", async () => {
  // Swap in a Sin rule that is off by 0.1%: far above the finite-difference error, so the check must fail.
  const rules = GRAD_RULES as Record<string, GradRule>;
  const original = rules.Sin;
  rules.Sin = (b, node, dys) => [b.mul(b.mul(dys[0]!, b.cos(node.inputs[0]!)), b.scalar(1.001, "float64"))];
  try {
    await assert.rejects(
      gradCheck({ op: "Sin", inputs: [{ name: "angle", shape: [2, 3] }], build: (b, [x]) => b.sin(x) }),
      /^Error: Sin: gradient of input angle at element 0 \[0,0\] of \[2,3\]: analytic -?[\d.e-]+, numeric -?[\d.e-]+/,
    );
  } finally {
    rules.Sin = original;
  }
});
