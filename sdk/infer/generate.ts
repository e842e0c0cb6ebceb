/**
 * Text generation as transformers' generate() does it: greedy or sampled decoding (temperature, top_k, top_p,
 * repetition penalty), stopping at end-of-sequence ids or stop strings, over a key/value-cache graph so each new
 * token costs one token's work. One session serves the prompt pass (empty cache) and every decoding step.
 */
import type { Tokenizer } from "../io/tokenizer";
import { cacheNames } from "../models/decoder";
import { compileGenerationGraph } from "../models/generation-graph";
import { resolveLora, type LoraSource, type LoraState } from "../models/lora";
import type { BaseModel } from "../models/model";
import { Device } from "../runtime/device";
import { sessionForGraph } from "../runtime/graph-session";
import { Session, type RunInput } from "../runtime/session";
import { Rng } from "../util/random";
import { KvCache, type KvLayout } from "./kv-cache";
import { SamplingSettings, selectToken } from "./sampling";

export { KvCache } from "./kv-cache";

/** One pass of the model over new tokens: `inputIds` [batch][seq] with optional mask and positions. */
export interface ForwardInputs {
  inputIds: readonly (readonly number[])[];
  /** [batch][past+seq], 1 = real token; default all ones. */
  attentionMask?: readonly (readonly number[])[];
  /** [batch][seq] absolute positions; default past, past+1, ... */
  positionIds?: readonly (readonly number[])[];
}

/** What one pass returns: each row's next-token logits (vocabulary order) and the grown cache. */
export interface ForwardResult {
  logits: Float32Array[];
  cache: KvCache;
}

/** Why generation of a sequence ended: an end-of-sequence id or stop string, or max_new_tokens. */
export type FinishReason = "stop" | "length";

/** Options of `Generator.generate` (transformers' GenerationConfig names in camelCase). */
export interface GenerateOptions {
  /** Most new tokens (`max_new_tokens`); default generation_config.json's, else 256. */
  maxNewTokens?: number;
  /** Sample (true) or take the argmax (false); default generation_config.json's `do_sample`, else false. */
  doSample?: boolean;
  /** Divides the logits before sampling; 0 means greedy. Default generation_config.json's, else 1. */
  temperature?: number;
  /** Keep only the k most likely tokens when sampling (0 = off); default generation_config.json's, else 50 as transformers. */
  topK?: number;
  /** Nucleus sampling threshold in (0, 1]; default generation_config.json's, else 1 (off). */
  topP?: number;
  /** transformers' repetition penalty (> 0, 1 = off) over prompt and output tokens; default generation_config.json's, else 1. */
  repetitionPenalty?: number;
  /** Seed of this call's sampling; default: the generator's own seeded stream, which advances across calls. */
  seed?: number;
  /** Ids that end a sequence; default the tokenizer's eosTokenIds (which include generation_config.json's). */
  eosTokenIds?: readonly number[];
  /** Texts that end a sequence once they appear in the decoded output. */
  stopStrings?: readonly string[];
  /** false recomputes the whole sequence for every token (no cache), to check the cache. Default true. */
  useCache?: boolean;
  /** Called with each new token of each row as soon as it is chosen. */
  onToken?: (tokenId: number, row: number) => void;
}

/** One generated sequence. */
export interface GenerationResult {
  /** The new tokens, without the end-of-sequence id that stopped them (a stop string's tokens are kept). */
  tokens: number[];
  /** The new tokens decoded, special tokens skipped. */
  text: string;
  finishReason: FinishReason;
  /** Number of prompt tokens. */
  promptTokens: number;
}

/** One row of `Generator.generateRows`: a prompt with its own options. */
export interface GenerateRow {
  prompt: readonly number[];
  /** This row's options; `onToken` receives row 0. `useCache: false` on any row turns the cache off for the batch. */
  options?: GenerateOptions;
  /** Aborting it ends the row at the next step (a client that went away). */
  signal?: AbortSignal;
  /** Called with the row's result as soon as it ends, while other rows may still be generating. */
  onDone?: (result: GenerationResult) => void;
}

