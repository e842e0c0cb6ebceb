/** ONNX serialisation through the real runtime: symbolic dims, initializers of every dtype, external data, float16. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Builder, DType, TensorArray, toHalf, toOnnx } from "../../sdk/graph";
import { liveNodes } from "../../sdk/graph/onnx";
import { Session } from "../../sdk/runtime/session";

test("a symbolic batch dim runs with two batch sizes in one session", async () => {
  const b = new Builder();
  const x = b.graph.input("x", "float32", ["batch", 3]);
  const w = b.constant([1, 2, -1, 0.5, 3, -2], [3, 2], "float32", "w");
  b.graph.output(b.add(b.matmul(x, w), b.reduceSum(x, [1], true)), "y");
  const session = await Session.create(toOnnx(b.graph));
  try {
    for (const batch of [1, 4]) {
      const xs = Float32Array.from({ length: batch * 3 }, (_, i) => (i % 5) - 1.5);
      const { y } = await session.run({ x: { dtype: "float32", shape: [batch, 3], data: xs } });
      assert.deepEqual(y.shape, [batch, 2]);
      const expected: number[] = [];
      for (let r = 0; r < batch; r++) {
        const row = xs.subarray(r * 3, r * 3 + 3);
        const sum = row[0] + row[1] + row[2];
        expected.push(row[0] * 1 + row[1] * -1 + row[2] * 3 + sum, row[0] * 2 + row[1] * 0.5 + row[2] * -2 + sum);
      }
      // Every product and sum here is exact in float32, so the comparison can be exact.
      assert.deepEqual(Array.from(y.data as Float32Array), expected);
    }
  } finally {
    await session.release();
  }
});

test("initializers of every dtype round trip through the runtime", async () => {
  const cases: { dtype: DType; shape: number[]; data: TensorArray }[] = [
    { dtype: "float32", shape: [2, 2], data: Float32Array.from([1.5, -0, 3.4028234663852886e38, 1e-45]) },
    { dtype: "float64", shape: [3], data: Float64Array.from([Math.PI, -1e-300, 1.7976931348623157e308]) },
    { dtype: "float16", shape: [5], data: Uint16Array.from([0x3c00, 0x8001, 0x7c00, 0xfbff, 0x3555]) },
    { dtype: "int64", shape: [2, 2], data: BigInt64Array.from([9007199254740993n, -9223372036854775808n, 9223372036854775807n, -1n]) },
    { dtype: "int32", shape: [3], data: Int32Array.from([-2147483648, 2147483647, 0]) },
    { dtype: "bool", shape: [4], data: Uint8Array.from([1, 0, 0, 1]) },
    { dtype: "uint8", shape: [2], data: Uint8Array.from([255, 7]) },
    { dtype: "int8", shape: [2], data: Int8Array.from([-128, 127]) },
    { dtype: "float32", shape: [], data: Float32Array.from([-2.5]) },
  ];
  const b = new Builder();
  cases.forEach((c, i) => b.graph.output(b.graph.initializer(`init_${i}`, { dtype: c.dtype, shape: c.shape, data: c.data }), `out_${i}`));
  const session = await Session.create(toOnnx(b.graph));
  try {
    const out = await session.run({});
    cases.forEach((c, i) => {
      const got = out[`out_${i}`];
      assert.equal(got.dtype, c.dtype, `dtype of ${c.dtype} initializer`);
      assert.deepEqual(got.shape, c.shape, `shape of ${c.dtype} initializer`);
      assert.deepEqual(Array.from(got.data as ArrayLike<number | bigint>), Array.from(c.data as ArrayLike<number | bigint>), `data of ${c.dtype} initializer`);
      if (c.dtype === "float32" && i === 0) assert.ok(Object.is((got.data as Float32Array)[1], -0), "negative zero survives");
    });
  } finally {
    await session.release();
  }
});

test("external data: initializers read from a file beside the model at their offsets", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tunelab-onnx-"));
  try {
    const weights = Float32Array.from([0.25, -1.5, 3, 1e-3, 7, -8]);
    const ids = BigInt64Array.from([5n, -3n]);
    // Layout: 12 junk bytes, the float32 tensor, 4 junk bytes, the int64 tensor; junk would show up in a wrong read.
    const file = Buffer.alloc(12 + weights.byteLength + 4 + ids.byteLength, 0xab);
    Buffer.from(weights.buffer).copy(file, 12);
    const idsOffset = 12 + weights.byteLength + 4;
    Buffer.from(ids.buffer).copy(file, idsOffset);
    await writeFile(join(dir, "weights.bin"), file);

    const b = new Builder();
    const w = b.graph.initializer("w", { dtype: "float32", shape: [2, 3], external: { location: "weights.bin", offset: 12, length: weights.byteLength } });
    const k = b.graph.initializer("k", { dtype: "int64", shape: [2], external: { location: "weights.bin", offset: idsOffset, length: ids.byteLength } });
    const x = b.graph.input("x", "float32", [1, 2]);
    b.graph.output(b.matmul(x, w), "y");
    b.graph.output(k, "k_out");
    const modelPath = join(dir, "model.onnx");
    await writeFile(modelPath, toOnnx(b.graph));

    const session = await Session.create(modelPath);
    try {
      const out = await session.run({ x: { dtype: "float32", shape: [1, 2], data: Float32Array.from([1, 2]) } });
      const expected = [0, 1, 2].map((j) => weights[j] + 2 * weights[3 + j]);
      assert.deepEqual(Array.from(out.y.data as Float32Array), Array.from(Float32Array.from(expected)));
      assert.deepEqual(Array.from(out.k_out.data as BigInt64Array), [5n, -3n]);
    } finally {
      await session.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** IEEE half bits -> number, to state each expectation as a value as well as bits. */
