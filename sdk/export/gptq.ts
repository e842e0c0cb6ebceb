/**
 * Block-wise weight-only quantisation of a linear weight W [out, in] to signed 4- or 8-bit codes with one scale per
 * `blockSize` inputs (symmetric, zero point 2^(bits-1): onnxruntime MatMulNBits' default), by round-to-nearest or
 * by GPTQ (Frantar et al. 2022): columns quantised in order, each one's rounding error spread over the columns not
 * yet quantised through the inverse Hessian of the layer's calibration inputs, H = 2 XᵀX.
 */

/** A quantised weight: codes (0 .. 2^bits - 1, zero point 2^(bits-1)), scales per row and block, and its values. */
export interface BlockQuantized {
  /** [out][in] codes, row-major. */
  codes: Uint8Array;
  /** [out][in / blockSize] scales. */
  scales: Float32Array;
  /** codes dequantised: (code - zero) * scale, [out][in]. */
  values: Float32Array;
}

/** The scale of one block: the largest magnitude maps to the largest positive code. */
function blockScale(maxAbs: number, bits: number): number {
  return maxAbs / ((1 << (bits - 1)) - 1);
}

function quantizeValue(w: number, scale: number, bits: number): number {
  const zero = 1 << (bits - 1);
  const q = scale === 0 ? 0 : Math.round(w / scale);
  return Math.min((1 << bits) - 1, Math.max(0, q + zero));
}

function check(rows: number, cols: number, bits: number, blockSize: number, w: Float32Array): void {
  if (bits !== 4 && bits !== 8) throw new Error(`quantized: bits must be 4 or 8, got ${bits}`);
  if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 16)
    throw new Error(`quantized: block_size must be a power of two of at least 16, got ${blockSize}`);
  if (cols % blockSize !== 0) throw new Error(`quantized: rows of ${cols} values are not whole blocks of ${blockSize}`);
  if (w.length !== rows * cols) throw new Error(`quantized: ${w.length} values for a [${rows}, ${cols}] weight`);
}

/** Round-to-nearest: each block scaled by its largest magnitude, every value rounded on its own. */
export function quantizeRtn(w: Float32Array, rows: number, cols: number, bits: number, blockSize: number): BlockQuantized {
  check(rows, cols, bits, blockSize, w);
  const blocks = cols / blockSize;
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * blocks);
  const values = new Float32Array(rows * cols);
  const zero = 1 << (bits - 1);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      let amax = 0;
      for (let j = 0; j < blockSize; j++) amax = Math.max(amax, Math.abs(w[r * cols + b * blockSize + j]));
      const s = Math.fround(blockScale(amax, bits));
      scales[r * blocks + b] = s;
      for (let j = 0; j < blockSize; j++) {
        const i = r * cols + b * blockSize + j;
        codes[i] = quantizeValue(w[i], s, bits);
        values[i] = (codes[i] - zero) * s;
      }
    }
  }
  return { codes, scales, values };
}

/** Upper Cholesky factor U (UᵀU = A) of a symmetric positive definite n×n matrix, in place of a copy. */
function choleskyUpper(a: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new Error("quantized: the calibration Hessian is not positive definite; give more calibration text");
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j];
    }
  }
  const U = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) U[i * n + j] = L[j * n + i];
  return U;
}

/** Inverse of a symmetric positive definite matrix through its Cholesky factor. */
function spdInverse(a: Float64Array, n: number): Float64Array {
  const U = choleskyUpper(a, n); // A = UᵀU, A⁻¹ = U⁻¹ U⁻ᵀ
  const Ui = new Float64Array(n * n);
  for (let i = n - 1; i >= 0; i--) {
    Ui[i * n + i] = 1 / U[i * n + i];
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = i + 1; k <= j; k++) s += U[i * n + k] * Ui[k * n + j];
      Ui[i * n + j] = -s / U[i * n + i];
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = Math.max(i, j); k < n; k++) s += Ui[i * n + k] * Ui[j * n + k];
      inv[i * n + j] = s;
    }
  return inv;
}

/**
 * GPTQ with `hessian` = XᵀX of the layer's calibration inputs [cols×cols] (float64, summed over tokens). As the
 * reference implementation: 1% of the mean diagonal added as damping, inputs never seen get weight 0, and a block's
 * scale is fixed when its first column is reached, from the columns as updated so far.
 */
export function quantizeGptq(w: Float32Array, rows: number, cols: number, bits: number, blockSize: number, hessian: Float64Array, damp = 0.01): BlockQuantized {
  check(rows, cols, bits, blockSize, w);
  if (hessian.length !== cols * cols) throw new Error(`quantized: Hessian of ${hessian.length} values for ${cols} inputs`);
  const H = Float64Array.from(hessian);
  const W = Float64Array.from(w);
  for (let i = 0; i < cols; i++) {
    if (H[i * cols + i] === 0) {
      H[i * cols + i] = 1;
      for (let r = 0; r < rows; r++) W[r * cols + i] = 0;
    }
  }
  let mean = 0;
  for (let i = 0; i < cols; i++) mean += H[i * cols + i] / cols;
  for (let i = 0; i < cols; i++) H[i * cols + i] += damp * mean;
  const Hinv = choleskyUpper(spdInverse(H, cols), cols);

  const blocks = cols / blockSize;
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * blocks);
  const values = new Float32Array(rows * cols);
  const zero = 1 << (bits - 1);
  for (let c = 0; c < cols; c++) {
    if (c % blockSize === 0) {
      const b = c / blockSize;
      for (let r = 0; r < rows; r++) {
        let amax = 0;
        for (let j = 0; j < blockSize; j++) amax = Math.max(amax, Math.abs(W[r * cols + c + j]));
        scales[r * blocks + b] = Math.fround(blockScale(amax, bits));
      }
    }
    const d = Hinv[c * cols + c];
    for (let r = 0; r < rows; r++) {
      const s = scales[r * blocks + Math.floor(c / blockSize)];
      const i = r * cols + c;
      codes[i] = quantizeValue(W[i], s, bits);
      values[i] = (codes[i] - zero) * s;
      const err = (W[i] - values[i]) / d;
      for (let k = c + 1; k < cols; k++) W[r * cols + k] -= err * Hinv[c * cols + k];
    }
  }
  return { codes, scales, values };
}

/** Codes packed for MatMulNBits: [out][blocks][blockSize * bits / 8] bytes, low bits first along the input axis. */
export function packCodes(codes: Uint8Array, rows: number, cols: number, bits: number): Uint8Array {
  if (bits === 8) return codes;
  const out = new Uint8Array((rows * cols) / 2);
  for (let i = 0; i < out.length; i++) out[i] = codes[2 * i] | (codes[2 * i + 1] << 4);
  return out;
}
