/**
 * The key/value cache between generation passes, kept where onnxruntime writes it. On the CPU provider each pass
 * writes the grown cache straight into one of two host buffers that passes alternate between (preallocated outputs);
 * on GPU providers it stays in the provider's memory. Either way no cache byte is copied through JavaScript per token.
 */
import { RuntimeTensor, type HostTensor, type RunInput } from "../runtime/session";

/** The cache's layout: per layer, keys and values of [batch, kvHeads, length, headDim]. */
export interface KvLayout {
  layers: number;
  kvHeads: number;
  headDim: number;
}

/** Two sets of host buffers, one float32 array per cache tensor, sized for `capacity` tokens of `batch` rows. */
class HostArena {
  readonly sides: [Float32Array[], Float32Array[]];

  constructor(
    readonly batch: number,
    readonly capacity: number,
    layout: KvLayout,
  ) {
    const size = batch * layout.kvHeads * capacity * layout.headDim;
    const side = () => Array.from({ length: 2 * layout.layers }, () => new Float32Array(size));
    this.sides = [side(), side()];
  }
}

/** Which arena and side a host cache lives in (null: GPU memory, or the empty cache). */
type Home = { arena: HostArena; side: 0 | 1 } | null;

/** A cache for `batch` rows holding `length` tokens. Extending it (one pass) consumes it: use the returned cache. */
export class KvCache {
  private consumed = false;

  /** @internal Tensors are the layers' keys followed by their values. */
  constructor(
    readonly batch: number,
    readonly length: number,
    private readonly tensors: readonly RunInput[],
    private readonly home: Home,
    readonly layout: KvLayout,
  ) {}

  /** An empty cache for `batch` rows. */
  static empty(batch: number, layout: KvLayout): KvCache {
    const empty = (): HostTensor => ({ dtype: "float32", shape: [batch, layout.kvHeads, 0, layout.headDim], data: new Float32Array(0) });
    return new KvCache(batch, 0, Array.from({ length: 2 * layout.layers }, empty), null, layout);
  }

  /** Layer `l`'s keys (`kind` "key") or values as a graph input. */
  input(kind: "key" | "value", layer: number): RunInput {
    this.check();
    if (!(layer >= 0 && layer < this.layout.layers)) throw new RangeError(`KvCache: layer ${layer} is outside 0..${this.layout.layers - 1}`);
    return this.tensors[kind === "key" ? layer : this.tensors.length / 2 + layer];
  }

  /**
   * Where the next pass writes the cache grown to `total` tokens: a host view per tensor (CPU provider), or null
   * where a GPU provider keeps it. The views never overlap this cache's own buffers.
   */
  nextOutputs(total: number, onDevice: boolean): { views: (HostTensor | null)[]; home: Home } {
    this.check();
    const layout = this.layout;
    const count = 2 * layout.layers;
    if (onDevice) return { views: new Array<null>(count).fill(null), home: null };
    const reuse = this.home && this.home.arena.capacity >= total ? this.home : null;
    // Grow by doubling, so n tokens allocate O(log n) times; the old buffers are read once, as the pass's inputs.
    const arena = reuse?.arena ?? new HostArena(this.batch, Math.max(64, 2 * total), layout);
    const side: 0 | 1 = reuse ? ((1 - reuse.side) as 0 | 1) : 0;
    const shape = [this.batch, layout.kvHeads, total, layout.headDim];
    const size = shape.reduce((a, d) => a * d, 1);
    const views = arena.sides[side].map((buffer): HostTensor => ({ dtype: "float32", shape, data: buffer.subarray(0, size) }));
    return { views, home: { arena, side } };
  }

  /** The cache after a pass wrote `tensors`: this one is consumed (its buffers are the next pass's to overwrite). */
  extended(total: number, tensors: readonly RunInput[], home: Home): KvCache {
    this.dispose();
    return new KvCache(this.batch, total, tensors, home, this.layout);
  }

  /**
   * The cache of rows `keep` (batch indices, in order), for a batch whose other rows finished. It is copied once to
   * new host buffers (downloaded from GPU memory first); this cache is consumed.
   */
  async selectRows(keep: readonly number[]): Promise<KvCache> {
    this.check();
    const layout = this.layout;
    if (keep.some((r) => !Number.isInteger(r) || r < 0 || r >= this.batch))
      throw new Error(`selectRows: rows must be in 0..${this.batch - 1}, got ${keep.join(", ")}`);
    const arena = new HostArena(keep.length, Math.max(64, 2 * this.length), layout);
    const per = layout.kvHeads * this.length * layout.headDim;
    const shape = [keep.length, layout.kvHeads, this.length, layout.headDim];
    const tensors: HostTensor[] = [];
    for (const [i, t] of this.tensors.entries()) {
      const src = (t instanceof RuntimeTensor ? await t.toHost() : t).data as Float32Array;
      const out = arena.sides[0][i].subarray(0, keep.length * per);
      keep.forEach((r, k) => out.set(src.subarray(r * per, (r + 1) * per), k * per));
      tensors.push({ dtype: "float32", shape, data: out });
    }
    this.dispose();
    return new KvCache(keep.length, this.length, tensors, { arena, side: 0 }, layout);
  }

  /**
   * Rows of `a` followed by rows of `b` in one cache as long as the longer of the two; the shorter one's rows are
   * left-padded with zeros (their masks must be 0 there). Copied once to new host buffers; both are consumed.
   */
  static async joinRows(a: KvCache, b: KvCache): Promise<KvCache> {
    a.check();
    b.check();
    const { kvHeads, headDim } = a.layout;
    const length = Math.max(a.length, b.length);
    const batch = a.batch + b.batch;
    const arena = new HostArena(batch, Math.max(64, 2 * length), a.layout);
    const shape = [batch, kvHeads, length, headDim];
    const tensors: HostTensor[] = [];
    for (let i = 0; i < a.tensors.length; i++) {
      const out = arena.sides[0][i].subarray(0, batch * kvHeads * length * headDim);
      out.fill(0);
      let row = 0;
      for (const c of [a, b]) {
        const t = c.tensors[i];
        const src = (t instanceof RuntimeTensor ? await t.toHost() : t).data as Float32Array;
        for (let r = 0; r < c.batch; r++, row++) {
          for (let h = 0; h < kvHeads; h++) {
            const from = (r * kvHeads + h) * c.length * headDim;
            out.set(src.subarray(from, from + c.length * headDim), ((row * kvHeads + h) * length + length - c.length) * headDim);
          }
        }
      }
      tensors.push({ dtype: "float32", shape, data: out });
    }
    a.dispose();
    b.dispose();
    return new KvCache(batch, length, tensors, { arena, side: 0 }, a.layout);
  }

  /** Frees what this cache holds in GPU memory; the cache can no longer be used. */
  dispose(): void {
    if (this.consumed) return;
    this.consumed = true;
    for (const t of this.tensors) if (t instanceof RuntimeTensor) t.dispose();
  }

  private check(): void {
    if (this.consumed) throw new Error("this KvCache was already extended or disposed: a cache is extended once; pass the one the last forward() returned");
  }
}