/** Options of `Generator.generateRows`: continuous batching. */
export interface GenerateRowsOptions {
  /**
   * Called before every step with the number of rows still generating; the rows it returns join the batch (their
   * prompts run in that step, the running rows wait one step), so a server can add requests to a running batch.
   */
  join?: (running: number) => readonly GenerateRow[];
  /** Called with the number of rows in each forward pass. */
  onStep?: (rows: number) => void;
}

/** The settings of one row after defaults. */
type RowSettings = SamplingSettings & { maxNewTokens: number; eos: Set<number>; stopStrings: readonly string[] };

/** A row as the decoding loop takes it. */
interface DecodeRow {
  prompt: readonly number[];
  s: RowSettings;
  rng: Rng;
  onToken?: (tokenId: number) => void;
  signal?: AbortSignal;
  onDone?: (result: GenerationResult) => void;
}

function checkPrompts(prompts: readonly (readonly number[])[]): void {
  prompts.forEach((p, i) => {
    if (!Array.isArray(p) || p.length === 0) throw new Error(`generate: prompt ${i} is empty; it needs at least one token`);
  });
}

/** Left-pads the token ids, masks (0 there) and positions of `rows` by `extra` slots, to match a longer cache. */
function padRows(rows: readonly { ids: number[]; mask: number[]; positions: number[] }[], extra: number, pad: number): void {
  for (const r of rows) {
    r.ids.unshift(...new Array<number>(extra).fill(pad));
    r.mask.unshift(...new Array<number>(extra).fill(0));
    r.positions.unshift(...new Array<number>(extra).fill(1));
  }
}

/** Options of a Generator. */
export interface GeneratorOptions {
  /** LoRA weights applied while generating (trainer tensors or a PEFT adapter); none by default. */
  lora?: LoraSource | null;
  /** Execution provider; default "cpu". */
  device?: Device;
  /** Threads for one op (default: onnxruntime's choice). */
  threads?: number;
  /** Seed of the generator's sampling stream, used by calls without their own seed; default 0. */
  seed?: number;
}

/** Generates text from a base model (plus an optional LoRA adapter) with one cached-decoding session. */
export class Generator {
  readonly base: BaseModel;
  private lora: LoraState | null;
  private session: Promise<Session> | null = null;
  private rng: Rng;

  constructor(
    base: BaseModel,
    private readonly options: GeneratorOptions = {},
  ) {
    this.base = base;
    this.lora = options.lora ? resolveLora(base.config, options.lora) : null;
    this.rng = new Rng(options.seed ?? 0);
  }

  /** The model's tokenizer. */
  get tokenizer(): Tokenizer {
    return this.base.tokenizer;
  }

  /** Replaces the LoRA weights (e.g. after more training); the session is rebuilt on the next call. */
  async setLora(lora: LoraSource | null): Promise<void> {
    this.lora = lora ? resolveLora(this.base.config, lora) : null;
    await this.release();
  }

  private getSession(): Promise<Session> {
    if (!this.session) {
      const graph = compileGenerationGraph(this.base.config, this.base.weights, this.lora);
      const layers = Array.from({ length: this.base.config.numHiddenLayers }, (_, l) => l);
      const present = [...layers.map(cacheNames.presentKey), ...layers.map(cacheNames.presentValue)];
      this.session = sessionForGraph(graph, { device: this.options.device, threads: this.options.threads, keepOnDevice: present });
      this.session.catch(() => (this.session = null));
    }
    return this.session;
  }

  private get layout(): KvLayout {
    const { numHiddenLayers: layers, numKeyValueHeads: kvHeads, headDim } = this.base.config;
    return { layers, kvHeads, headDim };
  }

  /** An empty cache for `batch` rows. */
  emptyCache(batch: number): KvCache {
    return KvCache.empty(batch, this.layout);
  }

