/** The gradient rules of MatMulBnb4 / MatMulNBits (dX through the dequantised weight) against finite differences. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { quantizedLinear, type QuantType } from "../../sdk/graph/quant";
import { dequantChunk } from "../../sdk/graph/quant";
import { quantizeBlocks } from "../../sdk/io/quantize";
import { Rng } from "../../sdk/util/random";
import { gradCheck } from "./gradcheck";

for (const type of ["nf4", "fp4", "int4", "int8"] as const satisfies readonly QuantType[]) {
  test(`${type}: dX of x·Wᵀ through the quantised kernel matches central differences (rows dequantised in chunks)`, async () => {
    const [n, k, blockSize] = [6, 32, 16];
    const rng = new Rng(3);
    const q = quantizeBlocks(
      Float32Array.from({ length: n * k }, () => rng.normal()),
      type,
      blockSize,
    );
    const saved = dequantChunk.values;
    dequantChunk.values = 2 * k; // three chunks of two rows
    try {
      // The product is linear in x, so a large step is exact up to float32 rounding of the kernel's output.
      const r = await gradCheck({
        op: `MatMul ${type}`,
        inputs: [{ shape: [5, k] }],
        h: 1e-2,
        atol: 2e-4,
        rtol: 2e-4,
        build: (b, [x]) =>
          quantizedLinear(b, b.cast(x, "float32"), {
            type,
            n,
            k,
            blockSize,
            codes: b.constant(q.codes, [q.codes.length], "uint8"),
            scales: { kind: "plain", values: b.constant(q.scales, [q.scales.length], "float32") },
          }),
      });
      assert.ok(
        r.grads[0]!.some((g) => Math.abs(g) > 1e-3),
        "a non-trivial gradient",
      );
    } finally {
      dequantChunk.values = saved;
    }
  });
}
