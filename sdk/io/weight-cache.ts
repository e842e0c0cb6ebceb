/**
 * The frozen weights as one flat file in the compute dtype, written once per checkpoint and dtype. Every graph
 * references its slices as ONNX external data, so onnxruntime memory-maps the file instead of copying it: all
 * sessions of a process (train, eval, generation), and all processes, share one physical copy in the page cache,
 * and JavaScript never holds the model.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { f16BitsToFloat32, float32ToF16Bits } from "../util/float16";
import { QUANT_BITS, type QuantType } from "../graph/quant";
import {
  checkQuantConfig,
  DOUBLE_QUANT_BLOCK,
  doubleDequantize,
  doubleQuantize,
  dequantizeBlocks,
  QUANTIZED_WEIGHT,
  quantizeBlocks,
  type QuantConfig,
} from "./quantize";
import { DTYPE_SIZE, toFloat32, type Dtype, type Tensor, type TensorSource } from "./safetensors";

/** The element types a weight file holds. */
export type WeightFileDtype = "float32" | "float16";

/** Where one tensor lives in a weight file. */
export interface WeightSlice {
  shape: number[];
  offset: number;
  length: number;
  /** The slice's element type when it is not the file's (the parts of a quantised tensor, a 16-bit embedding). */
  dtype?: "uint8" | "float32" | "float16";
}

/** A block-quantised [n, k] linear weight in a weight file (see io/quantize.ts and graph/quant.ts). */
export interface QuantizedSlices {
  type: QuantType;
  n: number;
  k: number;
  blockSize: number;
  /** uint8, the packed codes of the flat [n, k] matrix. */
  codes: WeightSlice;
  /** float32 per-block scales, or their double quantisation (8-bit codes, absmax per 256, the offset; `blocks` scales). */
  scales: WeightSlice | { codes: WeightSlice; absmax: WeightSlice; offset: WeightSlice; blocks: number };
}

/** A finished weight file: its absolute path and the slice of each tensor. */
export interface WeightFile {
  file: string;
  dtype: WeightFileDtype;
  tensors: ReadonlyMap<string, WeightSlice>;
  /** The quantised linear weights (absent from `tensors`), when the file was made with a QuantConfig. */
  quantized: ReadonlyMap<string, QuantizedSlices>;
}

const FORMAT = 1;
const INDEX = "index.json";
const DATA = "weights.bin";
/** onnxruntime maps external data page by page; aligned slices map without a copy on every platform. */
const ALIGN = 4096;

/** The cache folder: $TUNELAB_CACHE_DIR, else $XDG_CACHE_HOME/tunelab, else ~/.cache/tunelab. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TUNELAB_CACHE_DIR) return path.resolve(env.TUNELAB_CACHE_DIR);
  return path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), ".cache"), "tunelab");
}

interface IndexFile {
  format: number;
  dtype: WeightFileDtype;
  /** The checkpoint files this was made from (to drop the entry when they are gone). */
  sources: string[];
  tensors: Record<string, WeightSlice>;
  quantized?: Record<string, QuantizedSlices>;
}

/**
 * The weight file of `source` in `dtype`, converting the checkpoint tensor by tensor the first time. With `quant`,
 * the decoder layers' linear weights are block-quantised instead (one tensor at a time, in chunks: the float32 model
 * never exists), and the settings are part of the cache key.
 */