  /**
   * Runs the model over new tokens after `cache` (none: an empty one); returns the last position's logits per row and
   * the grown cache, which replaces `cache` (a cache is extended once).
   */
  async forward(inputs: ForwardInputs, cache: KvCache | null = null): Promise<ForwardResult> {
    const ids = inputs.inputIds;
    const batch = ids.length;
    const seq = ids[0]?.length ?? 0;
    if (batch === 0 || seq === 0) throw new Error("forward: inputIds must have at least one row and one token");
    const past = cache ?? this.emptyCache(batch);
    if (past.batch !== batch) throw new Error(`forward: the cache has ${past.batch} rows, inputIds has ${batch}`);
    const total = past.length + seq;
    const vocab = this.base.config.vocabSize;
    const rect = (rows: readonly (readonly number[])[], width: number, what: string) => {
      if (rows.length !== batch || rows.some((r) => r.length !== width)) throw new Error(`forward: ${what} must be ${batch} rows of ${width} values`);
      return BigInt64Array.from(rows.flat(), (v) => BigInt(v));
    };
    for (const row of ids) {
      for (const t of row)
        if (!Number.isSafeInteger(t) || t < 0 || t >= vocab) throw new Error(`forward: token id ${t} is outside the vocabulary (0..${vocab - 1})`);
    }
    const mask = inputs.attentionMask ?? ids.map(() => new Array<number>(total).fill(1));
    const positions = inputs.positionIds ?? ids.map(() => Array.from({ length: seq }, (_, i) => past.length + i));
    const feeds: Record<string, RunInput> = {
      input_ids: { dtype: "int64", shape: [batch, seq], data: rect(ids, seq, "inputIds") },
      attention_mask: { dtype: "int64", shape: [batch, total], data: rect(mask, total, "attentionMask (past + new tokens)") },
      [cacheNames.positionIds]: { dtype: "int64", shape: [batch, seq], data: rect(positions, seq, "positionIds") },
    };
    const layout = this.layout;
    const layers = Array.from({ length: layout.layers }, (_, l) => l);
    for (const l of layers) {
      feeds[cacheNames.pastKey(l)] = past.input("key", l);
      feeds[cacheNames.pastValue(l)] = past.input("value", l);
    }
    const session = await this.getSession();
    // The grown cache goes straight where the next pass reads it: no copy of it through JavaScript per token.
    const next = past.nextOutputs(total, session.provider !== "cpu");
    const present = [...layers.map(cacheNames.presentKey), ...layers.map(cacheNames.presentValue)];
    const out = await session.runKeeping(feeds, Object.fromEntries(present.map((name, i) => [name, next.views[i]])));
    const logits = out.host.logits.data as Float32Array;
    return {
      logits: Array.from({ length: batch }, (_, r) => logits.subarray(r * vocab, (r + 1) * vocab)),
      cache: past.extended(
        total,
        present.map((name) => out.kept[name]),
        next.home,
      ),
    };
  }

  /** The settings of one call: its options over generation_config.json over transformers' defaults. */
  private settings(opts: GenerateOptions): RowSettings {
    const g = this.base.generationConfig;
    const temperature = opts.temperature ?? g?.temperature ?? 1;
    const s = {
      doSample: (opts.doSample ?? g?.doSample ?? false) && temperature > 0,
      temperature,
      topK: opts.topK ?? g?.topK ?? 50,
      topP: opts.topP ?? g?.topP ?? 1,
      repetitionPenalty: opts.repetitionPenalty ?? g?.repetitionPenalty ?? 1,
      maxNewTokens: opts.maxNewTokens ?? g?.maxNewTokens ?? 256,
      eos: new Set(opts.eosTokenIds ?? this.tokenizer.eosTokenIds),
      stopStrings: opts.stopStrings ?? [],
    };
    const bad = (name: string, want: string, got: unknown) => new Error(`generate: ${name} must be ${want}, got ${JSON.stringify(got)}`);
    if (!(s.temperature >= 0) || !Number.isFinite(s.temperature)) throw bad("temperature", "a number >= 0", s.temperature);
    if (!Number.isSafeInteger(s.topK) || s.topK < 0) throw bad("topK", "an integer >= 0", s.topK);
    if (!(s.topP > 0 && s.topP <= 1)) throw bad("topP", "in (0, 1]", s.topP);
    if (!(s.repetitionPenalty > 0) || !Number.isFinite(s.repetitionPenalty)) throw bad("repetitionPenalty", "a number > 0", s.repetitionPenalty);
    if (!Number.isSafeInteger(s.maxNewTokens) || s.maxNewTokens < 0) throw bad("maxNewTokens", "an integer >= 0", s.maxNewTokens);
    if (s.stopStrings.some((x) => typeof x !== "string" || x.length === 0)) throw bad("stopStrings", "non-empty strings", s.stopStrings);
    return s;
  }

