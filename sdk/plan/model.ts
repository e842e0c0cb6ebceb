/** `model(dir)`: a base model a notebook can train, chat with and evaluate. */
import * as os from "node:os";
import * as path from "node:path";
import { Dataset } from "../data/dataset";
import type { Materialized } from "../data/steps";
import type { Row } from "../data/types";
import { chatTranslator, type Translator } from "../data/augment/translate";
import { EvalReport } from "../eval/report";
import type { ModelConfig } from "../io/config";
import { createTinyModel, type TinyModelOptions } from "../io/tiny";
import type { Tokenizer } from "../io/tokenizer";
import { evaluateModel, textExamples } from "../eval/evaluate";
import { chat, type ChatOptions, type ChatResult } from "../infer/chat";
import { Generator, type GenerateOptions, type GenerationResult } from "../infer/generate";
import { openModel, type BaseModel } from "../models/model";
import type { Device } from "../runtime/device";
import type { ChatMessage } from "../io/tokenizer";
import { JUPYTER_DISPLAY, type Displayable, type MimeBundle } from "../viz/display";
import { htmlTable, textTable } from "../viz/table";
import { estimateTrainingMemory, MemoryEstimateView, type EstimateOptions } from "../train/estimate";

/** Options of `model()`. */
export interface ModelOptions {
  /** Where chat/generate/evaluate run (training takes fit()'s device). */
  device?: Device;
}

/** Options of Model.evaluate. */
export interface ModelEvalOptions {
  /** Metrics to keep (default all): "loss", "perplexity". */
  metrics?: readonly string[];
  batchSize?: number;
  cutoffLen?: number;
}

/** A base model folder opened for notebooks. */
export class Model implements Displayable {
  private generatorCache?: Generator;

  private constructor(
    readonly base: BaseModel,
    readonly device: Device,
  ) {}

  /** Opens a local Hugging Face model folder. */
  static async open(dir: string, options: ModelOptions = {}): Promise<Model> {
    return new Model(openModel(dir), options.device ?? "cpu");
  }

  /** Creates a tiny random model folder (for workshops and tests) and opens it. */
  static async tiny(options: TinyModelOptions, modelOptions: ModelOptions = {}): Promise<Model> {
    createTinyModel(options);
    return Model.open(options.out, modelOptions);
  }

  get dir(): string {
    return this.base.dir;
  }

  get config(): ModelConfig {
    return this.base.config;
  }

  get tokenizer(): Tokenizer {
    return this.base.tokenizer;
  }

  /** The generator of the base model (no adapter), created on first use. */
  generator(): Generator {
    return (this.generatorCache ??= new Generator(this.base, { device: this.device }));
  }

  /** Generates a continuation of `prompt`. */
  async generate(prompt: string, options: GenerateOptions = {}): Promise<GenerationResult> {
    return this.generator().generate(this.tokenizer.encode(prompt), options);
  }

  /** Chats through the model's chat template; R1-style reasoning comes back separately from the answer. */
  async chat(messages: string | readonly ChatMessage[], options: ChatOptions = {}): Promise<ChatResult> {
    return chat(this.generator(), typeof messages === "string" ? [{ role: "user", content: messages }] : messages, options);
  }

  /** Will it fit? The predicted peak memory of a LoRA training step on this model, by part (a table in a notebook). */
  estimate(options: EstimateOptions = {}): MemoryEstimateView {
    const e = estimateTrainingMemory(this.config, { budgetBytes: os.totalmem(), ...options });
    const shape = `batch ${options.batch ?? 1} x ${options.seq ?? 512}, LoRA r${options.rank ?? 16}`;
    return new MemoryEstimateView(e, `${path.basename(this.dir)}: peak memory of a training step (${shape})`);
  }

  /** A back-translation translator for augment() that asks this model (a chat model) to translate. */
  translator(options: ChatOptions = {}): Translator {
    return chatTranslator(async (messages) => (await this.chat(messages, options)).answer);
  }

  /** Perplexity of the model on text rows ({"text": ...}): mean NLL per predicted token, as `tunelab eval` prints. */
  async evaluate(data: { materialize(): Promise<Materialized> } | Dataset<Row>, options: ModelEvalOptions = {}): Promise<EvalReport> {
    const ds = data instanceof Dataset ? data : await data.materialize();
    if (!(ds instanceof Dataset)) throw new Error("Model.evaluate: give an unsplit dataset (evaluate a run's val split with run.evaluate())");
    const examples = textExamples(ds.rows, this.tokenizer).map((e) =>
      options.cutoffLen ? { ...e, inputIds: e.inputIds.slice(0, options.cutoffLen), labels: e.labels!.slice(0, options.cutoffLen) } : e,
    );
    const e = await evaluateModel({ model: this.base, stage: "pt", device: this.device }, examples, options.batchSize ?? 8);
    return new EvalReport({ title: "Base model", numExamples: examples.length, metrics: pick(e.metrics, options.metrics) });
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const c = this.config;
    const rows = [
      ["architecture", c.architecture],
      ["layers", c.numHiddenLayers],
      ["hidden size", c.hiddenSize],
      ["heads (q / kv)", `${c.numAttentionHeads} / ${c.numKeyValueHeads}`],
      ["vocabulary", c.vocabSize],
      ["folder", this.dir],
    ];
    return { "text/plain": textTable(["model", ""], rows), "text/html": htmlTable(["model", ""], rows) };
  }
}

/** Keeps the requested metrics ("f1" selects every f1_* average); all when none are named. */
export function pick(metrics: Record<string, number>, names?: readonly string[]): Record<string, number> {
  if (!names || names.length === 0) return metrics;
  const out: Record<string, number> = {};
  for (const name of names) {
    const keys = Object.keys(metrics).filter((k) => k === name || k.startsWith(`${name}_`));
    if (keys.length === 0) throw new Error(`unknown metric "${name}"; available: ${Object.keys(metrics).join(", ")}`);
    for (const k of keys) out[k] = metrics[k];
  }
  return out;
}

/** Opens a local Hugging Face model folder (config.json, *.safetensors, tokenizer files). */
export function model(dir: string, options: ModelOptions = {}): Promise<Model> {
  return Model.open(dir, options);
}
