/** Packing and length-grouped batching into padded int64 tensors ready for onnxruntime. */
import { Rng } from "../util/random";
import { IGNORE_INDEX, type TokenizedExample } from "./tokenize";

/** Options of `packExamples`. */
export interface PackOptions {
  /** Block length (cutoff_len). */
  cutoffLen: number;
  /**
   * "concat" (pre-training): join all examples into one stream and cut it into cutoffLen blocks, splitting
   * examples across blocks. "bins" (SFT): put whole examples into as few cutoffLen bins as fit (first-fit
   * decreasing), never splitting one. Default "concat".
   */
  mode?: "concat" | "bins";
  /** concat: drop the final partial block (default false). */
  dropRemainder?: boolean;
}

/**
 * Packs short LM examples into cutoffLen blocks. Labels keep their -100 masks; `segmentLengths` records where each
 * original example sits so a trainer can reset positions per example if it wants to.
 */
export function packExamples(examples: readonly TokenizedExample[], options: PackOptions): TokenizedExample[] {
  const L = options.cutoffLen;
  if (!Number.isInteger(L) || L < 1) throw new Error(`packExamples cutoffLen: expected a positive integer, got ${L}`);
  for (const e of examples) {
    if (!e.labels) throw new Error(`packExamples: example ${e.id} has no token labels (classification examples cannot be packed)`);
  }
  if ((options.mode ?? "concat") === "concat") {
    const ids: number[] = [];
    const labels: number[] = [];
    const bounds: number[] = [];
    for (const e of examples) {
      ids.push(...e.inputIds);
      labels.push(...e.labels!);
      bounds.push(ids.length);
    }
    const out: TokenizedExample[] = [];
    for (let start = 0, k = 0; start < ids.length; start += L, k++) {
      const end = Math.min(start + L, ids.length);
      if (end - start < L && options.dropRemainder) break;
      const segs: number[] = [];
      let prev = start;
      for (const b of bounds) {
        if (b <= start) continue;
        const e = Math.min(b, end);
        segs.push(e - prev);
        prev = e;
        if (b >= end) break;
      }
      out.push({ id: `packed:${k}`, inputIds: ids.slice(start, end), labels: labels.slice(start, end), segmentLengths: segs });
    }
    return out;
  }
  // First-fit decreasing, with a stable order (length, then input position) so packing is deterministic.
  const order = examples.map((e, k) => ({ e: e.inputIds.length > L ? clip(e, L) : e, k }));
  order.sort((a, b) => b.e.inputIds.length - a.e.inputIds.length || a.k - b.k);
  const bins: { items: TokenizedExample[]; used: number }[] = [];
  for (const { e } of order) {
    const bin = bins.find((b) => b.used + e.inputIds.length <= L);
    if (bin) {
      bin.items.push(e);
      bin.used += e.inputIds.length;
    } else bins.push({ items: [e], used: e.inputIds.length });
  }
  return bins.map((b, k) => ({
    id: `packed:${k}`,
    inputIds: b.items.flatMap((e) => e.inputIds),
    labels: b.items.flatMap((e) => e.labels!),
    segmentLengths: b.items.map((e) => e.inputIds.length),
  }));
}

function clip(e: TokenizedExample, L: number): TokenizedExample {
  return { ...e, inputIds: e.inputIds.slice(0, L), labels: e.labels!.slice(0, L) };
}

/** A padded batch, row-major with shape [batch, seq]; padding is on the right. */
export interface Batch {
  readonly shape: readonly [number, number];
  readonly inputIds: BigInt64Array;
  /** 1 for real tokens, 0 for padding (int64, as ONNX attention_mask inputs expect). */
  readonly attentionMask: BigInt64Array;
  /** Token labels [batch, seq] with -100 on prompt tokens and padding (LM examples). */
  readonly labels?: BigInt64Array;
  /** Class indices [batch] (classification examples). */
  readonly classLabels?: BigInt64Array;
  /** Example ids in batch row order. */
  readonly ids: readonly string[];
  /** Real (non-padding) tokens in the batch. */
  readonly numTokens: number;
}

