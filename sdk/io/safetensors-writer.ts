/**
 * Streaming safetensors writer: each tensor's bytes are produced in small chunks by a callback and appended to
 * the file, so writing a 15 GB checkpoint holds one chunk in memory, not the model. The header is computed
 * from shapes alone (it comes first in the file). Shards and `model.safetensors.index.json` follow
 * transformers' layout; files are written atomically (temporary name, then rename).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomicWith, writeJsonAtomic } from "./atomic";
import { DTYPE_SIZE, numelOf, SHARD_INDEX_NAME, type Dtype } from "./safetensors";

/** A tensor to stream: its name, dtype and shape; the bytes come from a `StreamFill`. */
export interface StreamTensor {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
}

/**
 * Fills `out` with the next bytes of tensor `t` (little-endian), starting at byte `offset` of the tensor.
 * Called in order, offset 0 first, so a generator may keep per-tensor state.
 */
export type StreamFill = (t: StreamTensor, offset: number, out: Uint8Array) => void;

/** Bytes produced per fill call: big enough for fast writes, small enough to keep memory flat. */
export const STREAM_CHUNK_BYTES = 8 << 20;

/** Size in bytes of one tensor's data. */
export function tensorByteLength(t: StreamTensor): number {
  return numelOf(t.shape) * DTYPE_SIZE[t.dtype];
}

/** The safetensors header bytes (8-byte length + JSON padded to 8) for tensors laid out in the given order. */
function headerBytes(tensors: readonly StreamTensor[], metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const size = tensorByteLength(t);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json, "utf8") % 8)) % 8);
  const body = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + body.byteLength);
  out.writeBigUInt64LE(BigInt(body.byteLength), 0);
  body.copy(out, 8);
  return out;
}

/** Writes one safetensors file whose tensor bytes come from `fill`, chunk by chunk. Returns the data bytes. */
export function writeSafetensorsStream(
  file: string,
  tensors: readonly StreamTensor[],
  fill: StreamFill,
  metadata: Record<string, string> = { format: "pt" },
): number {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`${file}: tensor "${t.name}" is listed twice`);
    if (t.name === "__metadata__") throw new Error(`${file}: "__metadata__" cannot be a tensor name`);
    names.add(t.name);
  }
  // Aligned to 8 so fill callbacks can view the chunk as any typed array.
  const chunk = new Uint8Array(new ArrayBuffer(STREAM_CHUNK_BYTES));
  let total = 0;
  writeFileAtomicWith(file, (append) => {
    append(headerBytes(tensors, metadata));
    for (const t of tensors) {
      const size = tensorByteLength(t);
      for (let offset = 0; offset < size; offset += chunk.byteLength) {
        const part = chunk.subarray(0, Math.min(chunk.byteLength, size - offset));
        fill(t, offset, part);
        append(part);
      }
      total += size;
    }
  });
  return total;
}

/** How a checkpoint is split: one `model.safetensors`, or shards named `model-0000k-of-<n padded>.safetensors`. */
export interface ShardLayout {
  /** Largest shard before the next tensor starts a new one (bytes of tensor data). */
  maxShardBytes: number;
  /** Digits of the shard count in file names: 5 is transformers' default; DeepSeek's R1 distills use 6. */
  countDigits?: number;
}

/** The shard file names and which tensors go in each, greedily in the given order as transformers splits. */
export function planShards(tensors: readonly StreamTensor[], layout: ShardLayout): { file: string; tensors: StreamTensor[] }[] {
  const groups: StreamTensor[][] = [[]];
  let current = 0;
  for (const t of tensors) {
    const size = tensorByteLength(t);
    if (current > 0 && current + size > layout.maxShardBytes) {
      groups.push([]);
      current = 0;
    }
    groups[groups.length - 1].push(t);
    current += size;
  }
  if (groups.length === 1) return [{ file: "model.safetensors", tensors: groups[0] }];
  const n = String(groups.length).padStart(layout.countDigits ?? 5, "0");
  return groups.map((g, i) => ({ file: `model-${String(i + 1).padStart(5, "0")}-of-${n}.safetensors`, tensors: g }));
}

/** What writeModelStream wrote. */
export interface StreamedWeights {
  /** Weight files written (shards then index, or model.safetensors). */
  files: string[];
  /** Sum of tensor data bytes (the index's `metadata.total_size`). */
  totalSize: number;
}

/** Matches the weight files of a HF folder, so stale ones from an earlier model can be removed. */
export function isWeightFile(name: string): boolean {
  return name === "model.safetensors" || name === SHARD_INDEX_NAME || /^model-\d{5}-of-\d{5,6}\.safetensors$/.test(name);
}

/**
 * Streams model weights into `dir` as the layout says, then writes the index (when sharded) and removes weight
 * files of another layout, so readers never see a mix of old and new weights.
 */
export function writeModelStream(dir: string, tensors: readonly StreamTensor[], fill: StreamFill, layout: ShardLayout): StreamedWeights {
  fs.mkdirSync(dir, { recursive: true });
  const plan = planShards(tensors, layout);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const shard of plan) {
    totalSize += writeSafetensorsStream(path.join(dir, shard.file), shard.tensors, fill);
    for (const t of shard.tensors) weightMap[t.name] = shard.file;
  }
  const files = plan.map((s) => s.file);
  if (plan.length > 1) {
    // transformers writes the index with sorted keys.
    const sorted = Object.fromEntries(
      Object.keys(weightMap)
        .sort()
        .map((k) => [k, weightMap[k]]),
    );
    writeJsonAtomic(path.join(dir, SHARD_INDEX_NAME), { metadata: { total_size: totalSize }, weight_map: sorted });
    files.push(SHARD_INDEX_NAME);
  }
  const keep = new Set(files);
  for (const f of fs.readdirSync(dir)) if (isWeightFile(f) && !keep.has(f)) fs.rmSync(path.join(dir, f));
  return { files, totalSize };
}