  /** Generates a continuation of one prompt. */
  generate(prompt: readonly number[], opts?: GenerateOptions): Promise<GenerationResult>;
  /** Generates continuations of several prompts in one batch (left-padded, each row stops on its own). */
  generate(prompts: readonly (readonly number[])[], opts?: GenerateOptions): Promise<GenerationResult[]>;
  async generate(prompt: readonly number[] | readonly (readonly number[])[], opts: GenerateOptions = {}): Promise<GenerationResult | GenerationResult[]> {
    const batched = prompt.length > 0 && Array.isArray(prompt[0]);
    const prompts = (batched ? prompt : [prompt]) as readonly (readonly number[])[];
    if (prompts.length === 0) throw new Error("generate: no prompts");
    checkPrompts(prompts);
    const s = this.settings(opts);
    const rng = opts.seed !== undefined ? new Rng(opts.seed) : this.rng; // one stream for every row, in row order
    const onToken = opts.onToken;
    const rows = prompts.map((p, row) => ({ prompt: p, s, rng, onToken: onToken && ((t: number) => onToken(t, row)) }));
    const results = await this.decode(rows, opts.useCache ?? true);
    return batched ? results : results[0];
  }

  /**
   * Generates several prompts in one batch, each row with its own options (sampling, max_new_tokens, stop ids and
   * strings, seed, onToken with row 0), as a server batches unrelated requests. A row whose `signal` is aborted
   * stops at the next step (finish reason "stop"). Finished rows leave the batch (and its cache), and with
   * `options.join` new rows enter it while it runs (continuous batching). Resolves with every row's result, the
   * joined ones after the first, in the order they joined.
   */
  async generateRows(rows: readonly GenerateRow[], options: GenerateRowsOptions = {}): Promise<GenerationResult[]> {
    if (rows.length === 0) throw new Error("generateRows: no rows");
    const prepare = (list: readonly GenerateRow[]): DecodeRow[] => {
      checkPrompts(list.map((r) => r.prompt));
      return list.map((r) => {
        const opts = r.options ?? {};
        const onToken = opts.onToken;
        return {
          prompt: r.prompt,
          s: this.settings(opts),
          rng: opts.seed !== undefined ? new Rng(opts.seed) : this.rng,
          onToken: onToken && ((t: number) => onToken(t, 0)),
          signal: r.signal,
          onDone: r.onDone,
        };
      });
    };
    const useCache = rows.every((r) => r.options?.useCache ?? true);
    if (!useCache && options.join) throw new Error("generateRows: rows cannot join a batch that runs without the cache");
    const join = options.join;
    return this.decode(prepare(rows), useCache, join && ((running: number) => prepare(join(running))), options.onStep);
  }

