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
import { commandFlags, type CliCommand } from "../command";
import { evaluate } from "../../eval/evaluate-data";
import { BUILTIN_METRICS, METRIC_ALIASES, type GenerationSample } from "../../eval/generation-metric";
import { scoreGeneration } from "../../eval/generation-report";
import type { RubricField } from "../../eval/medical-rubric";
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
    const flags = commandFlags(argv, FLAGS, USAGE);
    if (!flags) return 0;
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
    const lmNames = names.filter((m) => LM_METRICS.has(m));
    const genNames = names.filter((m) => !LM_METRICS.has(m));
    const device = flags.device === undefined ? "cpu" : parseOption("device", flags.device, "--device");
    const batchSize = flags["batch-size"] === undefined ? 8 : parseOption("per_device_eval_batch_size", flags["batch-size"], "--batch-size");
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
    const domain = { fr: { entities }, diqa: { rubric } };
    const out: Record<string, unknown> = {};
    const metrics: Record<string, number> = {};
    let text = "";
    // Saved predictions are scored here; everything that needs the model goes through evaluate().
    const modelMetrics = predFile ? lmNames : names;
    if (modelMetrics.length) {
      if (!modelDir || !dataFile) throw new Error(`--metrics ${modelMetrics.join(",")} needs --model and --data`);
      const r = await evaluate(modelDir, dataFile, {
        ...domain,
        metrics: modelMetrics,
        adapter: typeof flags.adapter === "string" ? flags.adapter : null,
        device,
        batchSize,
        maxNewTokens: positiveInt("max-new-tokens", flags["max-new-tokens"]),
        maxLength: positiveInt("max-length", flags["max-length"]),
        stride: positiveInt("stride", flags.stride),
      });
      if (r.lm) {
        Object.assign(out, { loss: r.lm.loss, perplexity: r.lm.perplexity, tokens: r.lm.tokens, rows: r.lm.rows });
        if (r.lm.windows !== undefined) out.windows = r.lm.windows;
        text += `loss ${r.lm.loss.toFixed(6)}  perplexity ${r.lm.perplexity.toFixed(4)}  over ${r.lm.tokens} predicted tokens in ${r.lm.rows} rows\n`;
      }
      if (r.generation) {
        out.rows ??= r.generation.samples.length;
        out.intervals = r.generation.intervals;
        text += r.generation.toString() + "\n";
      }
      Object.assign(metrics, r.metrics);
    }
    if (predFile && genNames.length) {
      const report = await scoreGeneration(readPredictions(predFile), { ...domain, metrics: genNames });
      Object.assign(metrics, report.metrics);
      out.rows ??= report.samples.length;
      out.intervals = report.intervals;
      text += report.toString() + "\n";
    }
    out.metrics = metrics;
    if (flags.json) console.log(JSON.stringify(out, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
    else process.stdout.write(text);
    return 0;
  },
};
