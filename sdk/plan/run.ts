/** The value fit() resolves to: the trained adapter, its history, evaluation, chat and export. */
import { evaluateModel } from "../eval/evaluate";
import { EvalReport } from "../eval/report";
import { evaluate, type DataEvaluation, type EvaluateOptions } from "../eval/evaluate-data";
import { chat, type ChatOptions, type ChatResult } from "../infer/chat";
import { Generator } from "../infer/generate";
import { exportModel, type ExportOptions, type ExportResult } from "../export/export";
import { writeMergedModel, type MergeResult } from "../models/merge";
import type { ChatMessage } from "../io/tokenizer";
import type { TrainResult } from "../train/trainer";
import { displayFigure, JUPYTER_DISPLAY, plotlyHtml, type Displayable, type DisplayOptions, type MimeBundle, type PlotlyFigure } from "../viz/display";
import { lossCurve } from "../viz/figures";
import { htmlTable, textTable } from "../viz/table";
import { openModel, type BaseModel } from "../models/model";
import type { Model } from "./model";
import { pick } from "./model";

/** Options of TrainedRun.evaluate. */
export interface RunEvalOptions {
  /** Which split (default "val"). */
  split?: "val" | "test";
  /** Metrics to keep (default all): accuracy, f1, perplexity, loss, precision, recall. */
  metrics?: readonly string[];
  batchSize?: number;
}

/** Options of TrainedRun.evaluateGeneration: evaluate()'s options, on one of the run's splits. */
export interface RunGenerationEvalOptions extends Omit<EvaluateOptions, "adapter" | "device"> {
  /** Which split (default "val"). */
  split?: "val" | "test";
}

/** A finished (or stopped) training run. */
export class TrainedRun implements Displayable {
  private generatorCache?: Generator;
  private trainedCache?: BaseModel;

  constructor(
    readonly result: TrainResult,
    readonly model: Model,
  ) {}

  /** Folder holding the PEFT adapter, logs, checkpoints and run.json. */
  get outputDir(): string {
    return this.result.outputDir;
  }

  get steps(): number {
    return this.result.steps;
  }

  /** Training loss per step. */
  get history(): TrainResult["history"] {
    return this.result.history;
  }

  /** Train and validation loss against step. */
  lossCurve(): PlotlyFigure & Displayable {
    return displayFigure(this.curve());
  }

  private curve(): PlotlyFigure {
    const points = [
      ...this.result.history.map((h) => ({ step: h.step, loss: h.loss, split: "train" as const })),
      ...this.result.evals.map((e) => ({ step: e.step, loss: e.loss, split: "val" as const })),
    ];
    return lossCurve(points, { lr: this.result.history.map((h) => ({ step: h.step, lr: h.learningRate })), title: "Loss" });
  }

  /** The model the run produced: the base (plus adapter) for LoRA, the trained folder for full/freeze runs. */
  private trainedBase(): BaseModel {
    return this.result.modelDir ? (this.trainedCache ??= openModel(this.result.modelDir)) : this.model.base;
  }

  /** Evaluates the trained adapter on the val (or test) split. */
  async evaluate(options: RunEvalOptions = {}): Promise<EvalReport> {
    const split = options.split ?? "val";
    const examples = this.result.data[split];
    if (examples.length === 0) throw new Error(`evaluate: the ${split} split is empty; split the data with .split({ ${split}: 0.1 })`);
    const e = await evaluateModel(
      { model: this.trainedBase(), stage: this.result.recipe.stage, adapter: this.result.adapter, device: this.result.recipe.device },
      examples,
      options.batchSize ?? this.result.recipe.per_device_eval_batch_size,
    );
    if (e.predictions && this.result.labels) {
      const names = this.result.labels;
      const report = EvalReport.classification(
        e.predictions.actual.map((i) => names[i]),
        e.predictions.predicted.map((i) => names[i]),
        { labels: [...names], split, step: this.steps, loss: e.loss },
      );
      // Perplexity of a class distribution means little next to accuracy and F1: leave it out.
      const { perplexity: _, ...metrics } = report.metrics;
      return new EvalReport({
        split,
        step: this.steps,
        numExamples: examples.length,
        metrics: pick(metrics, options.metrics),
        perClass: report.perClass ? [...report.perClass] : undefined,
        confusion: report.confusion,
      });
    }
    return new EvalReport({ split, step: this.steps, numExamples: examples.length, metrics: pick(e.metrics, options.metrics) });
  }

  /**
   * Generation (and language-model) metrics of the trained adapter on the val (or test) split: bleu, rouge, chrf,
   * exact_match, fr, diqa, stop_rate, custom metrics...; with `withBase`, base and tuned answers side by side.
   */
  async evaluateGeneration(options: RunGenerationEvalOptions): Promise<DataEvaluation> {
    const { split = "val", ...rest } = options;
    const rows = this.result.data.splits[split];
    if (rows.length === 0) throw new Error(`evaluateGeneration: the ${split} split is empty; split the data with .split({ ${split}: 0.1 })`);
    return evaluate(this.trainedBase(), rows, { ...rest, adapter: this.result.adapter, device: this.result.recipe.device });
  }

  /** Generator with the trained adapter applied (created on first use). */
  generator(): Generator {
    const lora = this.result.modelDir ? null : this.result.adapter;
    return (this.generatorCache ??= new Generator(this.trainedBase(), { lora, device: this.model.device }));
  }

  /** Chats with the fine-tuned model through the same chat template it was trained with. */
  async chat(messages: string | readonly ChatMessage[], options: ChatOptions = {}): Promise<ChatResult> {
    // The template the adapter was trained with, so a tuned R1 distill keeps its reasoning format and stops at EOS.
    const trained = { templateName: this.result.recipe.template, enableThinking: this.result.recipe.enable_thinking };
    return chat(this.generator(), typeof messages === "string" ? [{ role: "user", content: messages }] : messages, { ...trained, ...options });
  }

  /** Writes base + adapter merged into a full Hugging Face model folder. */
  merge(outDir: string, options: { overwrite?: boolean } = {}): MergeResult {
    if (this.result.modelDir) throw new Error(`merge: this ${this.result.recipe.finetuning_type} run already wrote a full model to ${this.result.modelDir}`);
    return writeMergedModel(this.model.base, this.result.adapter, outDir, options);
  }

  /**
   * Exports the trained model to `dir`: "peft" (the adapter), "merged", "onnx", "quantized", "pytorch" or "gguf" (the
   * adapter merged; a full or freeze run exports its own model). See docs/export.md.
   */
  export(dir: string, options: ExportOptions): Promise<ExportResult> {
    const adapter = this.result.modelDir ? null : this.result.adapter;
    return exportModel(this.trainedBase(), adapter, dir, options);
  }

  [JUPYTER_DISPLAY](opts: DisplayOptions = {}): MimeBundle {
    const r = this.result;
    const rows: [string, unknown][] = [
      ["steps", r.steps],
      ["stopped by", r.stoppedBy],
      ["best step", r.bestStep ?? "-"],
      ["final train loss", r.history.at(-1)?.loss ?? NaN],
      ...Object.entries(r.val?.metrics ?? {}).map(([k, v]): [string, unknown] => [`val ${k}`, v]),
      ["seconds", r.seconds],
      [r.modelDir ? "model" : "adapter", r.modelDir ?? r.outputDir],
    ];
    return {
      "text/plain": textTable(["run", ""], rows),
      "text/html": htmlTable(["run", ""], rows) + plotlyHtml(this.curve(), { inlinePlotly: opts.inlinePlotly ?? true, height: "320px" }),
    };
  }
}
