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
import { HostTensor, Session } from "../runtime/session";
import { Rng } from "../util/random";
import { SamplingSettings, selectToken } from "./sampling";

/** A key/value cache for `batch` rows: per layer [batch, kvHeads, length, headDim]. */
export interface KvCache {
  batch: number;
  length: number;
  keys: HostTensor[];
  values: HostTensor[];
}

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
}

function checkPrompts(prompts: readonly (readonly number[])[]): void {
  prompts.forEach((p, i) => {
    if (!Array.isArray(p) || p.length === 0) throw new Error(`generate: prompt ${i} is empty; it needs at least one token`);
  });
}

/** The cache of rows `keep` (batch indices, in order): each tensor [batch, kvHeads, length, headDim] cut along batch. */
export function selectCacheRows(cache: KvCache, keep: readonly number[]): KvCache {
  const pick = (t: HostTensor): HostTensor => {
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const src = t.data as Float32Array;
    const out = new (src.constructor as Float32ArrayConstructor)(keep.length * per);
    keep.forEach((r, i) => out.set(src.subarray(r * per, (r + 1) * per), i * per));
    return { dtype: t.dtype, shape: [keep.length, ...t.shape.slice(1)], data: out };
  };
  return { batch: keep.length, length: cache.length, keys: cache.keys.map(pick), values: cache.values.map(pick) };
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
      this.session = sessionForGraph(graph, { device: this.options.device, threads: this.options.threads });
      this.session.catch(() => (this.session = null));
    }
    return this.session;
  }

  /** An empty cache for `batch` rows. */
  emptyCache(batch: number): KvCache {
    const { numHiddenLayers: layers, numKeyValueHeads: kv, headDim } = this.base.config;
    const empty = (): HostTensor => ({ dtype: "float32", shape: [batch, kv, 0, headDim], data: new Float32Array(0) });
    return { batch, length: 0, keys: Array.from({ length: layers }, empty), values: Array.from({ length: layers }, empty) };
  }

  /** Runs the model over new tokens after `cache` (none: an empty one); returns the last position's logits per row. */
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
    const feeds: Record<string, HostTensor> = {
      input_ids: { dtype: "int64", shape: [batch, seq], data: rect(ids, seq, "inputIds") },
      attention_mask: { dtype: "int64", shape: [batch, total], data: rect(mask, total, "attentionMask (past + new tokens)") },
      [cacheNames.positionIds]: { dtype: "int64", shape: [batch, seq], data: rect(positions, seq, "positionIds") },
    };
    past.keys.forEach((k, l) => (feeds[cacheNames.pastKey(l)] = k));
    past.values.forEach((v, l) => (feeds[cacheNames.pastValue(l)] = v));
    const out = await (await this.getSession()).run(feeds);
    const logits = out.logits.data as Float32Array;
    const layers = this.base.config.numHiddenLayers;
    return {
      logits: Array.from({ length: batch }, (_, r) => logits.subarray(r * vocab, (r + 1) * vocab)),
      cache: {
        batch,
        length: total,
        keys: Array.from({ length: layers }, (_, l) => out[cacheNames.presentKey(l)]),
        values: Array.from({ length: layers }, (_, l) => out[cacheNames.presentValue(l)]),
      },
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
   * stops at the next step (finish reason "stop"). Finished rows leave the batch, so later steps cost less.
   */
  async generateRows(rows: readonly GenerateRow[]): Promise<GenerationResult[]> {
    if (rows.length === 0) throw new Error("generateRows: no rows");
    checkPrompts(rows.map((r) => r.prompt));
    const prepared = rows.map((r) => {
      const opts = r.options ?? {};
      const onToken = opts.onToken;
      return {
        prompt: r.prompt,
        s: this.settings(opts),
        rng: opts.seed !== undefined ? new Rng(opts.seed) : this.rng,
        onToken: onToken && ((t: number) => onToken(t, 0)),
        signal: r.signal,
      };
    });
    const useCache = rows.every((r) => r.options?.useCache ?? true);
    return this.decode(prepared, useCache);
  }

  /** The decoding loop: left-padded prompts, one forward pass per step over the rows still running. */
  private async decode(rows: readonly DecodeRow[], useCache: boolean): Promise<GenerationResult[]> {
    const width = Math.max(...rows.map((r) => r.prompt.length));
    const pad = this.tokenizer.padTokenId;

    // Left padding, so every row's last prompt token is the last position; positions count real tokens only.
    const ids = rows.map(({ prompt: p }) => [...new Array<number>(width - p.length).fill(pad), ...p]);
    const mask = rows.map(({ prompt: p }) => [...new Array<number>(width - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
    const positions = rows.map(({ prompt: p }) => [...new Array<number>(width - p.length).fill(1), ...p.map((_, i) => i)]);
    const outputs: number[][] = rows.map(() => []);
    const seen = rows.map((r) => new Set(r.prompt));
    const finish: (FinishReason | null)[] = rows.map((r) => (r.s.maxNewTokens === 0 ? "length" : null));
    const decoded = rows.map(() => "");

    // `live` lists the rows still generating, in batch order; the cache holds exactly those rows.
    let live = rows.map((_, row) => row).filter((row) => finish[row] === null);
    let cache: KvCache | null = null;
    let feed = { inputIds: live.map((r) => ids[r]), positionIds: live.map((r) => positions[r]) };
    while (live.length > 0) {
      const attentionMask = live.map((r) => mask[r]);
      const result: ForwardResult = useCache
        ? await this.forward({ ...feed, attentionMask }, cache)
        : await this.forward({ inputIds: live.map((r) => ids[r]), positionIds: live.map((r) => positions[r]), attentionMask }, null);
      live.forEach((row, i) => {
        const { s } = rows[row];
        if (rows[row].signal?.aborted) {
          finish[row] = "stop";
          return;
        }
        const token = selectToken(result.logits[i], seen[row], s, rows[row].rng);
        ids[row].push(token);
        mask[row].push(1);
        positions[row].push(positions[row][positions[row].length - 1] + 1);
        if (s.eos.has(token)) {
          finish[row] = "stop";
          return;
        }
        outputs[row].push(token);
        seen[row].add(token);
        rows[row].onToken?.(token);
        if (s.stopStrings.length > 0) {
          const before = decoded[row].length;
          decoded[row] = this.tokenizer.decode(outputs[row]);
          const from = Math.max(0, before - Math.max(...s.stopStrings.map((x) => x.length)));
          if (s.stopStrings.some((x) => decoded[row].indexOf(x, from) >= 0)) finish[row] = "stop";
        }
        if (finish[row] === null && outputs[row].length >= s.maxNewTokens) finish[row] = "length";
      });
      const keep = live.flatMap((row, i) => (finish[row] === null ? [i] : []));
      cache = useCache && keep.length < live.length ? selectCacheRows(result.cache, keep) : result.cache;
      live = keep.map((i) => live[i]);
      feed = { inputIds: live.map((r) => [ids[r][ids[r].length - 1]]), positionIds: live.map((r) => [positions[r][positions[r].length - 1]]) };
    }
    return rows.map((r, row) => ({
      tokens: outputs[row],
      text: this.tokenizer.decode(outputs[row], { skipSpecialTokens: true }),
      finishReason: finish[row] ?? "length",
      promptTokens: r.prompt.length,
    }));
  }

  /** Frees the session (a later call makes a new one). */
  async release(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (session) await (await session).release();
  }
}