  /**
   * The decoding loop. Each row keeps its token ids, attention mask and positions, one longer than the cache (the
   * last token is fed next). A step either runs the prompts of newly joined rows (left-padded to their longest,
   * positions counting real tokens only) and merges their cache with the running rows' (the shorter one
   * left-padded, masked out), or feeds every running row its last token. Finished rows are cut out of the cache.
   */
  private async decode(
    first: readonly DecodeRow[],
    useCache: boolean,
    join?: (running: number) => DecodeRow[],
    onStep?: (rows: number) => void,
  ): Promise<GenerationResult[]> {
    const pad = this.tokenizer.padTokenId;
    interface State {
      row: DecodeRow;
      ids: number[];
      mask: number[];
      positions: number[];
      outputs: number[];
      seen: Set<number>;
      decoded: string;
      finish: FinishReason | null;
    }
    const all: State[] = [];
    let live: State[] = [];
    let cache: KvCache | null = null;
    const joining: DecodeRow[] = [...first];

    const finishRow = (st: State) => {
      const result = {
        tokens: st.outputs,
        text: this.tokenizer.decode(st.outputs, { skipSpecialTokens: true }),
        finishReason: st.finish ?? "length",
        promptTokens: st.row.prompt.length,
      };
      st.row.onDone?.(result);
      return result;
    };
    const results = new Map<State, GenerationResult>();
    /** Takes a sampled token for a row: ends it on eos, a stop string or max_new_tokens. */
    const accept = (st: State, token: number) => {
      const { s } = st.row;
      st.ids.push(token);
      st.mask.push(1);
      st.positions.push(st.positions[st.positions.length - 1] + 1);
      if (s.eos.has(token)) {
        st.finish = "stop";
        return;
      }
      st.outputs.push(token);
      st.seen.add(token);
      st.row.onToken?.(token);
      if (s.stopStrings.length > 0) {
        const before = st.decoded.length;
        st.decoded = this.tokenizer.decode(st.outputs);
        const from = Math.max(0, before - Math.max(...s.stopStrings.map((x) => x.length)));
        if (s.stopStrings.some((x) => st.decoded.indexOf(x, from) >= 0)) st.finish = "stop";
      }
      if (st.finish === null && st.outputs.length >= s.maxNewTokens) st.finish = "length";
    };
    const sample = (st: State, logits: Float32Array) => {
      if (st.row.signal?.aborted) st.finish = "stop";
      else accept(st, selectToken(logits, st.seen, st.row.s, st.row.rng));
    };

    try {
      for (;;) {
        if (join) joining.push(...join(live.length));
        const fresh = joining.splice(0).map((row): State => {
          const st = { row, ids: [], mask: [], positions: [], outputs: [], seen: new Set(row.prompt), decoded: "", finish: null } as State;
          all.push(st);
          if (row.s.maxNewTokens === 0) st.finish = "length";
          return st;
        });
        for (const st of fresh.filter((x) => x.finish !== null)) results.set(st, finishRow(st));
        const entering = fresh.filter((x) => x.finish === null);
        let stepped: State[];
        if (entering.length > 0) {
          // The new rows' prompts, left-padded to their longest; their cache then merges with the running rows'.
          const width = Math.max(...entering.map((st) => st.row.prompt.length));
          for (const st of entering) {
            const p = st.row.prompt;
            st.ids = [...new Array<number>(width - p.length).fill(pad), ...p];
            st.mask = [...new Array<number>(width - p.length).fill(0), ...new Array<number>(p.length).fill(1)];
            st.positions = [...new Array<number>(width - p.length).fill(1), ...p.map((_, i) => i)];
          }
          onStep?.(entering.length);
          const result = await this.forward({
            inputIds: entering.map((st) => st.ids),
            attentionMask: entering.map((st) => st.mask),
            positionIds: entering.map((st) => st.positions),
          });
          entering.forEach((st, i) => sample(st, result.logits[i]));
          if (!useCache) result.cache.dispose();
          else if (live.length === 0) cache = result.cache;
          else {
            // The shorter side is left-padded (masked out) to the longer one's length; the caches then join row-wise.
            const length = Math.max(cache!.length, result.cache.length);
            padRows(live, length - cache!.length, pad);
            padRows(entering, length - result.cache.length, pad);
            cache = await KvCache.joinRows(cache!, result.cache);
          }
          live = [...live, ...entering];
          stepped = live;
        } else if (live.length > 0) {
          onStep?.(live.length);
          const attentionMask = live.map((st) => st.mask);
          const result: ForwardResult = useCache
            ? await this.forward(
                {
                  inputIds: live.map((st) => [st.ids[st.ids.length - 1]]),
                  positionIds: live.map((st) => [st.positions[st.positions.length - 1]]),
                  attentionMask,
                },
                cache,
              )
            : await this.forward({ inputIds: live.map((st) => st.ids), positionIds: live.map((st) => st.positions), attentionMask }, null);
          live.forEach((st, i) => sample(st, result.logits[i]));
          if (useCache) cache = result.cache;
          else result.cache.dispose();
          stepped = live;
        } else {
          break;
        }
        const keep = stepped.flatMap((st, i) => (st.finish === null ? [i] : []));
        for (const st of stepped) if (st.finish !== null) results.set(st, finishRow(st));
        if (useCache && keep.length < stepped.length) {
          if (keep.length > 0) cache = await cache!.selectRows(keep);
          else {
            cache!.dispose();
            cache = null;
          }
        }
        live = keep.map((i) => stepped[i]);
      }
    } finally {
      (cache as KvCache | null)?.dispose(); // frees GPU memory now rather than at garbage collection
    }
    return all.map((st) => results.get(st)!);
  }

  /** Frees the session (a later call makes a new one). */
  async release(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (session) await (await session).release();
  }
}