/** Pads examples to the longest one (or a multiple of `padToMultipleOf`) into one batch. */
export function collate(examples: readonly TokenizedExample[], padTokenId: number, padToMultipleOf = 1): Batch {
  if (examples.length === 0) throw new Error("collate: no examples");
  const hasLabels = examples[0].labels !== undefined;
  const hasClass = examples[0].classLabel !== undefined;
  for (const e of examples) {
    if ((e.labels !== undefined) !== hasLabels || (e.classLabel !== undefined) !== hasClass) {
      throw new Error(`collate: example ${e.id} mixes LM and classification examples in one batch`);
    }
    if (e.labels && e.labels.length !== e.inputIds.length) {
      throw new Error(`collate: example ${e.id} has ${e.labels.length} labels for ${e.inputIds.length} tokens`);
    }
  }
  const b = examples.length;
  const longest = Math.max(...examples.map((e) => e.inputIds.length));
  const seq = Math.max(1, Math.ceil(longest / padToMultipleOf) * padToMultipleOf);
  const inputIds = new BigInt64Array(b * seq).fill(BigInt(padTokenId));
  const attentionMask = new BigInt64Array(b * seq);
  const labels = hasLabels ? new BigInt64Array(b * seq).fill(BigInt(IGNORE_INDEX)) : undefined;
  let numTokens = 0;
  examples.forEach((e, r) => {
    const base = r * seq;
    e.inputIds.forEach((id, t) => {
      inputIds[base + t] = BigInt(id);
      attentionMask[base + t] = 1n;
    });
    if (labels) e.labels!.forEach((l, t) => (labels[base + t] = BigInt(l)));
    numTokens += e.inputIds.length;
  });
  return {
    shape: [b, seq],
    inputIds,
    attentionMask,
    ...(labels ? { labels } : {}),
    ...(hasClass ? { classLabels: BigInt64Array.from(examples.map((e) => BigInt(e.classLabel!))) } : {}),
    ids: examples.map((e) => e.id),
    numTokens,
  };
}

/** Options of `makeBatches`. */
export interface BatchOptions {
  batchSize: number;
  padTokenId: number;
  /** Seed for the order (use seed + epoch for a new order each epoch). Default 42. */
  seed?: number;
  /** Shuffle before grouping (default true); false keeps the input order. */
  shuffle?: boolean;
  /** Sort by length inside seeded mega-batches so batches hold similar lengths (default true). */
  groupByLength?: boolean;
  /** Mega-batch size in batches (Hugging Face's LengthGroupedSampler uses 50). */
  megaBatchMult?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  padToMultipleOf?: number;
}

/**
 * Splits examples into padded batches. With groupByLength, a seeded shuffle is cut into mega-batches of
 * megaBatchMult * batchSize, each sorted longest-first and cut into batches, so padding stays small while the
 * order stays random across mega-batches.
 */
export function makeBatches(examples: readonly TokenizedExample[], options: BatchOptions): Batch[] {
  const bs = options.batchSize;
  if (!Number.isInteger(bs) || bs < 1) throw new Error(`makeBatches batchSize: expected a positive integer, got ${bs}`);
  const rng = new Rng(options.seed ?? 42);
  let order = examples.map((_, k) => k);
  if (options.shuffle ?? true) order = rng.shuffle(order);
  if (options.groupByLength ?? true) {
    const mega = bs * (options.megaBatchMult ?? 50);
    const grouped: number[] = [];
    for (let s = 0; s < order.length; s += mega) {
      const chunk = order.slice(s, s + mega);
      chunk.sort((a, b) => examples[b].inputIds.length - examples[a].inputIds.length || a - b);
      grouped.push(...chunk);
    }
    order = grouped;
  }
  const batches: Batch[] = [];
  for (let s = 0; s < order.length; s += bs) {
    const idx = order.slice(s, s + bs);
    if (idx.length < bs && options.dropLast) break;
    batches.push(collate(idx.map((k) => examples[k]), options.padTokenId, options.padToMultipleOf));
  }
  return batches;
}

/** An int64 attention mask as float32 (for graphs that add it to attention scores). */
export function maskToFloat32(mask: BigInt64Array): Float32Array {
  return Float32Array.from(mask, (m) => Number(m));
}
