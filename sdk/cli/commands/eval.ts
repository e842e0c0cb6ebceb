/**
 * `tunelab eval`: every evaluation metric from the command line.
 *
 *   --metrics perplexity         mean NLL per predicted token of {"text"} rows, tokenised exactly as the model's
 *                                tokenizer.json does (its post-processor included, nothing added); every token after
 *                                the first is predicted. --max-length/--stride switch to sliding-window perplexity.
 *   --metrics bleu,rouge,fr,...  the model (plus adapter) answers each chat row's last user turn (classification rows:
 *                                the text; the label is the reference) in batches; the answers are scored. With
 *                                --predictions FILE.jsonl ({"prediction", "reference", "prompt"?, "finish_reason"?})
 *                                no model is needed.
 * --json prints one line: { rows, loss?, perplexity?, tokens?, metrics, intervals } (intervals: bootstrap 95%).
 */
import * as fs from "node:fs";
import { parseFlags, rejectUnknownFlags, type CliCommand } from "../command";
import { loadDataset } from "../../data/load";
import { evaluateModel, textExamples } from "../../eval/evaluate";
import { BUILTIN_METRICS, METRIC_ALIASES, type GenerationSample } from "../../eval/generation-metric";
import { scoreGeneration } from "../../eval/generation-report";
import { evalPrompts, generateAnswers } from "../../eval/generate-answers";
import { slidingWindowPerplexity } from "../../eval/sliding-perplexity";
import type { RubricField } from "../../eval/medical-rubric";
import { Generator } from "../../infer/generate";
import { loadAdapter } from "../../models/lora";
import { openModel } from "../../models/model";
import { parseOption } from "../../train/recipe-check";

const USAGE =
  "usage: tunelab eval --model DIR [--adapter DIR] --data FILE [--metrics perplexity,accuracy,f1,bleu,rouge,chrf,exact_match,fr,diqa,...]\n" +
  "                    [--device cpu|webgpu|cuda] [--batch-size N] [--max-new-tokens N] [--max-length N --stride N] [--entities A,B] [--rubric FILE.json] [--json]\n" +
  "       tunelab eval --predictions FILE.jsonl --metrics bleu,rouge,... [--json]";
const FLAGS = new Set([
  "model",
  "adapter",
  "data",
  "predictions",
  "metrics",
  "device",
  "batch-size",
  "max-new-tokens",
  "max-length",
  "stride",
  "entities",
  "rubric",
  "json",
  "help",
]);
const LM_METRICS = new Set(["perplexity", "loss"]);

