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

const QK_K = 256;

function superBlocks(data: Float32Array, type: string): number {
  if (data.length % QK_K !== 0) throw new Error(`${type}: ${data.length} values are not a whole number of ${QK_K}-value super-blocks`);
  return data.length / QK_K;
}

/**
 * Q4_K blocks (ggml's block_q4_K, 144 bytes per 256 values): 8 sub-blocks of 32, each with a 6-bit scale and min
 * under fp16 super-scales d and dmin; a value is d·sc·q − dmin·m with q in 0..15. Scales here come from each
 * sub-block's min and max (ggml's reference also searches them; any scales in the format decode the same way).
 */
export function quantizeQ4_K(data: Float32Array): Uint8Array {
  const blocks = superBlocks(data, "Q4_K");
  const out = new Uint8Array(blocks * 144);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const x = data.subarray(b * QK_K, (b + 1) * QK_K);
    const scales = new Float32Array(8);
    const mins = new Float32Array(8);
    for (let j = 0; j < 8; j++) {
      let lo = 0;
      let hi = -Infinity;
      for (let i = 0; i < 32; i++) {
        lo = Math.min(lo, x[32 * j + i]);
        hi = Math.max(hi, x[32 * j + i]);
      }
      scales[j] = (hi - lo) / 15;
      mins[j] = -lo; // >= 0
    }
    const maxScale = Math.max(...scales);
    const maxMin = Math.max(...mins);
    const d = f16(maxScale / 63);
    const dmin = f16(maxMin / 63);
    const ls = Array.from(scales, (s) => (d.value > 0 ? Math.min(63, Math.round(s / d.value)) : 0));
    const lm = Array.from(mins, (m) => (dmin.value > 0 ? Math.min(63, Math.round(m / dmin.value)) : 0));
    const o = b * 144;
    view.setUint16(o, d.bits, true);
    view.setUint16(o + 2, dmin.bits, true);
    const sc = out.subarray(o + 4, o + 16);
    for (let j = 0; j < 8; j++) {
      if (j < 4) {
        sc[j] = ls[j];
        sc[j + 4] = lm[j];
      } else {
        sc[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
        sc[j - 4] |= (ls[j] >> 4) << 6;
        sc[j] |= (lm[j] >> 4) << 6;
      }
    }
    const L = new Uint8Array(QK_K);
    for (let j = 0; j < 8; j++) {
      const step = d.value * ls[j];
      const m = dmin.value * lm[j];
      for (let i = 0; i < 32; i++) L[32 * j + i] = step > 0 ? Math.max(0, Math.min(15, Math.round((x[32 * j + i] + m) / step))) : 0;
    }
    const qs = out.subarray(o + 16, o + 144);
    for (let j = 0, q = 0; j < QK_K; j += 64, q += 32) for (let l = 0; l < 32; l++) qs[q + l] = L[j + l] | (L[j + l + 32] << 4);
  }
  return out;
}

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes. */
function scaleMinK4(j: number, q: Uint8Array): [number, number] {
  if (j < 4) return [q[j] & 63, q[j + 4] & 63];
  return [(q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)];
}

/** The values Q4_K blocks stand for (ggml's dequantize_row_q4_K). */
export function dequantizeQ4_K(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 144;
  const out = new Float32Array(blocks * QK_K);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const o = b * 144;
    const d = f16BitsToFloat32(Uint16Array.of(view.getUint16(o, true)))[0];
    const dmin = f16BitsToFloat32(Uint16Array.of(view.getUint16(o + 2, true)))[0];
    const sc = bytes.subarray(o + 4, o + 16);
    const qs = bytes.subarray(o + 16, o + 144);
    for (let j = 0, is = 0, q = 0; j < QK_K; j += 64, is += 2, q += 32) {
      const [s1, m1] = scaleMinK4(is, sc);
      const [s2, m2] = scaleMinK4(is + 1, sc);
      for (let l = 0; l < 32; l++) out[b * QK_K + j + l] = d * s1 * (qs[q + l] & 0xf) - dmin * m1;
      for (let l = 0; l < 32; l++) out[b * QK_K + j + 32 + l] = d * s2 * (qs[q + l] >> 4) - dmin * m2;
    }
  }
  return out;
}

