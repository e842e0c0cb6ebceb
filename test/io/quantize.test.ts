/** Block quantisation on the host: the NF4 / FP4 code books, absmax block scaling and round trips, by hand. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FP4_CODE, NF4_CODE } from "../../sdk/graph/quant";
import { DYNAMIC_CODE, dequantizeBlocks, doubleDequantize, doubleQuantize, quantizeBlocks } from "../../sdk/io/quantize";

/** The NF4 levels as printed in the QLoRA paper (Dettmers et al. 2023, appendix E) and bitsandbytes' kernels. */
const PUBLISHED_NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

test("the NF4 code book is the published one: 7 negative levels, an exact zero, 8 positive levels, ends at -1 and 1", () => {
  assert.deepEqual([...NF4_CODE], PUBLISHED_NF4);
  assert.equal(NF4_CODE.filter((v) => v < 0).length, 7);
  assert.equal(NF4_CODE.filter((v) => v > 0).length, 8);
  for (let i = 1; i < 16; i++) assert.ok(NF4_CODE[i] > NF4_CODE[i - 1], "sorted");
});

test("NF4 block scaling: each value divided by its block's absmax goes to the nearest level (hand-worked block)", () => {
  // Block of 16: absmax 2. x/2 = 1 -> level 15; -0.5/2=-0.25 is nearest -0.28444 (level 4; midpoint to -0.18477 is -0.2346);
  // 0.3/2=0.15 nearest 0.16093 (level 9); 0 -> level 7; -2/2=-1 -> level 0; 0.9/2=0.45 -> 0.44071 (level 12).
  const block = new Float32Array([2, -0.5, 0.3, 0, -2, 0.9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const q = quantizeBlocks(block, "nf4", 16);
  assert.deepEqual([...q.scales], [2]);
  // Two codes per byte, the first in the high nibble (bitsandbytes' order).
  assert.deepEqual([...q.codes.slice(0, 3)], [(15 << 4) | 4, (9 << 4) | 7, (0 << 4) | 12]);
  const back = dequantizeBlocks(q.codes, q.scales, "nf4", 16);
  const expected = [2, 2 * -0.28444138169288635, 2 * 0.16093020141124725, 0, -2, 2 * 0.44070982933044434];
  expected.forEach((v, i) => assert.equal(back[i], Math.fround(Math.fround(v / 2) * 2)));
});

test("FP4: bit 3 is the sign, magnitudes as bitsandbytes' E2M1 table; int4/int8 are symmetric with zero point 8/128", () => {
  assert.equal(FP4_CODE[3], 1);
  assert.equal(FP4_CODE[11], -1);
  const q = quantizeBlocks(new Float32Array([4, -2, 1, 0]), "fp4", 4); // /4: 1 -> 3, -0.5 -> 8|5, 0.25 -> 7, 0 -> 0
  assert.deepEqual([...q.codes], [(3 << 4) | 13, (7 << 4) | 0]);
  const i4 = quantizeBlocks(new Float32Array([-8, 4, 1, 7.9]), "int4", 4); // step = -8/-8 = 1; q = round(x) + 8
  assert.deepEqual([...i4.scales], [1]);
  assert.deepEqual([...i4.codes], [0 | (12 << 4), 9 | (15 << 4)]); // first code in the low nibble (MatMulNBits)
  const i8 = quantizeBlocks(new Float32Array([0.5, -1, 0.25, 0]), "int8", 4); // step = -1/-128
  assert.equal(i8.scales[0], Math.fround(1 / 128));
  assert.deepEqual([...i8.codes], [192, 0, 160, 128]);
});

test("quantise then dequantise: every value within half a level gap of its block's scale; exact for values on the grid", () => {
  const n = 64 * 40;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 64) / 10));
  for (const type of ["nf4", "fp4", "int4", "int8"] as const) {
    const q = quantizeBlocks(x, type, 64);
    const back = dequantizeBlocks(q.codes, q.scales, type, 64);
    // NF4/FP4: half the widest gap between levels (0.7230..1 and 0.6667..1) times absmax; int: one step (the
    // positive end clamps at +7/+127 when the block's extreme, mapped to -8/-128, is negative).
    const gap = type === "int8" || type === "int4" ? 1 : 0.17;
    for (let i = 0; i < n; i++) assert.ok(Math.abs(back[i] - x[i]) <= gap * Math.abs(q.scales[Math.floor(i / 64)]) + 1e-6, `${type} [${i}]`);
    // Quantising the dequantised values again gives them back (they lie on the grid; FP4's -0 comes back as +0).
    const again = quantizeBlocks(back, type, 64);
    const twice = dequantizeBlocks(again.codes, again.scales, type, 64);
    for (let i = 0; i < n; i++) assert.ok(twice[i] === back[i], `${type} [${i}]: ${twice[i]} vs ${back[i]}`);
  }
});

test("double quantisation: the dynamic map has 256 sorted levels, 0 and 1 among them, and rebuilds scales within 1%", () => {
  assert.equal(DYNAMIC_CODE.length, 256);
  // create_dynamic_map(signed=True): the most negative level is -(midpoint of the last grid step of [0.1, 1] in 64).
  assert.ok(Math.abs(DYNAMIC_CODE[0] - -(1 + (1 - 0.9 / 64)) / 2) < 1e-6, `${DYNAMIC_CODE[0]}`);
  assert.equal(DYNAMIC_CODE[255], 1);
  assert.ok(DYNAMIC_CODE.includes(0));
  for (let i = 1; i < 256; i++) assert.ok(DYNAMIC_CODE[i] >= DYNAMIC_CODE[i - 1]);
  const scales = Float32Array.from({ length: 700 }, (_, i) => 0.05 + 0.02 * Math.abs(Math.sin(i)));
  const d = doubleQuantize(scales);
  assert.equal(d.codes.length, 768, "padded to whole blocks of 256");
  assert.equal(d.absmax.length, 3);
  const back = doubleDequantize(d, 700);
  for (let i = 0; i < 700; i++) assert.ok(Math.abs(back[i] - scales[i]) < 0.01 * scales[i], `${i}: ${back[i]} vs ${scales[i]}`);
});