function positiveInt(flag: string, v: string | boolean | string[] | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1)) throw new Error(`--${flag}: expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function readPredictions(file: string): GenerationSample[] {
  if (!fs.existsSync(file)) throw new Error(`--predictions: ${file} does not exist`);
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    .filter((x) => x.line !== "")
    .map(({ line, n }) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`${file}:${n}: not valid JSON`);
      }
      if (typeof o.prediction !== "string") throw new Error(`${file}:${n}: expected a "prediction" string`);
      const ref = o.reference;
      if (ref !== undefined && typeof ref !== "string" && !(Array.isArray(ref) && ref.every((r) => typeof r === "string"))) {
        throw new Error(`${file}:${n}: "reference" must be a string or an array of strings`);
      }
      const fin = o.finish_reason;
      if (fin !== undefined && fin !== "stop" && fin !== "length") throw new Error(`${file}:${n}: "finish_reason" must be "stop" or "length"`);
      return {
        prediction: o.prediction,
        ...(ref !== undefined ? { reference: ref as string | string[] } : {}),
        ...(typeof o.prompt === "string" ? { prompt: o.prompt } : {}),
        ...(fin !== undefined ? { finishReason: fin as "stop" | "length" } : {}),
      };
    });
}

export const command: CliCommand = {
  name: "eval",
  summary: "perplexity, classification, generation and domain metrics (FR, DIQA) of a model or of saved predictions",
  async run(argv) {
    const flags = parseFlags(argv);
    rejectUnknownFlags(flags, FLAGS, USAGE);
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    const modelDir = typeof flags.model === "string" ? flags.model : undefined;
    const dataFile = typeof flags.data === "string" ? flags.data : undefined;
    const predFile = typeof flags.predictions === "string" ? flags.predictions : undefined;
    if ((!dataFile && !predFile) || (dataFile && !modelDir && !predFile)) {
      console.error(USAGE);
      return 2;
    }
    const names = typeof flags.metrics === "string" ? flags.metrics.split(",").map((s) => s.trim()) : ["perplexity"];
    const known = new Set([...LM_METRICS, ...Object.keys(BUILTIN_METRICS), ...Object.keys(METRIC_ALIASES)]);
    const unknown = names.filter((m) => !known.has(m));
    if (unknown.length) throw new Error(`--metrics: unknown ${unknown.join(", ")}; known: ${[...known].join(", ")}`);
    const lm = names.filter((m) => LM_METRICS.has(m));
    const gen = names.filter((m) => !LM_METRICS.has(m));
    const device = flags.device === undefined ? "cpu" : parseOption("device", flags.device, "--device");
    const batchSize = flags["batch-size"] === undefined ? 8 : parseOption("per_device_eval_batch_size", flags["batch-size"], "--batch-size");
    const model = modelDir ? openModel(modelDir) : null;
    const adapter = typeof flags.adapter === "string" ? loadAdapter(flags.adapter) : null;
    const out: Record<string, unknown> = {};
    const metrics: Record<string, number> = {};
    let text = "";

    if (lm.length) {
      if (!model || !dataFile) throw new Error('--metrics perplexity needs --model and --data with {"text"} rows');
      const ds = await loadDataset(dataFile, { format: "pretrain" });
      const maxLength = positiveInt("max-length", flags["max-length"]);
      const stride = positiveInt("stride", flags.stride);
      if (maxLength !== undefined || stride !== undefined) {
        const ids = ds.rows.map((row) => {
          if (row.kind !== "pretrain") throw new Error(`${row.provenance.source}:${row.provenance.line}: expected a {"text": ...} row`);
          return model.tokenizer.encode(row.text, { addSpecialTokens: true });
        });
        const s = await slidingWindowPerplexity({ model, adapter, device }, ids, { maxLength, stride, batchSize });
        Object.assign(out, {
          loss: s.loss,
          perplexity: s.perplexity,
          tokens: s.tokens,
          rows: ids.length,
          windows: s.windows,
          max_length: s.maxLength,
          stride: s.stride,
        });
      } else {
        const examples = textExamples(ds.rows, model.tokenizer);
        const e = await evaluateModel({ model, stage: "pt", adapter, device }, examples, batchSize);
        const tokens = examples.reduce((n, ex) => n + Math.max(0, ex.inputIds.length - 1), 0);
        Object.assign(out, { loss: e.loss, perplexity: Math.exp(e.loss), tokens, rows: examples.length });
      }
      metrics.loss = out.loss as number;
      metrics.perplexity = out.perplexity as number;
      text += `loss ${(out.loss as number).toFixed(6)}  perplexity ${(out.perplexity as number).toFixed(4)}  over ${out.tokens} predicted tokens in ${out.rows} rows\n`;
    }

    if (gen.length) {
      let samples: GenerationSample[];
      if (predFile) samples = readPredictions(predFile);
      else {
        if (!model || !dataFile) throw new Error("generation metrics need --model and --data (chat or classification rows), or --predictions FILE.jsonl");
        const ds = await loadDataset(dataFile);
        const generator = new Generator(model, { lora: adapter, device });
        try {
          samples = await generateAnswers(generator, evalPrompts(ds.rows), {
            batchSize,
            maxNewTokens: positiveInt("max-new-tokens", flags["max-new-tokens"]),
            doSample: false,
          });
        } finally {
          await generator.release();
        }
      }
      const entities =
        typeof flags.entities === "string"
          ? flags.entities
              .split(",")
              .map((s) => s.trim())
              .filter(Boolean)
          : undefined;
      let rubric: RubricField[] | undefined;
      if (typeof flags.rubric === "string") {
        if (!fs.existsSync(flags.rubric)) throw new Error(`--rubric: ${flags.rubric} does not exist`);
        rubric = JSON.parse(fs.readFileSync(flags.rubric, "utf8")) as RubricField[];
      }
      const report = await scoreGeneration(samples, { metrics: gen, fr: { entities }, diqa: { rubric } });
      Object.assign(metrics, report.metrics);
      out.rows ??= samples.length;
      out.intervals = report.intervals;
      text += report.toString() + "\n";
    }
    out.metrics = metrics;
    if (flags.json) console.log(JSON.stringify(out, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
    else process.stdout.write(text);
    return 0;
  },
};
