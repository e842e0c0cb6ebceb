/**
 * `evaluate(model, data, { adapter, metrics })`: one call for every metric on a dataset. Language-model metrics
 * (loss, perplexity; sliding window with `maxLength`/`stride`) go through evaluateModel, the one forward-pass entry
 * point; generation, classification-by-answer and domain metrics score the model's batched answers. With
 * `withBase`, the base model answers too and the result holds `compare(base, tuned)`, answers side by side.
 */
import { loadDataset } from "../data/load";
import type { Row } from "../data/types";
import { Generator } from "../infer/generate";
import { loadAdapter, type Adapter } from "../models/lora";
import { openModel, type BaseModel } from "../models/model";
import type { Device } from "../runtime/device";
import { JUPYTER_DISPLAY, type Displayable, type MimeBundle } from "../viz/display";
import { htmlTable, textTable } from "../viz/table";
import type { BootstrapOptions } from "./bootstrap";
import { evaluateModel, textExamples } from "./evaluate";
import { evalPrompts, generateAnswers } from "./generate-answers";
import { BUILTIN_METRICS, METRIC_ALIASES, type GenerationMetric, type GenerationMetricOptions } from "./generation-metric";
import { compare, scoreGeneration, type Comparison, type GenerationReport } from "./generation-report";
import { slidingWindowPerplexity } from "./sliding-perplexity";

/** Options of `evaluate`. */
export interface EvaluateOptions extends GenerationMetricOptions {
  /** A PEFT adapter (or its folder) applied to the model. */
  adapter?: Adapter | string | null;
  /** Metric names (perplexity, loss, and those of BUILTIN_METRICS and METRIC_ALIASES) or custom metrics. */
  metrics: readonly (string | GenerationMetric)[];
  device?: Device;
  /** Rows per forward pass / prompts per generate call (default 8). */
  batchSize?: number;
  /** Tokens per answer (default generation_config.json's, else 256). */
  maxNewTokens?: number;
  /** Sliding-window perplexity: tokens per window. */
  maxLength?: number;
  /** Sliding-window perplexity: tokens the window moves. */
  stride?: number;
  /** Also let the model without the adapter answer, and compare (needs an adapter). */
  withBase?: boolean;
  /** Bootstrap settings of intervals and comparisons. */
  bootstrap?: BootstrapOptions | false;
}

/** Language-model figures of an evaluation. */
export interface LmFigures {
  loss: number;
  perplexity: number;
  /** Tokens scored. */
  tokens: number;
  rows: number;
  /** Sliding windows used (sliding-window perplexity only). */
  windows?: number;
}

const LM = new Set(["loss", "perplexity"]);

/** What `evaluate` returns: every metric by name, the LM figures, the generation report and the base comparison. */
export class DataEvaluation implements Displayable {
  constructor(
    readonly metrics: Readonly<Record<string, number>>,
    readonly lm: LmFigures | null,
    readonly generation: GenerationReport | null,
    readonly comparison: Comparison | null,
  ) {}

  toJSON(): { metrics: Record<string, number>; lm: LmFigures | null; generation: unknown; comparison: unknown } {
    return { metrics: { ...this.metrics }, lm: this.lm, generation: this.generation?.toJSON() ?? null, comparison: this.comparison?.toJSON() ?? null };
  }

  toString(): string {
    const parts: string[] = [];
    if (this.lm)
      parts.push(
        textTable(
          ["metric", "value"],
          [
            ["loss", this.lm.loss],
            ["perplexity", this.lm.perplexity],
            ["tokens", this.lm.tokens],
          ],
        ),
      );
    if (this.comparison) parts.push(this.comparison.toString());
    else if (this.generation) parts.push(this.generation.toString());
    return parts.join("\n\n");
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const html: string[] = [];
    if (this.lm)
      html.push(
        htmlTable(
          ["metric", "value"],
          [
            ["loss", this.lm.loss],
            ["perplexity", this.lm.perplexity],
            ["tokens", this.lm.tokens],
          ],
          { caption: "Language model" },
        ),
      );
    const inner = this.comparison ?? this.generation;
    if (inner) html.push(String(inner[JUPYTER_DISPLAY]()["text/html"]));
    return { "text/plain": this.toString(), "text/html": `<div class="tunelab-eval">${html.join("\n")}</div>`, "application/json": this.toJSON() };
  }
}

