/**
 * Block-quantised frozen weights in graphs: the 4-bit code books (bitsandbytes' NF4 and FP4), onnxruntime's
 * com.microsoft MatMulBnb4 / MatMulNBits kernels for the forward product, and in-graph dequantisation of one weight
 * for the input gradient. Every dequantisation is gated on a run-time activation (its first element times zero), so
 * onnxruntime can neither constant-fold it at session creation (which would rebuild the float32 model) nor run it
 * before the value it waits for exists.
 */
import { int, Node, Value } from "./ir";
import { Builder } from "./ops";

/** The 4-bit data types and the 8-bit one: NF4 / FP4 (bitsandbytes), int4 / int8 (MatMulNBits, symmetric). */
export type QuantType = "nf4" | "fp4" | "int4" | "int8";

/**
 * NF4: the 16 normal-float levels of QLoRA (Dettmers et al. 2023, appendix E), exactly as bitsandbytes' kernels
 * and onnxruntime's MatMulBnb4 hold them.
 */
export const NF4_CODE: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** FP4 (bitsandbytes' E2M1 variant): bit 3 is the sign, bits 0-2 index the magnitudes below. */
export const FP4_CODE: readonly number[] = [
  0, 0.005208333333, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25, -0, -0.005208333333, -0.66666667, -1.0, -0.33333333, -0.5, -0.16666667, -0.25,
];

/** Bits per weight of each type. */
export const QUANT_BITS: Readonly<Record<QuantType, 4 | 8>> = { nf4: 4, fp4: 4, int4: 4, int8: 8 };

/** The value of each code of a type, before scaling (int types: the signed integer, zero point removed). */
export function codeValues(type: QuantType): readonly number[] {
  if (type === "nf4") return NF4_CODE;
  if (type === "fp4") return FP4_CODE;
  if (type === "int4") return Array.from({ length: 16 }, (_, q) => q - 8);
  return Array.from({ length: 256 }, (_, q) => q - 128);
}

/**
 * How the codes of a byte are laid out: bitsandbytes (and MatMulBnb4) put the first of two 4-bit codes in the high
 * nibble, MatMulNBits in the low nibble.
 */
export function byteTable(type: QuantType): Float32Array {
  const code = codeValues(type);
  if (type === "int8") return Float32Array.from(code);
  const table = new Float32Array(512);
  for (let byte = 0; byte < 256; byte++) {
    const [first, second] = type === "int4" ? [byte & 15, byte >> 4] : [byte >> 4, byte & 15];
    table[2 * byte] = code[first];
    table[2 * byte + 1] = code[second];
  }
  return table;
}

/** A block-quantised [N, K] weight in a graph: its packed codes, per-block scales and layout. */
export interface QuantizedMatrix {
  type: QuantType;
  /** Output features (rows of the [out, in] weight). */
  n: number;
  /** Input features. */
  k: number;
  blockSize: number;
  /** uint8 initializer, the N·K codes packed row-major (two 4-bit codes or one 8-bit code per byte), flat. */
  codes: Value;
  /** Per-block scales (absmax for NF4/FP4, signed step for int4/int8), or how to rebuild them (double quantisation). */
  scales: ScaleSource;
}

/** Float32 scales as an initializer, or double-quantised as bitsandbytes: 8-bit codes, per-256-block absmax, offset. */
export type ScaleSource =
  { kind: "plain"; values: Value } | { kind: "double"; codes: Value; absmax: Value; offset: Value; code: Value; blocks: number; blockSize: number };

/** A bool scalar that is true, computed from `like` at run time (everything gated on it waits for `like`). */
export function runtimeTrue(b: Builder, like: Value): Value {
  const first = b.reshape(b.slice(b.reshape(like, [-1]), [0], [1], [0]), []);
  const zero = b.cast(b.mul(first, b.scalarLike(0, first)), "float32");
  // x·0 is 0 unless x is infinite or NaN; the gate must hold whatever the activation is, so compare 0 with itself or NaN.
  return b.not(b.compare("Less", zero, b.scalar(Number.NEGATIVE_INFINITY)));
}

/** `v` unchanged, but computed only once `gate` exists (a Where both of whose branches are `v`). */
function gated(b: Builder, v: Value, gate: Value): Value {
  return b.where(gate, v, v);
}

/** The per-block scales as float32 [blocks], rebuilding double-quantised ones (gated on `gate`). */
export function blockScales(b: Builder, m: QuantizedMatrix, gate: Value): Value {
  const s = m.scales;
  if (s.kind === "plain") return s.values;
  const idx = b.cast(gated(b, s.codes, gate), "int32");
  const padded = s.codes.shape[0] as number;
  const values = b.reshape(b.gather(s.code, idx, 0), [padded / s.blockSize, s.blockSize]);
  const scaled = b.add(b.reshape(b.mul(values, b.unsqueeze(s.absmax, [1])), [-1]), s.offset);
  return padded === s.blocks ? scaled : b.slice(scaled, [0], [s.blocks], [0]);
}

/** The dequantised weight [N, K] in `dtype`, computed only when `gateOn` has been computed. */
export function dequantize(b: Builder, m: QuantizedMatrix, gateOn: Value, scales?: Value): Value {
  const gate = runtimeTrue(b, gateOn);
  const perByte = m.type === "int8" ? 1 : 2;
  const table = b.constant(byteTable(m.type), perByte === 1 ? [256] : [256, 2], "float32", `${m.type}_byte_table`);
  const values = b.gather(table, b.cast(gated(b, m.codes, gate), "int32"), 0); // [NK/perByte(, 2)]
  const blocks = (m.n * m.k) / m.blockSize;
  const s = scales ?? blockScales(b, m, gate);
  const w = b.mul(b.reshape(values, [blocks, m.blockSize]), b.unsqueeze(s, [1]));
  return b.cast(b.reshape(w, [m.n, m.k]), gateOn.dtype);
}

/**
 * x @ Wᵀ for a quantised [N, K] weight: MatMulBnb4 for NF4/FP4 (bitsandbytes' layout and code book), MatMulNBits
 * for int4/int8. Its gradient rule (quantRules) dequantises W for dX = dY·W only when dY exists.
 */
export function quantizedLinear(b: Builder, x: Value, m: QuantizedMatrix): Value {
  if (x.shape[x.rank - 1] !== m.k && typeof x.shape[x.rank - 1] === "number") throw new Error(`quantizedLinear: input ${x} does not have ${m.k} features`);
  const scales = b.cast(blockScales(b, m, runtimeTrue(b, x)), x.dtype);
  const shape = [...x.shape.slice(0, -1), m.n];
  const attrs = { K: int(m.k), N: int(m.n), block_size: int(m.blockSize) };
  if (m.type === "nf4" || m.type === "fp4") {
    return b.graph.addNode(
      "MatMulBnb4",
      [x, m.codes, scales],
      [{ dtype: x.dtype, shape }],
      { ...attrs, quant_type: int(m.type === "nf4" ? 1 : 0) },
      "com.microsoft",
    )[0];
  }
  const bits = QUANT_BITS[m.type];
  const blob = (m.blockSize * bits) / 8;
  const codes = b.reshape(m.codes, [m.n, m.k / m.blockSize, blob]);
  return b.graph.addNode("MatMulNBits", [x, codes, scales], [{ dtype: x.dtype, shape }], { ...attrs, bits: int(bits) }, "com.microsoft")[0];
}

/** The matrix a MatMulBnb4 / MatMulNBits node multiplies by, recovered from its inputs and attributes. */
function matrixOf(node: Node): QuantizedMatrix & { scaleValues: Value } {
  const [, codes, scales] = node.inputs;
  const attr = (k: string) => {
    const a = node.attrs[k];
    if (!a || a.kind !== "int") throw new Error(`${node.op} (node ${node.index}): attribute ${k} missing`);
    return a.value;
  };
  const type: QuantType = node.op === "MatMulBnb4" ? (attr("quant_type") === 1 ? "nf4" : "fp4") : attr("bits") === 8 ? "int8" : "int4";
  // MatMulNBits takes the codes reshaped to [N, blocks, blob]; the flat initializer is the reshape's input.
  const flat = node.op === "MatMulNBits" && codes!.producer ? codes!.producer.inputs[0]! : codes!;
  return { type, n: attr("N"), k: attr("K"), blockSize: attr("block_size"), codes: flat, scales: { kind: "plain", values: scales! }, scaleValues: scales! };
}

/** Weights dequantised at a time in the backward pass (default 4M: 16 MiB of float32); graphs built later use a new value. */
export const dequantChunk = { values: 1 << 22 };

/**
 * dX = dY·W with W dequantised in the backward pass, gated on dY, a chunk of rows at a time: dX = Σ dY[:, rows]·W[rows]
 * keeps the float32 part of W at most dequantChunk.values values. The quantised weight itself is never differentiated.
 */
function quantizedMatMulGrad(b: Builder, node: Node, dys: readonly (Value | null)[], needs: readonly boolean[]): (Value | null)[] {
  if (needs.slice(1).some(Boolean)) throw new Error(`${node.op} (node ${node.index}): a quantised weight is frozen and has no gradient`);
  if (!needs[0]) return [null, null, null];
  const dy = dys[0]!;
  const m = matrixOf(node);
  const x = node.inputs[0]!;
  const flat = dy.rank === 2 ? dy : b.reshape(dy, [-1, m.n]);
  const terms = rowChunks(b, m, b.cast(m.scaleValues, "float32"), runtimeTrue(b, flat), dy.dtype, (w, r0, r1) =>
    b.gemm(r0 === 0 && r1 === m.n ? flat : b.slice(flat, [r0], [r1], [1]), w),
  );
  let dx = terms.reduce((sum, term) => b.add(sum, term));
  if (x.rank !== 2) dx = b.reshapeTo(dx, b.shapeOf(x), x.shape);
  return [dx, null, null];
}

/**
 * Σ_k W[n, k]² of each row of a quantised weight, float32 [N] (DoRA's weight norm), dequantising a chunk of rows at a
 * time once `gateOn` is computed.
 */
export function quantizedRowSquares(b: Builder, m: QuantizedMatrix, gateOn: Value): Value {
  const gate = runtimeTrue(b, gateOn);
  const parts = rowChunks(b, m, blockScales(b, m, gate), gate, "float32", (w) => b.reduceSumSquare(w, [1]));
  return parts.length === 1 ? parts[0] : b.concat(parts, 0);
}

/**
 * `use(W[r0:r1], r0, r1)` for each chunk of at most dequantChunk.values weights of a quantised [N, K] matrix, with
 * its codes gated on `gate` and `scales` its float32 per-block scales; the results in row order.
 */
function rowChunks(
  b: Builder,
  m: QuantizedMatrix,
  scales: Value,
  gate: Value,
  dtype: Value["dtype"],
  use: (w: Value, r0: number, r1: number) => Value,
): Value[] {
  const codes = gated(b, m.codes, gate);
  const bytesPerRow = (m.k * QUANT_BITS[m.type]) / 8;
  const blocksPerRow = m.k / m.blockSize;
  const rows = Math.max(1, Math.floor(dequantChunk.values / m.k));
  const out: Value[] = [];
  for (let r0 = 0; r0 < m.n; r0 += rows) {
    const r1 = Math.min(m.n, r0 + rows);
    const part: QuantizedMatrix = { ...m, n: r1 - r0, codes: b.slice(codes, [r0 * bytesPerRow], [r1 * bytesPerRow], [0]) };
    out.push(use(dequantizeGated(b, part, b.slice(scales, [r0 * blocksPerRow], [r1 * blocksPerRow], [0]), dtype), r0, r1));
  }
  return out;
}

/** W [n, k] in `dtype` from codes that are already gated (no constant folding can reach them) and float32 scales. */
function dequantizeGated(b: Builder, m: QuantizedMatrix, scales: Value, dtype: Value["dtype"]): Value {
  const perByte = m.type === "int8" ? 1 : 2;
  const table = b.constant(byteTable(m.type), perByte === 1 ? [256] : [256, 2], "float32", `${m.type}_byte_table`);
  const values = b.gather(table, b.cast(m.codes, "int32"), 0);
  const w = b.mul(b.reshape(values, [(m.n * m.k) / m.blockSize, m.blockSize]), b.unsqueeze(scales, [1]));
  return b.cast(b.reshape(w, [m.n, m.k]), dtype);
}

/** Gradient rules of the quantised matrix products (the A input only). */
export const quantRules = { MatMulBnb4: quantizedMatMulGrad, MatMulNBits: quantizedMatMulGrad };
