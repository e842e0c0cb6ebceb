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
import { float32ToF16Bits } from "../util/float16";
import { DTYPE_SIZE, toFloat32, type Dtype, type Tensor, type TensorSource } from "./safetensors";

/** The element types a weight file holds. */
export type WeightFileDtype = "float32" | "float16";

/** Where one tensor lives in a weight file. */
export interface WeightSlice {
  shape: number[];
  offset: number;
  length: number;
}

/** A finished weight file: its absolute path and the slice of each tensor. */
export interface WeightFile {
  file: string;
  dtype: WeightFileDtype;
  tensors: ReadonlyMap<string, WeightSlice>;
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
}

/** The weight file of `source` in `dtype`, converting the checkpoint tensor by tensor the first time. */
export function weightFile(source: TensorSource, dtype: WeightFileDtype, root = cacheRoot()): WeightFile {
  const names = source.names();
  const files = [...new Set(names.map((n) => source.info(n).file))].map((f) => path.resolve(f)).sort();
  const dir = path.join(root, "weights", cacheKey(files, dtype));
  const existing = readIndex(dir);
  if (existing) return existing;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  dropEntriesOfMissingCheckpoints(path.dirname(dir));
  const tmp = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    const tensors: Record<string, WeightSlice> = {};
    const fd = fs.openSync(path.join(tmp, DATA), "w");
    try {
      let offset = 0;
      for (const name of names) {
        offset = Math.ceil(offset / ALIGN) * ALIGN;
        const length = convertTensor(source, name, dtype, fd, offset);
        tensors[name] = { shape: source.info(name).shape, offset, length };
        offset += length;
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const index: IndexFile = { format: FORMAT, dtype, sources: files, tensors };
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

/** A key that changes when any checkpoint file is replaced or rewritten (path, inode, size, modification and change times). */
function cacheKey(files: readonly string[], dtype: WeightFileDtype): string {
  const h = createHash("sha256").update(`tunelab-weights/${FORMAT}/${dtype}`);
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
  return { file, dtype: index.dtype, tensors: new Map(Object.entries(index.tensors)) };
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

/** Elements converted at a time (16 MiB of float32): memory stays flat however large a tensor (an embedding) is. */
const CHUNK_ELEMENTS = 1 << 22;

/** Converts one tensor into the file at `position`, chunk by chunk; returns the bytes written. */
function convertTensor(source: TensorSource, name: string, dtype: WeightFileDtype, fd: number, position: number): number {
  const info = source.info(name);
  if (!["F32", "F16", "BF16", "F64"].includes(info.dtype)) {
    throw new Error(`${source.path}: "${name}" has dtype ${info.dtype}; model weights must be F32, F16, BF16 or F64`);
  }
  const inSize = DTYPE_SIZE[info.dtype];
  const numel = info.byteLength / inSize;
  const src = fs.openSync(info.file, "r");
  try {
    let written = 0;
    for (let start = 0; start < numel; start += CHUNK_ELEMENTS) {
      const count = Math.min(CHUNK_ELEMENTS, numel - start);
      const bytes = new Uint8Array(count * inSize);
      if (fs.readSync(src, bytes, 0, bytes.length, info.byteOffset + start * inSize) !== bytes.length) {
        throw new Error(`${info.file}: "${name}" is cut short (the file ends inside the tensor)`);
      }
      const out = encodeChunk({ dtype: info.dtype, shape: [count], data: typedView(info.dtype, bytes) }, dtype);
      writeAll(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), position + written);
      written += out.byteLength;
    }
    return written;
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