export function weightFile(source: TensorSource, dtype: WeightFileDtype, root = cacheRoot(), quant?: QuantConfig): WeightFile {
  if (quant) checkQuantConfig(quant);
  const names = source.names();
  const files = [...new Set(names.map((n) => source.info(n).file))].map((f) => path.resolve(f)).sort();
  const dir = path.join(root, "weights", cacheKey(files, dtype, quant));
  const existing = readIndex(dir);
  if (existing) return existing;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  dropEntriesOfMissingCheckpoints(path.dirname(dir));
  const tmp = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    const tensors: Record<string, WeightSlice> = {};
    const quantized: Record<string, QuantizedSlices> = {};
    const fd = fs.openSync(path.join(tmp, DATA), "w");
    try {
      let offset = 0;
      for (const name of names) {
        offset = Math.ceil(offset / ALIGN) * ALIGN;
        if (quant && QUANTIZED_WEIGHT.test(name)) {
          const q = quantizeTensor(source, name, quant, fd, offset);
          quantized[name] = q.slices;
          offset = q.end;
          continue;
        }
        // With a quantised base, the vocabulary matrices of a 16-bit checkpoint stay in 16 bits (as bitsandbytes keeps
        // them), unless a value is beyond float16's range.
        const half = !!quant && dtype === "float32" && KEPT_16_BIT.test(name) && ["F16", "BF16"].includes(source.info(name).dtype);
        const halfLength = half ? convertTensor(source, name, "float16", fd, offset) : null;
        const length = halfLength ?? convertTensor(source, name, dtype, fd, offset)!;
        tensors[name] = { shape: source.info(name).shape, offset, length, ...(halfLength !== null ? { dtype: "float16" as const } : {}) };
        offset += length;
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const index: IndexFile = { format: FORMAT, dtype, sources: files, tensors, ...(quant ? { quantized } : {}) };
    fs.writeFileSync(path.join(tmp, INDEX), JSON.stringify(index));
    // The rename publishes the entry whole: a killed run leaves only a *.tmp-* folder, never a partial entry.
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // Another process published the same entry first; use that one.
      if (!readIndex(dir)) throw new Error(`cannot write the weight cache ${dir}: ${(err as Error).message}`, { cause: err });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const made = readIndex(dir);
  if (!made) throw new Error(`weight cache ${dir} is unreadable right after writing it`);
  return made;
}

/**
 * The float32 values a quantised (or 16-bit) weight of a weight file stands for, flat: exactly what the graphs compute
 * (for tests, and to compare a quantised base with the full-precision one).
 */
export function dequantizedWeight(file: WeightFile, name: string): Float32Array {
  const q = file.quantized.get(name);
  const half = file.tensors.get(name);
  if (!q && half?.dtype !== "float16") throw new Error(`${file.file}: "${name}" is neither quantised nor kept in 16 bits`);
  const fd = fs.openSync(file.file, "r");
  try {
    const bytes = (s: WeightSlice) => {
      const out = new Uint8Array(s.length);
      if (fs.readSync(fd, out, 0, s.length, s.offset) !== s.length) throw new Error(`${file.file}: "${name}" is cut short`);
      return out;
    };
    if (!q) return f16BitsToFloat32(new Uint16Array(bytes(half!).buffer));
    const f32 = (s: WeightSlice) => new Float32Array(bytes(s).buffer);
    const scales =
      "blocks" in q.scales
        ? doubleDequantize({ codes: bytes(q.scales.codes), absmax: f32(q.scales.absmax), offset: f32(q.scales.offset)[0] }, q.scales.blocks)
        : f32(q.scales);
    return dequantizeBlocks(bytes(q.codes), scales, q.type, q.blockSize);
  } finally {
    fs.closeSync(fd);
  }
}

/** A key that changes when any checkpoint file is replaced or rewritten (path, inode, size, modification and change times). */
function cacheKey(files: readonly string[], dtype: WeightFileDtype, quant?: QuantConfig): string {
  const settings = quant ? `/${quant.type}/${quant.blockSize}/${quant.doubleQuant ? "double" : "single"}/vocabulary-16-bit` : "";
  const h = createHash("sha256").update(`tunelab-weights/${FORMAT}/${dtype}${settings}`);
  for (const f of files) {
    const s = fs.statSync(f);
    h.update(`\n${f}\t${s.ino}\t${s.size}\t${s.mtimeMs}\t${s.ctimeMs}`);
  }
  return h.digest("hex").slice(0, 32);
}

function readIndex(dir: string): WeightFile | null {
  let index: IndexFile;
  try {
    index = JSON.parse(fs.readFileSync(path.join(dir, INDEX), "utf8")) as IndexFile;
  } catch {
    return null;
  }
  const file = path.join(dir, DATA);
  if (index.format !== FORMAT || !fs.existsSync(file)) return null;
  return { file, dtype: index.dtype, tensors: new Map(Object.entries(index.tensors)), quantized: new Map(Object.entries(index.quantized ?? {})) };
}

/** Removes cache entries whose checkpoint files no longer exist (test models in temporary folders, deleted models). */
function dropEntriesOfMissingCheckpoints(weightsDir: string): void {
  for (const entry of fs.readdirSync(weightsDir)) {
    const dir = path.join(weightsDir, entry);
    try {
      const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX), "utf8")) as IndexFile;
      if (index.sources.some((f) => !fs.existsSync(f))) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // not an entry (or one being written by another process): leave it
    }
  }
}

/** The vocabulary matrices: a quantised base keeps them in the checkpoint's 16 bits (see FrozenWeights.linear). */
export const KEPT_16_BIT = /^(model\.embed_tokens|lm_head)\.weight$/;

/** Elements converted at a time (16 MiB of float32): memory stays flat however large a tensor (an embedding) is. */
const CHUNK_ELEMENTS = 1 << 22;

/**
 * Converts one tensor into the file at `position`, chunk by chunk; returns the bytes written, or null when a finite
 * value does not fit float16 (the caller then writes it in float32 over the same place).
 */
function convertTensor(source: TensorSource, name: string, dtype: WeightFileDtype, fd: number, position: number): number | null {
  let written = 0;
  let fits = true;
  forEachRawChunk(source, name, CHUNK_ELEMENTS, (_, chunk) => {
    if (!fits) return;
    const out = encodeChunk(chunk, dtype);
    if (dtype === "float16" && chunk.dtype !== "F16") fits = finiteHalves(out as Uint16Array, toFloat32(chunk));
    writeAll(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), position + written);
    written += out.byteLength;
  });
  return fits ? written : null;
}

