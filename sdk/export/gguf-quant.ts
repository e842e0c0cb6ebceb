/**
 * ggml's reference block quantisers (ggml-quants.c `quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`), bit for bit,
 * and their inverses. Q8_0: blocks of 32 as an fp16 scale d = max|x| / 127 and 32 int8 round(x / d). Q4_0: blocks
 * of 32 as an fp16 scale d = m / -8 (m the value of largest magnitude) and 32 4-bit codes min(15, trunc(x / d + 8.5)),
 * element j in the low nibble of byte j and element j + 16 in its high nibble.
 */
import { f16BitsToFloat32, float32ToF16Bits } from "../util/float16";

const QK = 32;

function checkRows(data: Float32Array, type: string): number {
  if (data.length % QK !== 0) throw new Error(`${type}: ${data.length} values are not a whole number of ${QK}-value blocks`);
  return data.length / QK;
}

/** C's roundf: halves away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Rounds a float to fp16 and back (what the stored scale is). */
function f16(x: number): { bits: number; value: number } {
  const bits = float32ToF16Bits([x])[0];
  return { bits, value: f16BitsToFloat32(Uint16Array.of(bits))[0] };
}

/** Q8_0 blocks of `data` (length a multiple of 32): 34 bytes per block. */
export function quantizeQ8_0(data: Float32Array): Uint8Array {
  const blocks = checkRows(data, "Q8_0");
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(data[b * QK + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, f16(d).bits, true);
    for (let j = 0; j < QK; j++) view.setInt8(b * 34 + 2 + j, roundf(Math.fround(data[b * QK + j] * id)));
  }
  return out;
}

/** Q4_0 blocks of `data` (length a multiple of 32): 18 bytes per block. */
export function quantizeQ4_0(data: Float32Array): Uint8Array {
  const blocks = checkRows(data, "Q4_0");
  const out = new Uint8Array(blocks * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = data[b * QK + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 18, f16(d).bits, true);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = Math.fround(data[b * QK + j] * id);
      const x1 = Math.fround(data[b * QK + QK / 2 + j] * id);
      const q0 = Math.min(15, Math.trunc(Math.fround(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(x1 + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** The values Q8_0 blocks stand for. */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 34;
  const out = new Float32Array(blocks * QK);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const d = f16BitsToFloat32(Uint16Array.of(view.getUint16(b * 34, true)))[0];
    for (let j = 0; j < QK; j++) out[b * QK + j] = view.getInt8(b * 34 + 2 + j) * d;
  }
  return out;
}

/** The values Q4_0 blocks stand for. */
export function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 18;
  const out = new Float32Array(blocks * QK);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const d = f16BitsToFloat32(Uint16Array.of(view.getUint16(b * 18, true)))[0];
    for (let j = 0; j < QK / 2; j++) {
      const q = bytes[b * 18 + 2 + j];
      out[b * QK + j] = ((q & 0xf) - 8) * d;
      out[b * QK + QK / 2 + j] = ((q >> 4) - 8) * d;
    }
  }
  return out;
}
