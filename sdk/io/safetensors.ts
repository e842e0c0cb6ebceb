/**
 * The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON header, then one contiguous data area that the header indexes.
 *
 * The reader checks the whole header before it allocates anything big, so a damaged or hostile file
 * fails with an Error that names the file and the tensor, never with an out-of-memory or garbage
 * numbers. Tensors are read lazily, one at a time, with exactly one copy (disk -> a fresh, aligned
 * ArrayBuffer that the returned typed array views).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeFileAtomicWith } from "./atomic";
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from "../util/float16";

/** The element types this reader and writer understand (safetensors' names). */
export const DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"] as const;
/** One safetensors element type. */
export type Dtype = (typeof DTYPES)[number];

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** The typed array a tensor of each dtype is returned as (F16/BF16 as raw 16-bit patterns, BOOL as bytes). */
export type TensorArray = Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** A tensor read from a file: `data` is a typed array whose element type follows `dtype`. */
export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: TensorArray;
}

/** Where one tensor lives on disk. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** The file the tensor is in. */
  file: string;
  /** Absolute byte position of the tensor's first byte in `file`. */
  byteOffset: number;
  byteLength: number;
}

/** A read-only set of named tensors: one safetensors file, or a sharded checkpoint seen as one. */
export interface TensorSource {
  /** The file or index this source was opened from. */
  readonly path: string;
  /** `__metadata__` of the file (for a sharded checkpoint, the index's `metadata`, stringified). */
  readonly metadata: Record<string, string>;
  /** Tensor names, in file order. */
  names(): string[];
  /** Whether a tensor of that name exists. */
  has(name: string): boolean;
  /** Dtype, shape and location of a tensor; throws naming the file if it does not exist. */
  info(name: string): TensorInfo;
  /** Reads one tensor's bytes (and only those) into a fresh typed array. */
  read(name: string): Tensor;
  /** Closes the file handles. */
  close(): void;
}

/** Largest header accepted (the reference implementation's limit): larger means a damaged file. */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_SET: ReadonlySet<string> = new Set(DTYPES);

/** Number of elements of a shape (1 for a scalar). */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function assertLittleEndian(): void {
  // The data is little-endian and we view it in place; a big-endian host would need byte swapping.
  if (os.endianness() !== "LE") throw new Error("safetensors: this reader needs a little-endian machine");
}

/** A typed-array view of `numel` elements of `dtype` over `buffer` starting at byte `offset`. */
function viewAs(dtype: Dtype, buffer: ArrayBuffer, offset: number, numel: number): TensorArray {
  switch (dtype) {
    case "F64":
      return new Float64Array(buffer, offset, numel);
    case "F32":
      return new Float32Array(buffer, offset, numel);
    case "F16":
    case "BF16":
      return new Uint16Array(buffer, offset, numel);
    case "I64":
      return new BigInt64Array(buffer, offset, numel);
    case "I32":
      return new Int32Array(buffer, offset, numel);
    case "I16":
      return new Int16Array(buffer, offset, numel);
    case "I8":
      return new Int8Array(buffer, offset, numel);
    case "U8":
    case "BOOL":
      return new Uint8Array(buffer, offset, numel);
  }
}

function describe(value: unknown): string {
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 80 ? s.slice(0, 77) + "..." : s;
}

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/**
 * Validates a decoded header against the size of the data area. Offsets in the header are relative to
 * the data area, which starts at `dataStart`. Throws an Error naming `file` and the offending entry.
 */
