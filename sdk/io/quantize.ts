/**
 * Host-side block quantisation of frozen weights, as bitsandbytes does for QLoRA: each block of `blockSize`
 * consecutive weights (of the flat [out, in] matrix) is scaled by its absolute maximum and every value is rounded to
 * the nearest level of the code book (NF4 or FP4); the block scales can themselves be quantised to 8 bits in blocks of
 * 256 after subtracting their mean ("double quantisation"). int4 / int8 are onnxruntime MatMulNBits' symmetric
 * block formats: step = (the block's value of largest magnitude) / -8 (int4) or / -128 (int8), zero point 8 / 128.
 */
import { codeValues, QUANT_BITS, type QuantType } from "../graph/quant";

/** How a base is quantised: the data type, weights per block, and whether NF4/FP4 block scales are quantised too. */
export interface QuantConfig {
  type: QuantType;
  blockSize: number;
  doubleQuant: boolean;
}

/** Scales per block of the double quantisation (bitsandbytes' nested blocksize). */
export const DOUBLE_QUANT_BLOCK = 256;

/** Linear weights of the decoder layers: the tensors a quantised base quantises (embeddings, norms and lm_head stay). */
export const QUANTIZED_WEIGHT = /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;

/** Checks a quantisation config; throws naming what tunelab accepts. */
export function checkQuantConfig(q: QuantConfig): void {
  if (!["nf4", "fp4", "int4", "int8"].includes(q.type)) throw new Error(`quantization type "${q.type}" is not one of nf4, fp4, int4 (4-bit) or int8 (8-bit)`);
  if (!Number.isInteger(q.blockSize) || q.blockSize < 16 || q.blockSize > 4096 || (q.blockSize & (q.blockSize - 1)) !== 0) {
    throw new Error(`quantization block size ${q.blockSize} must be a power of two from 16 to 4096 (bitsandbytes' default is 64)`);
  }
}

/** The codes and per-block scales of some whole blocks. */
export interface QuantizedBlocks {
  /** Packed codes: two 4-bit codes per byte (see graph/quant byteTable for the nibble order) or one 8-bit code. */
  codes: Uint8Array;
  /** float32 per block: absmax (NF4/FP4) or the signed step (int4/int8). */
  scales: Float32Array;
}

/** Sorted code values with the midpoints between neighbours, for nearest-level rounding (ties to the lower level). */
interface Levels {
  values: Float64Array;
  index: Uint8Array;
  mids: Float64Array;
}

function levels(code: readonly number[], only?: (i: number) => boolean): Levels {
  const order = code.map((v, i) => [v, i] as const).filter(([, i]) => !only || only(i));
  order.sort((a, b) => a[0] - b[0]);
  const values = Float64Array.from(order, ([v]) => v);
  const mids = new Float64Array(values.length - 1);
  for (let i = 0; i < mids.length; i++) mids[i] = (values[i] + values[i + 1]) / 2;
  return { values, index: Uint8Array.from(order, ([, i]) => i), mids };
}

/** The code of the level nearest `v` (bitsandbytes' comparison tree: a value on a midpoint takes the lower level). */
function nearest(l: Levels, v: number): number {
  let lo = 0;
  let hi = l.mids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v > l.mids[mid]) lo = mid + 1;
    else hi = mid;
  }
  return l.index[lo];
}

const NF4_LEVELS = levels(codeValues("nf4"));
/** FP4's magnitudes (codes 0-7); the sign is bit 3. */
const FP4_LEVELS = levels(codeValues("fp4"), (i) => i < 8);

/** The 4-bit code of a value in [-1, 1] (already divided by its block's absmax). */
function code4(type: "nf4" | "fp4", v: number): number {
  return type === "nf4" ? nearest(NF4_LEVELS, v) : (v < 0 ? 8 : 0) | nearest(FP4_LEVELS, Math.abs(v));
}

/** Buckets of [-1, 1] for the fast path: most hold one code; those holding a level boundary (-1) take the exact search. */
const LUT_SIZE = 8192;

function lookupTable(type: "nf4" | "fp4"): Int8Array {
  const bounds = type === "nf4" ? [...NF4_LEVELS.mids] : [0, ...[...FP4_LEVELS.mids].flatMap((m) => [m, -m])];
  const lut = new Int8Array(LUT_SIZE);
  for (let j = 0; j < LUT_SIZE; j++) {
    const lo = -1 + (2 * j) / LUT_SIZE;
    const hi = -1 + (2 * (j + 1)) / LUT_SIZE;
    lut[j] = bounds.some((m) => m >= lo && m <= hi) ? -1 : code4(type, (lo + hi) / 2);
  }
  return lut;
}

const LUTS = { nf4: lookupTable("nf4"), fp4: lookupTable("fp4") };