/** Evaluates a model (a folder, a BaseModel or a notebook Model) plus optional adapter on data rows or a data file. */
export async function evaluate(
  model: string | BaseModel | { readonly base: BaseModel },
  data: string | readonly Row[] | { readonly rows: readonly Row[] },
  opts: EvaluateOptions,
): Promise<DataEvaluation> {
  const base: BaseModel = typeof model === "string" ? openModel(model) : "base" in model ? model.base : model;
  const names = opts.metrics.filter((m): m is string => typeof m === "string");
  const known = new Set([...LM, ...Object.keys(BUILTIN_METRICS), ...Object.keys(METRIC_ALIASES)]);
  const unknown = names.filter((m) => !known.has(m));
  if (unknown.length) throw new Error(`evaluate: unknown metric ${unknown.join(", ")}; known: ${[...known].join(", ")}`);
  const lmWanted = names.some((m) => LM.has(m));
  const gen = opts.metrics.filter((m) => typeof m !== "string" || !LM.has(m));
  const adapter = typeof opts.adapter === "string" ? loadAdapter(opts.adapter) : (opts.adapter ?? null);
  if (opts.withBase && !adapter) throw new Error("evaluate: withBase compares against the adapter; give one");
  const batchSize = opts.batchSize ?? 8;
  const lmRows = async () => (typeof data === "string" ? (await loadDataset(data, { format: "pretrain" })).rows : "rows" in data ? data.rows : data);
  const anyRows = async () => (typeof data === "string" ? (await loadDataset(data)).rows : "rows" in data ? data.rows : data);
  const metrics: Record<string, number> = {};
  let lm: LmFigures | null = null;
  if (lmWanted) {
    const rows = await lmRows();
    if (opts.maxLength !== undefined || opts.stride !== undefined) {
      const ids = textExamples(rows, base.tokenizer).map((e) => [...e.inputIds]);
      const s = await slidingWindowPerplexity({ model: base, adapter, device: opts.device }, ids, {
        maxLength: opts.maxLength,
        stride: opts.stride,
        batchSize,
      });
      lm = { loss: s.loss, perplexity: s.perplexity, tokens: s.tokens, rows: ids.length, windows: s.windows };
    } else {
      const examples = textExamples(rows, base.tokenizer);
      const e = await evaluateModel({ model: base, stage: "pt", adapter, device: opts.device }, examples, batchSize);
      lm = {
        loss: e.loss,
        perplexity: Math.exp(e.loss),
        tokens: examples.reduce((n, ex) => n + Math.max(0, ex.inputIds.length - 1), 0),
        rows: examples.length,
      };
    }
    metrics.loss = lm.loss;
    metrics.perplexity = lm.perplexity;
  }
  let generation: GenerationReport | null = null;
  let comparison: Comparison | null = null;
  if (gen.length) {
    const prompts = evalPrompts(await anyRows());
    const answer = async (lora: Adapter | null) => {
      const g = new Generator(base, { lora, device: opts.device });
      try {
        return await generateAnswers(g, prompts, { batchSize, maxNewTokens: opts.maxNewTokens, doSample: false });
      } finally {
        await g.release();
      }
    };
    const scoring = { ...opts, metrics: gen, bootstrap: opts.bootstrap };
    generation = await scoreGeneration(await answer(adapter), { ...scoring, title: adapter ? "Tuned" : "Model" });
    if (opts.withBase) {
      const baseReport = await scoreGeneration(await answer(null), { ...scoring, title: "Base" });
      comparison = compare(baseReport, generation, opts.bootstrap === false ? {} : opts.bootstrap);
    }
    Object.assign(metrics, generation.metrics);
  }
  return new DataEvaluation(metrics, lm, generation, comparison);
}