/**
 * Q6_K blocks (ggml's block_q6_K, 210 bytes per 256 values): 16 sub-blocks of 16 with int8 scales under an fp16
 * super-scale d; a value is d·sc·(q − 32) with q in 0..63, split into low 4 bits (ql) and high 2 bits (qh).
 */
export function quantizeQ6_K(data: Float32Array): Uint8Array {
  const blocks = superBlocks(data, "Q6_K");
  const out = new Uint8Array(blocks * 210);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const x = data.subarray(b * QK_K, (b + 1) * QK_K);
    const sub = new Float32Array(16);
    for (let s = 0; s < 16; s++) {
      let amax = 0;
      let max = 0;
      for (let i = 0; i < 16; i++) {
        const v = x[16 * s + i];
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          max = v;
        }
      }
      sub[s] = max / -32; // the extreme value maps to q - 32 = -32
    }
    let amaxScale = 0;
    let maxScale = 0;
    for (const s of sub) {
      if (Math.abs(s) > amaxScale) {
        amaxScale = Math.abs(s);
        maxScale = s;
      }
    }
    const d = f16(maxScale / -128);
    const o = b * 210;
    const scales = new Int8Array(out.buffer, o + 192, 16);
    const L = new Uint8Array(QK_K);
    for (let s = 0; s < 16; s++) {
      scales[s] = d.value !== 0 ? Math.max(-128, Math.min(127, Math.round(sub[s] / d.value))) : 0;
      const step = d.value * scales[s];
      for (let i = 0; i < 16; i++) L[16 * s + i] = step !== 0 ? Math.max(0, Math.min(63, Math.round(x[16 * s + i] / step) + 32)) : 32;
    }
    view.setUint16(o + 208, d.bits, true);
    const ql = out.subarray(o, o + 128);
    const qh = out.subarray(o + 128, o + 192);
    for (let j = 0, pl = 0, ph = 0; j < QK_K; j += 128, pl += 64, ph += 32) {
      for (let l = 0; l < 32; l++) {
        ql[pl + l] = (L[j + l] & 0xf) | ((L[j + l + 64] & 0xf) << 4);
        ql[pl + l + 32] = (L[j + l + 32] & 0xf) | ((L[j + l + 96] & 0xf) << 4);
        qh[ph + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
      }
    }
  }
  return out;
}

/** The values Q6_K blocks stand for (ggml's dequantize_row_q6_K). */
export function dequantizeQ6_K(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 210;
  const out = new Float32Array(blocks * QK_K);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const o = b * 210;
    const d = f16BitsToFloat32(Uint16Array.of(view.getUint16(o + 208, true)))[0];
    const sc = new Int8Array(bytes.buffer, bytes.byteOffset + o + 192, 16);
    for (let n = 0; n < QK_K; n += 128) {
      const ql = o + n / 2;
      const qh = o + 128 + n / 4;
      for (let l = 0; l < 32; l++) {
        const is = n / 16 + Math.floor(l / 16);
        const q1 = ((bytes[ql + l] & 0xf) | (((bytes[qh + l] >> 0) & 3) << 4)) - 32;
        const q2 = ((bytes[ql + l + 32] & 0xf) | (((bytes[qh + l] >> 2) & 3) << 4)) - 32;
        const q3 = ((bytes[ql + l] >> 4) | (((bytes[qh + l] >> 4) & 3) << 4)) - 32;
        const q4 = ((bytes[ql + l + 32] >> 4) | (((bytes[qh + l] >> 6) & 3) << 4)) - 32;
        out[b * QK_K + n + l] = d * sc[is] * q1;
        out[b * QK_K + n + l + 32] = d * sc[is + 2] * q2;
        out[b * QK_K + n + l + 64] = d * sc[is + 4] * q3;
        out[b * QK_K + n + l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
  return out;
}