function parseHeader(json: unknown, file: string, dataStart: number, dataSize: number): ParsedHeader {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${file}: safetensors header must be a JSON object, got ${describe(json)}`);
  }
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new Error(`${file}: "__metadata__" must be an object of strings, got ${describe(raw)}`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") throw new Error(`${file}: "__metadata__"."${k}" must be a string, got ${describe(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${file}: tensor "${name}"`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new Error(`${where}: entry must be an object with dtype, shape and data_offsets, got ${describe(raw)}`);
    }
    const entry = raw as Record<string, unknown>;
    const dtype = entry.dtype;
    if (typeof dtype !== "string" || !DTYPE_SET.has(dtype)) {
      throw new Error(`${where}: unknown dtype ${describe(dtype)}; expected one of ${DTYPES.join(", ")}`);
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape must be an array of non-negative integers, got ${describe(shape)}`);
    }
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new Error(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${describe(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const numel = numelOf(shape as number[]);
    const need = numel * DTYPE_SIZE[dtype as Dtype];
    if (!Number.isSafeInteger(need) || need !== end - begin) {
      throw new Error(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but dtype ${dtype} with shape ` +
          `[${(shape as number[]).join(", ")}] needs ${need} bytes`,
      );
    }
    if (end > dataSize) {
      throw new Error(
        `${where}: data_offsets [${begin}, ${end}] run past the end of the data area (${dataSize} bytes); ` + `the file is truncated or the header is wrong`,
      );
    }
    entries.push({ name, dtype: dtype as Dtype, shape: (shape as number[]).slice(), begin, end });
  }
  // The format requires the tensors to tile the data area exactly: no overlaps, no holes, nothing after.
  const byPosition = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | null = null;
  for (const e of byPosition) {
    if (e.begin < cursor) {
      throw new Error(`${file}: tensor "${e.name}" data_offsets [${e.begin}, ${e.end}] overlap tensor "${previous}" (which ends at ${cursor})`);
    }
    if (e.begin > cursor) {
      throw new Error(
        `${file}: tensor "${e.name}" starts at data offset ${e.begin} but the previous tensor` +
          `${previous === null ? "s end" : ` "${previous}" ends`} at ${cursor}; the data area must have no holes`,
      );
    }
    cursor = e.end;
    previous = e.name;
  }
  if (cursor !== dataSize) {
    throw new Error(`${file}: the header describes ${cursor} bytes of tensor data but the file holds ${dataSize} bytes after the header`);
  }
  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    tensors.set(e.name, {
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      file,
      byteOffset: dataStart + e.begin,
      byteLength: e.end - e.begin,
    });
  }
  return { metadata, tensors };
}

/** Reads exactly `length` bytes at `position` of `fd` into `target`, looping over short reads. */
function readFully(fd: number, target: Uint8Array, position: number, file: string, what: string): void {
  let done = 0;
  while (done < target.byteLength) {
    // readSync reads at most 2 GiB per call.
    const chunk = Math.min(target.byteLength - done, 1 << 30);
    const n = fs.readSync(fd, target, done, chunk, position + done);
    if (n === 0) {
      throw new Error(`${file}: unexpected end of file while reading ${what} (got ${done} of ${target.byteLength} bytes)`);
    }
    done += n;
  }
}

/** One safetensors file, opened for lazy per-tensor reads. */
export class SafetensorsFile implements TensorSource {
  readonly path: string;
  readonly metadata: Record<string, string>;
  /** Size of the file in bytes when it was opened. */
  readonly fileSize: number;
  private fd: number | null;
  private readonly tensors: Map<string, TensorInfo>;

  private constructor(file: string, fd: number, fileSize: number, parsed: ParsedHeader) {
    this.path = file;
    this.fd = fd;
    this.fileSize = fileSize;
    this.metadata = parsed.metadata;
    this.tensors = parsed.tensors;
  }

  /** Opens and validates `file`; throws an Error naming the file and the problem if it is not valid safetensors. */
  static open(file: string): SafetensorsFile {
    assertLittleEndian();
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch (err) {
      throw new Error(`${file}: cannot open safetensors file: ${(err as Error).message}`, { cause: err });
    }
    try {
      const fileSize = fs.fstatSync(fd).size;
      if (fileSize < 8) {
        throw new Error(`${file}: not a safetensors file: ${fileSize} bytes, smaller than the 8-byte header length`);
      }
      const lenBytes = Buffer.alloc(8);
      readFully(fd, lenBytes, 0, file, "the header length");
      const headerLen = lenBytes.readBigUInt64LE(0);
      if (headerLen > BigInt(fileSize - 8)) {
        throw new Error(`${file}: header length ${headerLen} is larger than the ${fileSize - 8} bytes after it; ` + `the file is truncated or not safetensors`);
      }
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw new Error(`${file}: header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
      }
      const n = Number(headerLen);
      if (n < 2) throw new Error(`${file}: header length ${n} is too small for a JSON object`);
      const headerBytes = Buffer.alloc(n);
      readFully(fd, headerBytes, 8, file, "the header");
      if (headerBytes[0] !== 0x7b /* "{" */) {
        throw new Error(`${file}: header must start with "{" (a JSON object); the file is not safetensors`);
      }
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
      } catch {
        throw new Error(`${file}: header is not valid UTF-8`);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new Error(`${file}: header is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
      const parsed = parseHeader(json, file, 8 + n, fileSize - 8 - n);
      return new SafetensorsFile(file, fd, fileSize, parsed);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  names(): string[] {
    return [...this.tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset).map((t) => t.name);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.path}: no tensor named "${name}"`);
    return t;
  }

  /** Reads the raw bytes of one tensor into a fresh ArrayBuffer (offset 0, so every typed view is aligned). */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    if (this.fd === null) throw new Error(`${this.path}: file is closed`);
    const bytes = new Uint8Array(new ArrayBuffer(t.byteLength));
    readFully(this.fd, bytes, t.byteOffset, this.path, `tensor "${name}"`);
    return bytes;
  }

  read(name: string): Tensor {
    const t = this.info(name);
    const bytes = this.readBytes(name);
    return { dtype: t.dtype, shape: t.shape.slice(), data: viewAs(t.dtype, bytes.buffer as ArrayBuffer, 0, numelOf(t.shape)) };
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** Name of the index file of a sharded checkpoint. */
export const SHARD_INDEX_NAME = "model.safetensors.index.json";

/** A sharded checkpoint (`model.safetensors.index.json` + shards) seen as one tensor source. */
export class ShardedSafetensors implements TensorSource {
  readonly path: string;
  readonly metadata: Record<string, string>;
  private readonly shards: Map<string, SafetensorsFile>;
  private readonly weightMap: Map<string, SafetensorsFile>;

  private constructor(indexPath: string, metadata: Record<string, string>, shards: Map<string, SafetensorsFile>, weightMap: Map<string, SafetensorsFile>) {
    this.path = indexPath;
    this.metadata = metadata;
    this.shards = shards;
    this.weightMap = weightMap;
  }

  /** Opens the index and every shard it names; checks that each listed tensor is in its shard. */
  static open(indexPath: string): ShardedSafetensors {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(indexPath, "utf8"));
    } catch (err) {
      throw new Error(`${indexPath}: cannot read sharded checkpoint index: ${(err as Error).message}`, { cause: err });
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new Error(`${indexPath}: index must be a JSON object with "weight_map"`);
    }
    const index = json as Record<string, unknown>;
    const weightMapRaw = index.weight_map;
    if (typeof weightMapRaw !== "object" || weightMapRaw === null || Array.isArray(weightMapRaw)) {
      throw new Error(`${indexPath}: "weight_map" must be an object mapping tensor names to shard file names`);
    }
    const metadata: Record<string, string> = {};
    if (typeof index.metadata === "object" && index.metadata !== null) {
      for (const [k, v] of Object.entries(index.metadata as Record<string, unknown>)) metadata[k] = String(v);
    }
    const dir = path.dirname(indexPath);
    const shards = new Map<string, SafetensorsFile>();
    const weightMap = new Map<string, SafetensorsFile>();
    try {
      for (const [name, shardName] of Object.entries(weightMapRaw as Record<string, unknown>)) {
        if (typeof shardName !== "string" || shardName === "" || /[\\/]/.test(shardName) || shardName === "..") {
          throw new Error(`${indexPath}: weight_map["${name}"] must be a shard file name in the same folder, got ${describe(shardName)}`);
        }
        let shard = shards.get(shardName);
        if (!shard) {
          const shardPath = path.join(dir, shardName);
          if (!fs.existsSync(shardPath)) {
            throw new Error(`${indexPath}: shard "${shardName}" (for tensor "${name}") does not exist in ${dir}`);
          }
          shard = SafetensorsFile.open(shardPath);
          shards.set(shardName, shard);
        }
        if (!shard.has(name)) {
          throw new Error(`${indexPath}: weight_map puts tensor "${name}" in "${shardName}", but that shard has no such tensor`);
        }
        weightMap.set(name, shard);
      }
    } catch (err) {
      for (const s of shards.values()) s.close();
      throw err;
    }
    return new ShardedSafetensors(indexPath, metadata, shards, weightMap);
  }

  names(): string[] {
    return [...this.weightMap.keys()];
  }

  has(name: string): boolean {
    return this.weightMap.has(name);
  }

  info(name: string): TensorInfo {
    const shard = this.weightMap.get(name);
    if (!shard) throw new Error(`${this.path}: no tensor named "${name}" in the weight_map`);
    return shard.info(name);
  }

  read(name: string): Tensor {
    const shard = this.weightMap.get(name);
    if (!shard) throw new Error(`${this.path}: no tensor named "${name}" in the weight_map`);
    return shard.read(name);
  }

  close(): void {
    for (const s of this.shards.values()) s.close();
  }
}

/**
 * Opens model weights from a folder (its `model.safetensors`, else `model.safetensors.index.json`,
 * else its only `*.safetensors` file), from an index `.json` file, or from one `.safetensors` file.
 */
export function openWeights(pathOrDir: string): TensorSource {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(pathOrDir);
  } catch {
    throw new Error(`${pathOrDir}: no such file or folder`);
  }
  if (stat.isDirectory()) {
    // transformers' order: the single file first, then the shard index.
    const single = path.join(pathOrDir, "model.safetensors");
    if (fs.existsSync(single)) return SafetensorsFile.open(single);
    const index = path.join(pathOrDir, SHARD_INDEX_NAME);
    if (fs.existsSync(index)) return ShardedSafetensors.open(index);
    const candidates = fs.readdirSync(pathOrDir).filter((f) => f.endsWith(".safetensors"));
    if (candidates.length === 1) return SafetensorsFile.open(path.join(pathOrDir, candidates[0]));
    throw new Error(
      `${pathOrDir}: no model weights found; expected model.safetensors or ${SHARD_INDEX_NAME}` +
        (candidates.length > 1 ? ` (found several .safetensors files without an index: ${candidates.join(", ")})` : ""),
    );
  }
  return pathOrDir.endsWith(".json") ? ShardedSafetensors.open(pathOrDir) : SafetensorsFile.open(pathOrDir);
}

/** The tensor's values as float32: F32 is returned as is (no copy), other dtypes are converted. */
export function toFloat32(t: Tensor): Float32Array {
  switch (t.dtype) {
    case "F32":
      return t.data as Float32Array;
    case "F16":
      return f16BitsToFloat32(t.data as Uint16Array);
    case "BF16":
      return bf16BitsToFloat32(t.data as Uint16Array);
    case "I64": {
      const src = t.data as BigInt64Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    default:
      return Float32Array.from(t.data as Float64Array);
  }
}

/** The tensor's values as float64 (exact for every float dtype; used by float64 reference checks). */
export function toFloat64(t: Tensor): Float64Array {
  switch (t.dtype) {
    case "F64":
      return t.data as Float64Array;
    case "F16":
    case "BF16":
      return Float64Array.from(toFloat32(t));
    case "I64": {
      const src = t.data as BigInt64Array;
      const out = new Float64Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    default:
      return Float64Array.from(t.data as Float32Array);
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

/** A tensor to write. `data` is the dtype's typed array (see TensorArray) or raw little-endian bytes
 * (Uint8Array); a Float32Array/Float64Array is also accepted for any float dtype and converted. */
export interface TensorInput {
  dtype: Dtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

const NATIVE_ARRAY: Record<Dtype, string> = {
  F64: "Float64Array",
  F32: "Float32Array",
  F16: "Uint16Array",
  BF16: "Uint16Array",
  I64: "BigInt64Array",
  I32: "Int32Array",
  I16: "Int16Array",
  I8: "Int8Array",
  U8: "Uint8Array",
  BOOL: "Uint8Array",
};

const FLOAT_DTYPES: ReadonlySet<Dtype> = new Set<Dtype>(["F64", "F32", "F16", "BF16"]);

/** Checks a tensor to write and returns its size on disk; `tensorBytes` then produces the bytes. */
function checkTensorInput(file: string, name: string, t: TensorInput): number {
  const where = `${file}: tensor "${name}"`;
  if (!DTYPE_SET.has(t.dtype)) throw new Error(`${where}: unknown dtype ${describe(t.dtype)}; expected one of ${DTYPES.join(", ")}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: shape must be an array of non-negative integers, got ${describe(t.shape)}`);
  }
  if (!ArrayBuffer.isView(t.data)) throw new Error(`${where}: data must be a typed array`);
  const numel = numelOf(t.shape);
  const need = numel * DTYPE_SIZE[t.dtype];
  const kind = t.data.constructor.name;
  if (needsConversion(t)) {
    const length = (t.data as Float32Array | Float64Array).length;
    if (length !== numel) throw new Error(`${where}: shape [${t.shape.join(", ")}] has ${numel} elements but data has ${length}`);
    return need;
  }
  if (kind !== NATIVE_ARRAY[t.dtype] && kind !== "Uint8Array" && kind !== "Buffer") {
    throw new Error(`${where}: dtype ${t.dtype} needs a ${NATIVE_ARRAY[t.dtype]} (or raw bytes in a Uint8Array), got ${kind}`);
  }
  if (t.data.byteLength !== need) {
    throw new Error(`${where}: dtype ${t.dtype} with shape [${t.shape.join(", ")}] needs ${need} bytes but data has ${t.data.byteLength}`);
  }
  return need;
}

/** Whether `t.data` is a float array of another float type than `t.dtype` (converted on write). */
function needsConversion(t: TensorInput): boolean {
  const kind = t.data.constructor.name;
  return (kind === "Float32Array" || kind === "Float64Array") && FLOAT_DTYPES.has(t.dtype) && kind !== NATIVE_ARRAY[t.dtype];
}

/** The little-endian bytes of one checked tensor in its dtype (a view when no conversion is needed). */
function tensorBytes(t: TensorInput): Uint8Array {
  let data: ArrayBufferView = t.data;
  if (needsConversion(t)) {
    const src = t.data as Float32Array | Float64Array;
    if (t.dtype === "F16") data = float32ToF16Bits(src);
    else if (t.dtype === "BF16") data = float32ToBf16Bits(src);
    else if (t.dtype === "F32") data = Float32Array.from(src);
    else data = Float64Array.from(src);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Writes `tensors` as a safetensors file at `file`, atomically (temporary file + rename).
 * Tensors are laid out largest element size first, so every tensor starts at an offset aligned to its
 * element size; the header is padded with spaces to a multiple of 8 bytes.
 */
export function writeSafetensors(file: string, tensors: Record<string, TensorInput>, metadata?: Record<string, string>): void {
  assertLittleEndian();
  if (Object.prototype.hasOwnProperty.call(tensors, "__metadata__")) {
    throw new Error(`${file}: "__metadata__" is reserved and cannot be a tensor name`);
  }
  const names = Object.keys(tensors).sort((a, b) => {
    const d = DTYPE_SIZE[tensors[b].dtype] - DTYPE_SIZE[tensors[a].dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`${file}: metadata "${k}" must be a string, got ${describe(v)}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    const size = checkTensorInput(file, name, tensors[name]);
    header[name] = { dtype: tensors[name].dtype, shape: [...tensors[name].shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - (jsonBytes % 8)) % 8);
  const headerBuf = Buffer.from(json, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBuf.byteLength), 0);
  writeFileAtomicWith(file, (append) => {
    append(prefix);
    append(headerBuf);
    // Converted tensors are made one at a time, so writing never holds a second copy of the whole model.
    for (const name of names) append(tensorBytes(tensors[name]));
  });
}

/** Options of writeModelWeights. */
export interface WriteWeightsOptions {
  /** Largest shard in bytes before the weights are split (default 5 GB, transformers' default). */
  maxShardBytes?: number;
  /** `__metadata__` of every file (default {format: "pt"}, which transformers expects). */
  metadata?: Record<string, string>;
}

/**
 * Writes model weights into a HF model folder: one `model.safetensors`, or, when larger than
 * maxShardBytes, `model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json`.
 * The form not written is removed, so readers never see stale weights. Returns the files written.
 */
export function writeModelWeights(dir: string, tensors: Record<string, TensorInput>, options: WriteWeightsOptions = {}): string[] {
  const maxShard = options.maxShardBytes ?? 5_000_000_000;
  const metadata = options.metadata ?? { format: "pt" };
  fs.mkdirSync(dir, { recursive: true });
  const sizes = new Map<string, number>();
  let total = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const size = checkTensorInput(path.join(dir, "model.safetensors"), name, t);
    sizes.set(name, size);
    total += size;
  }
  const isShard = (f: string) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f);
  const removeStale = (keep: Set<string>) => {
    for (const f of fs.readdirSync(dir)) {
      if ((f === "model.safetensors" || f === SHARD_INDEX_NAME || isShard(f)) && !keep.has(f)) fs.rmSync(path.join(dir, f));
    }
  };
  if (total <= maxShard) {
    writeSafetensors(path.join(dir, "model.safetensors"), tensors, metadata);
    removeStale(new Set(["model.safetensors"]));
    return ["model.safetensors"];
  }
  // Greedy in name order, as transformers' shard splitting does: a tensor larger than a shard gets its own.
  const groups: string[][] = [[]];
  let current = 0;
  for (const name of Object.keys(tensors).sort()) {
    const size = sizes.get(name)!;
    if (current > 0 && current + size > maxShard) {
      groups.push([]);
      current = 0;
    }
    groups[groups.length - 1].push(name);
    current += size;
  }
  const pad = (n: number) => String(n).padStart(5, "0");
  const files = groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  groups.forEach((names, i) => {
    const part: Record<string, TensorInput> = {};
    for (const n of names) {
      part[n] = tensors[n];
      weightMap[n] = files[i];
    }
    writeSafetensors(path.join(dir, files[i]), part, metadata);
  });
  writeFileAtomicWith(path.join(dir, SHARD_INDEX_NAME), (append) =>
    append(Buffer.from(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n", "utf8")),
  );
  removeStale(new Set([...files, SHARD_INDEX_NAME]));
  return [...files, SHARD_INDEX_NAME];
}