/** True when every float16 of `half` is finite where the value it encodes (`from`) is. */
function finiteHalves(half: Uint16Array, from: Float32Array): boolean {
  for (let i = 0; i < half.length; i++) if ((half[i] & 0x7c00) === 0x7c00 && Number.isFinite(from[i])) return false;
  return true;
}

/**
 * Quantises one linear weight into the file at `position`, reading it in chunks of whole blocks: codes first, then
 * the block scales (plain, or double-quantised once all of them are known). Returns the slices and the end offset.
 */
function quantizeTensor(source: TensorSource, name: string, quant: QuantConfig, fd: number, position: number): { slices: QuantizedSlices; end: number } {
  const info = source.info(name);
  const [n, k] = info.shape;
  if (info.shape.length !== 2) throw new Error(`${source.path}: "${name}" has shape [${info.shape}]; a quantised linear weight must be a matrix`);
  if (k % quant.blockSize !== 0) {
    throw new Error(
      `${source.path}: "${name}" has ${k} input features, not a multiple of the quantization block size ${quant.blockSize}; choose a block size dividing ${k}`,
    );
  }
  const bits = QUANT_BITS[quant.type];
  const numel = n * k;
  const blocks = numel / quant.blockSize;
  const scales = new Float32Array(blocks);
  const chunk = Math.max(quant.blockSize, Math.floor(CHUNK_ELEMENTS / quant.blockSize) * quant.blockSize);
  let written = 0;
  forEachChunk(source, name, chunk, (start, values) => {
    const q = quantizeBlocks(values, quant.type, quant.blockSize);
    scales.set(q.scales, start / quant.blockSize);
    writeAll(fd, q.codes, position + written);
    written += q.codes.byteLength;
  });
  const codes: WeightSlice = { shape: [(numel * bits) / 8], offset: position, length: written, dtype: "uint8" };
  let at = position + written;
  const put = (bytes: Uint8Array, shape: number[], dtype: "uint8" | "float32"): WeightSlice => {
    at = Math.ceil(at / 64) * 64;
    writeAll(fd, bytes, at);
    const slice = { shape, offset: at, length: bytes.byteLength, dtype };
    at += bytes.byteLength;
    return slice;
  };
  const f32 = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let scaleSlices: QuantizedSlices["scales"];
  if (quant.doubleQuant && bits === 4 && quant.type !== "int4") {
    const d = doubleQuantize(scales);
    scaleSlices = {
      codes: put(d.codes, [d.codes.length], "uint8"),
      absmax: put(f32(d.absmax), [d.codes.length / DOUBLE_QUANT_BLOCK], "float32"),
      offset: put(f32(Float32Array.of(d.offset)), [1], "float32"),
      blocks,
    };
  } else scaleSlices = put(f32(scales), [blocks], "float32");
  return { slices: { type: quant.type, n, k, blockSize: quant.blockSize, codes, scales: scaleSlices }, end: at };
}

/** Calls `each` with consecutive float32 chunks of a tensor (`chunk` elements, the last one shorter). */
function forEachChunk(source: TensorSource, name: string, chunk: number, each: (start: number, values: Float32Array) => void): void {
  forEachRawChunk(source, name, chunk, (start, t) => each(start, toFloat32(t)));
}

/** Calls `each` with consecutive chunks of a tensor in its stored dtype, read from its file one at a time. */
function forEachRawChunk(source: TensorSource, name: string, chunk: number, each: (start: number, values: Tensor) => void): void {
  const info = source.info(name);
  if (!["F32", "F16", "BF16", "F64"].includes(info.dtype)) {
    throw new Error(`${source.path}: "${name}" has dtype ${info.dtype}; model weights must be F32, F16, BF16 or F64`);
  }
  const inSize = DTYPE_SIZE[info.dtype];
  const numel = info.byteLength / inSize;
  const src = fs.openSync(info.file, "r");
  try {
    for (let start = 0; start < numel; start += chunk) {
      const count = Math.min(chunk, numel - start);
      const bytes = new Uint8Array(count * inSize);
      if (fs.readSync(src, bytes, 0, bytes.length, info.byteOffset + start * inSize) !== bytes.length) {
        throw new Error(`${info.file}: "${name}" is cut short (the file ends inside the tensor)`);
      }
      each(start, { dtype: info.dtype, shape: [count], data: typedView(info.dtype, bytes) });
    }
  } finally {
    fs.closeSync(src);
  }
}

function typedView(dtype: Dtype, bytes: Uint8Array): Tensor["data"] {
  if (dtype === "F32") return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (dtype === "F64") return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
}

function encodeChunk(t: Tensor, dtype: WeightFileDtype): Float32Array | Uint16Array {
  if (dtype === "float16") return t.dtype === "F16" ? (t.data as Uint16Array) : float32ToF16Bits(toFloat32(t));
  return toFloat32(t);
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.byteLength;) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
  }
}