function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return exp === 0 ? sign * mant * 2 ** -24 : sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const isHalfNaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

// [input, expected half bits]. Expectations are written out, not computed by toHalf, so both sides are checked.
const HALF_CASES: [number, number][] = [
  [0, 0x0000],
  [-0, 0x8000],
  [1, 0x3c00],
  [-2.5, 0xc100],
  [65504, 0x7bff], // largest finite half
  [65519, 0x7bff], // just under the rounding boundary to infinity
  [65520, 0x7c00], // halfway to the next (non-existent) step rounds to infinity
  [1e6, 0x7c00],
  [Infinity, 0x7c00],
  [-Infinity, 0xfc00],
  [2 ** -14, 0x0400], // smallest normal
  [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
  [2 ** -24, 0x0001], // smallest subnormal
  [-(2 ** -24), 0x8001],
  [2 ** -25, 0x0000], // halfway between 0 and the smallest subnormal: ties to even (0)
  [3 * 2 ** -25, 0x0002], // halfway between subnormals 1 and 2: ties to even (2)
  [5 * 2 ** -25, 0x0002], // halfway between subnormals 2 and 3: ties to even (2)
  [2 ** -25 + 2 ** -40, 0x0001], // just above halfway rounds up
  [Math.fround(1e-9), 0x0000],
  [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: ties to even (1)
  [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1 + 2^-10 and 1 + 2^-9: ties to even
  [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above halfway rounds up
  [Math.fround(0.1), 0x2e66],
  [Math.fround(-1 / 3), 0xb555],
];

test("float16 Cast in the runtime matches toHalf, including subnormals, infinities and ties to even", async () => {
  const b = new Builder();
  const x = b.graph.input("x", "float32", [HALF_CASES.length + 2]);
  b.graph.output(b.cast(x, "float16"), "half");
  b.graph.output(b.cast(b.cast(x, "float16"), "float32"), "back");
  const session = await Session.create(toOnnx(b.graph));
  try {
    const inputs = Float32Array.from([...HALF_CASES.map(([v]) => v), NaN, -NaN]);
    HALF_CASES.forEach(([v], i) => assert.equal(inputs[i], v, `test value ${v} must be exact in float32`));
    const out = await session.run({ x: { dtype: "float32", shape: [inputs.length], data: inputs } });
    const half = out.half.data as Uint16Array;
    const back = out.back.data as Float32Array;
    HALF_CASES.forEach(([v, bits], i) => {
      const hex = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;
      assert.equal(hex(toHalf(v)), hex(bits), `toHalf(${v})`);
      assert.equal(hex(half[i]), hex(bits), `runtime Cast(${v}) to float16`);
      assert.ok(Object.is(back[i], fromHalf(bits)), `runtime float16 ${hex(bits)} back to float32: ${back[i]} vs ${fromHalf(bits)}`);
    });
    for (const i of [HALF_CASES.length, HALF_CASES.length + 1]) {
      assert.ok(isHalfNaN(half[i]), `runtime NaN -> ${half[i].toString(16)}`);
      assert.ok(Number.isNaN(back[i]));
    }
    assert.ok(isHalfNaN(toHalf(NaN)));
  } finally {
    await session.release();
  }
});

test("float16 constants from float64 numbers agree with the runtime's float64 -> float16 Cast", async () => {
  const values = [0.1, -1 / 3, 70000.5, 1 + 3 * 2 ** -11, 2 ** -24 * 3.7, 1234.5678];
  const b = new Builder();
  const x = b.graph.input("x", "float64", [values.length]);
  b.graph.output(b.cast(x, "float16"), "half");
  b.graph.output(b.constant(values, [values.length], "float16", "c"), "c_out");
  const session = await Session.create(toOnnx(b.graph));
  try {
    const out = await session.run({ x: { dtype: "float64", shape: [values.length], data: Float64Array.from(values) } });
    assert.deepEqual(Array.from(out.half.data as Uint16Array), values.map(toHalf));
    assert.deepEqual(Array.from(out.c_out.data as Uint16Array), values.map(toHalf));
  } finally {
    await session.release();
  }
});

test(
  "toHalf rounds a float64 once (no double rounding through float32)",
  { todo: "toHalf narrows to float32 first; onnxruntime's double->half Cast does the same, see the report" },
  () => {
    // 1 + 2^-11 + 2^-40 lies above the midpoint 1 + 2^-11, so it must round up to 1 + 2^-10 (0x3c01); via float32 the
    // 2^-40 is lost, leaving an exact tie that goes to even (0x3c00). Likewise just above half the smallest subnormal.
    assert.equal(toHalf(1 + 2 ** -11 + 2 ** -40), 0x3c01);
    assert.equal(toHalf(2 ** -25 + 2 ** -50), 0x0001);
  },
);

test("nodes no output depends on are not written (an op the runtime lacks would fail the session if they were)", async () => {
  const b = new Builder();
  const x = b.graph.input("x", "float32", [2]);
  const unused = b.constant([1, 2], [2], "float32", "only_read_by_dead_node");
  b.op("NoSuchOp", [b.add(x, unused)], [{ dtype: "float32", shape: [2] }]);
  b.graph.output(b.mul(x, b.scalar(3)), "y");
  const live = liveNodes(b.graph);
  assert.deepEqual(
    live.map((n) => n.op),
    ["Mul", "Identity"],
  );
  const bytes = toOnnx(b.graph);
  assert.ok(!Buffer.from(bytes).includes("only_read_by_dead_node"), "an initializer only dead nodes read is left out too");
  const session = await Session.create(bytes);
  try {
    const { y } = await session.run({ x: { dtype: "float32", shape: [2], data: Float32Array.from([1, -2]) } });
    assert.deepEqual(Array.from(y.data as Float32Array), [3, -6]);
  } finally {
    await session.release();
  }
});