/** Quantises whole blocks of `data` (its length a multiple of blockSize). */
export function quantizeBlocks(data: Float32Array, type: QuantType, blockSize: number): QuantizedBlocks {
  if (data.length % blockSize !== 0) throw new Error(`quantizeBlocks: ${data.length} values are not whole blocks of ${blockSize}`);
  const blocks = data.length / blockSize;
  const scales = new Float32Array(blocks);
  const q = new Uint8Array(data.length);
  for (let blk = 0; blk < blocks; blk++) {
    const from = blk * blockSize;
    let extreme = 0;
    for (let i = from; i < from + blockSize; i++) if (Math.abs(data[i]) > Math.abs(extreme)) extreme = data[i];
    if (type === "nf4" || type === "fp4") {
      const absmax = Math.fround(Math.abs(extreme));
      scales[blk] = absmax;
      const inv = absmax === 0 ? 0 : Math.fround(1 / absmax);
      const lut = LUTS[type];
      for (let i = from; i < from + blockSize; i++) {
        const v = Math.fround(data[i] * inv);
        const fast = lut[Math.min(LUT_SIZE - 1, ((v + 1) * (LUT_SIZE / 2)) | 0)];
        q[i] = fast >= 0 ? fast : code4(type, v);
      }
    } else {
      const zero = type === "int4" ? 8 : 128;
      const step = Math.fround(extreme / -zero);
      scales[blk] = step;
      const inv = step === 0 ? 0 : 1 / step;
      for (let i = from; i < from + blockSize; i++) q[i] = Math.min(2 * zero - 1, Math.max(0, Math.round(data[i] * inv) + zero));
    }
  }
  return { codes: pack(q, type), scales };
}

/** Packs one code per element into bytes. */
function pack(q: Uint8Array, type: QuantType): Uint8Array {
  if (QUANT_BITS[type] === 8) return q;
  const out = new Uint8Array(q.length / 2);
  for (let i = 0; i < out.length; i++) {
    const [a, b] = [q[2 * i], q[2 * i + 1]];
    out[i] = type === "int4" ? a | (b << 4) : (a << 4) | b;
  }
  return out;
}

/** The values blocks of codes stand for (the inverse of quantizeBlocks, up to rounding), as float32. */
export function dequantizeBlocks(codes: Uint8Array, scales: Float32Array, type: QuantType, blockSize: number): Float32Array {
  const code = codeValues(type);
  const out = new Float32Array(scales.length * blockSize);
  for (let i = 0; i < out.length; i++) {
    let c: number;
    if (type === "int8") c = codes[i];
    else {
      const byte = codes[i >> 1];
      const first = i % 2 === 0;
      c = type === "int4" ? (first ? byte & 15 : byte >> 4) : first ? byte >> 4 : byte & 15;
    }
    out[i] = Math.fround(Math.fround(code[c]) * scales[Math.floor(i / blockSize)]);
  }
  return out;
}

/**
 * bitsandbytes' signed dynamic 8-bit map (functional.create_dynamic_map(signed=True)): per decade 10^-6..10^0 the
 * midpoints of an evenly spaced grid on [0.1, 1] (2^i of them in decade i), both signs, plus 0 and 1; sorted.
 */
export const DYNAMIC_CODE: Float32Array = (() => {
  const data: number[] = [];
  for (let i = 0; i < 7; i++) {
    const n = 2 ** i + 1;
    const step = Math.fround(0.9 / (n - 1));
    const bounds = Array.from({ length: n }, (_, j) => (j === n - 1 ? 1 : Math.fround(0.1 + step * j)));
    for (let j = 0; j + 1 < n; j++) {
      const mean = Math.fround((bounds[j] + bounds[j + 1]) / 2);
      data.push(10 ** (i - 6) * mean, -(10 ** (i - 6)) * mean);
    }
  }
  data.push(0, 1);
  return Float32Array.from(data.sort((a, b) => a - b));
})();

const DYNAMIC_LEVELS = levels(Array.from(DYNAMIC_CODE));

/** Block scales quantised as bitsandbytes' nested (double) quantisation does. */
export interface DoubleQuantized {
  /** 8-bit codes into DYNAMIC_CODE, padded to whole blocks of 256. */
  codes: Uint8Array;
  /** float32 absmax of each block of 256 centred scales. */
  absmax: Float32Array;
  /** The mean subtracted from every scale first. */
  offset: number;
}

/** Double-quantises float32 block scales: subtract their mean, then 8-bit dynamic codes in blocks of 256. */
export function doubleQuantize(scales: Float32Array): DoubleQuantized {
  let sum = 0;
  for (const s of scales) sum += s;
  const offset = Math.fround(sum / scales.length);
  const padded = Math.ceil(scales.length / DOUBLE_QUANT_BLOCK) * DOUBLE_QUANT_BLOCK;
  const centred = new Float32Array(padded);
  for (let i = 0; i < scales.length; i++) centred[i] = scales[i] - offset;
  const absmax = new Float32Array(padded / DOUBLE_QUANT_BLOCK);
  const codes = new Uint8Array(padded);
  for (let blk = 0; blk < absmax.length; blk++) {
    let m = 0;
    for (let i = blk * DOUBLE_QUANT_BLOCK; i < (blk + 1) * DOUBLE_QUANT_BLOCK; i++) m = Math.max(m, Math.abs(centred[i]));
    absmax[blk] = m;
    const inv = m === 0 ? 0 : Math.fround(1 / m);
    for (let i = blk * DOUBLE_QUANT_BLOCK; i < (blk + 1) * DOUBLE_QUANT_BLOCK; i++) codes[i] = nearest(DYNAMIC_LEVELS, Math.fround(centred[i] * inv));
  }
  return { codes, absmax, offset };
}

/** The block scales a double quantisation stands for (`count` of them), float32 as the graph computes them. */
export function doubleDequantize(d: DoubleQuantized, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.fround(Math.fround(DYNAMIC_CODE[d.codes[i]] * d.absmax[Math.floor(i / DOUBLE_QUANT_BLOCK)]) + d.offset);
  return out;
}
