/**
 * `tunelab eval --model DIR [--adapter DIR] --data FILE --metrics perplexity [--device D] [--json]`: mean
 * negative log-likelihood per predicted token of {"text"} rows, tokenised exactly as the model's tokenizer.json
 * does (its post-processor included, nothing added); every token after the first is predicted.
 */
import { parseFlags, rejectUnknownFlags, type CliCommand } from "../command";
import { loadDataset } from "../../data/load";
import { evaluateModel, textExamples } from "../../eval/evaluate";
import { loadAdapter } from "../../models/lora";
import { openModel } from "../../models/model";
import { parseOption } from "../../train/recipe-check";

const USAGE = "usage: tunelab eval --model DIR [--adapter DIR] --data FILE.jsonl [--metrics perplexity] [--device cpu|webgpu|cuda] [--batch-size N] [--json]";
const FLAGS = new Set(["model", "adapter", "data", "metrics", "device", "batch-size", "json", "help"]);

export const command: CliCommand = {
  name: "eval",
  summary: "perplexity of a model (plus an optional PEFT adapter) on text data",
  async run(argv) {
    const flags = parseFlags(argv);
    rejectUnknownFlags(flags, FLAGS, USAGE);
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    const modelDir = flags.model;
    const dataFile = flags.data;
    if (typeof modelDir !== "string" || typeof dataFile !== "string") {
      console.error(USAGE);
      return 2;
    }
    const metrics = typeof flags.metrics === "string" ? flags.metrics.split(",") : ["perplexity"];
    const unknown = metrics.filter((m) => m !== "perplexity" && m !== "loss");
    if (unknown.length) throw new Error(`--metrics: ${unknown.join(", ")} not available here; use perplexity (it reports loss too)`);
    const model = openModel(modelDir);
    const ds = await loadDataset(dataFile, { format: "pretrain" });
    const examples = textExamples(ds.rows, model.tokenizer);
    const adapter = typeof flags.adapter === "string" ? loadAdapter(flags.adapter) : null;
    const e = await evaluateModel(
      { model, stage: "pt", adapter, device: flags.device === undefined ? "cpu" : parseOption("device", flags.device, "--device") },
      examples,
      flags["batch-size"] === undefined ? 8 : parseOption("per_device_eval_batch_size", flags["batch-size"], "--batch-size"),
    );
    const tokens = examples.reduce((n, ex) => n + Math.max(0, ex.inputIds.length - 1), 0);
    const out = { loss: e.loss, perplexity: Math.exp(e.loss), tokens, rows: examples.length };
    if (flags.json) console.log(JSON.stringify(out));
    else console.log(`loss ${out.loss.toFixed(6)}  perplexity ${out.perplexity.toFixed(4)}  over ${tokens} predicted tokens in ${out.rows} rows`);
    return 0;
  },
};
