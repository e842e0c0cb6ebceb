/**
 * `npm run bench:memory -- --preset NAME | --model DIR [--seq N] [--device cpu] [--gradient_checkpointing]
 * [--quantization_bit 4|8] [--quantization_type nf4|fp4|int4] [--steps N] [--use_dora]`: a timeline of the process's
 * memory (VmRSS and VmHWM from /proc/self/status) through the phases of a LoRA training run at real model sizes:
 * opening the model, building the train-step graphs and their sessions, the first step and two more (LoRA
 * rank 16 on all linear layers, batch 1 x seq tokens, AdamW), through the StepEngine a `tunelab train` run uses,
 * in a process started with the bin's PROCESS_ENV. A worker thread samples every 100 ms, so long synchronous phases
 * (graph building) are seen too. Prints a table of the phase marks and a JSON line. A --preset model is written
 * to a temporary folder and removed afterwards.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { createPresetModel, isPresetName, PRESET_NAMES } from "../sdk/io/presets";
import { loraModules, loraTrainables, makeLoraConfig } from "../sdk/models/lora";
import { openModel } from "../sdk/models/model";
import { causalLMForward } from "../sdk/models/tasks";
import type { Provider } from "../sdk/runtime/device";
import type { HostTensor } from "../sdk/runtime/session";
import { PROCESS_ENV } from "../sdk/runtime/process-env";
import { StepEngine } from "../sdk/train/engine";
import type { OptimizerOptions } from "../sdk/train/optimizers";
import { quantConfigOf } from "../sdk/train/quantization";
import { dequantChunk } from "../sdk/graph/quant";
import { Rng } from "../sdk/util/random";

/** One reading of /proc/self/status, in MiB, at `t` seconds since the start. */
interface Sample {
  t: number;
  rss: number;
  hwm: number;
}

/** A labelled reading at a phase boundary; `file` is the part of RSS that maps files (the weight file, libraries). */
interface Mark extends Sample {
  phase: string;
  file: number;
}

const USAGE = `usage: npm run bench:memory -- (--preset ${PRESET_NAMES.join("|")} | --model DIR) [--seq N] [--device cpu|cuda|webgpu] [--gradient_checkpointing] [--quantization_bit 4|8] [--quantization_type nf4|fp4|int4] [--steps 3] [--update_chunk N (0: the fused step)] [--use_dora]`;

interface Args {
  preset?: string;
  model?: string;
  seq: number;
  device: Provider;
  checkpointing: boolean;
  /** DoRA instead of LoRA (PEFT's use_dora). */
  dora: boolean;
  /** QLoRA: the base's linears in 4 or 8 bits (bitsandbytes' defaults: NF4, blocks of 64, double quantisation). */
  bits?: number;
  quantType: "nf4" | "fp4" | "int4";
  /** Optimizer steps to run (default 3). */
  steps: number;
  /** Values per in-place update run, 0 for the fused step (default: the engine's choice by size). */
  updateChunk?: number;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { seq: 512, device: "cpu", checkpointing: false, dora: false, quantType: "nf4", steps: 3 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--gradient_checkpointing" || argv[i] === "--use_dora") {
      out[argv[i] === "--use_dora" ? "dora" : "checkpointing"] = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${argv[i]} needs a value\n${USAGE}`);
    if (argv[i] === "--preset") out.preset = value;
    else if (argv[i] === "--model") out.model = value;
    else if (argv[i] === "--seq") out.seq = Number(value);
    else if (argv[i] === "--device") out.device = value as Provider;
    else if (argv[i] === "--quantization_bit") out.bits = Number(value);
    else if (argv[i] === "--steps") out.steps = Number(value);
    else if (argv[i] === "--update_chunk") out.updateChunk = Number(value);
    else if (argv[i] === "--quantization_type") out.quantType = value as Args["quantType"];
    else throw new Error(`unknown option ${argv[i]}\n${USAGE}`);
    i++;
  }
  if (!out.preset === !out.model) throw new Error(`give exactly one of --preset and --model\n${USAGE}`);
  if (out.preset && !isPresetName(out.preset)) throw new Error(`unknown preset ${out.preset}\n${USAGE}`);
  if (!Number.isSafeInteger(out.seq) || out.seq < 2) throw new Error(`--seq must be an integer >= 2\n${USAGE}`);
  return out;
}

/** Reads VmRSS, VmHWM and RssFile (kB in the file) as MiB. */
function readStatus(): { rss: number; hwm: number; file: number } {
  const text = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024, file: kb("RssFile") / 1024 };
}

/** The sampler: a worker thread (same process, own event loop) that reads /proc/self/status every 100 ms. */
const SAMPLER = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const samples = [];
const read = () => {
  const text = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (key) => Number(new RegExp("^" + key + ":\\\\s+(\\\\d+) kB", "m").exec(text)[1]);
  samples.push({ t: (Date.now() - workerData.start) / 1000, rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 });
};
const timer = setInterval(read, 100);
parentPort.on("message", () => { clearInterval(timer); read(); parentPort.postMessage(samples); });
`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // Measure the process the `tunelab` bin starts: glibc reads PROCESS_ENV at start-up, so run again with it.
  if (Object.entries(PROCESS_ENV).some(([key, value]) => process.env[key] !== value)) {
    const child = spawnSync(process.execPath, process.argv.slice(1), { stdio: "inherit", env: { ...process.env, ...PROCESS_ENV } });
    process.exit(child.status ?? 1);
  }
  if (process.env.TUNELAB_DEQUANT_CHUNK) dequantChunk.values = Number(process.env.TUNELAB_DEQUANT_CHUNK);
  const start = Date.now();
  const sampler = new Worker(SAMPLER, { eval: true, workerData: { start } });
  const marks: Mark[] = [];
  const mark = (phase: string) => {
    marks.push({ phase, t: (Date.now() - start) / 1000, ...readStatus() });
    const m = marks[marks.length - 1];
    console.error(`  ${m.t.toFixed(1).padStart(7)} s  ${phase}  rss ${m.rss.toFixed(0)} MiB  peak ${m.hwm.toFixed(0)} MiB`);
  };
  mark("start");
  let dir = args.model!;
  let tmp: string | null = null;
  const results: { step: number; loss: number; gradNorm: number; ms: number }[] = [];
  try {
    if (args.preset && isPresetName(args.preset)) {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-bench-memory-"));
      dir = path.join(tmp, args.preset);
      createPresetModel({ preset: args.preset, out: dir, seed: 0 });
      mark(`preset ${args.preset} written`);
    }
    const model = openModel(dir);
    mark("model opened");

    // What `tunelab train` sets up for LoRA on a causal LM (sdk/train/trainer.ts), at rank 16 on all linears.
    const lora = makeLoraConfig({ r: 16, loraAlpha: 32, targetModules: "all-linear", useDora: args.dora });
    const modules = loraModules(model.config, lora);
    const optimizer: OptimizerOptions = { name: "adamw", weightDecay: 0.01 };
    const quant = quantConfigOf({
      quantization_bit: args.bits,
      quantization_method: "bnb",
      quantization_type: args.quantType,
      double_quantization: true,
      quantization_block_size: 64,
    });
    const weights = model.weights.as("float32").quantized(quant);
    weights.weightFile();
    mark(quant ? `weight file (${quant.type}) ready` : "weight file ready");
    // DoRA's magnitudes start at the row norms of the weights the graphs use (read from the weight file here).
    const trainable = loraTrainables(modules, 0, undefined, weights);
    if (args.dora) mark("DoRA magnitudes initialised");
    const forward = causalLMForward({
      config: model.config,
      weights,
      lora: modules,
      loraDropout: 0,
      gradientCheckpointing: args.checkpointing,
    });
    // The engine `tunelab train` runs; its sessions are made here rather than inside the first step, to time them apart.
    const updateChunk = args.updateChunk === undefined ? undefined : args.updateChunk || null;
    const engine = StepEngine.create({ forward, trainable, optimizer, maxGradNorm: 1, device: args.device, updateChunk });
    await engine.prepare();
    mark(engine.updatesInPlace ? "sessions created (gradients; update in place)" : "session created (fused step)");

    const rng = new Rng(0);
    const vocab = Math.min(model.tokenizer.vocabSize, model.config.vocabSize);
    const ids = BigInt64Array.from({ length: args.seq }, () => BigInt(rng.int(vocab)));
    const shape = [1, args.seq];
    const batch: Record<string, HostTensor> = {
      input_ids: { dtype: "int64", shape, data: ids },
      attention_mask: { dtype: "int64", shape, data: new BigInt64Array(args.seq).fill(1n) },
      labels: { dtype: "int64", shape, data: ids },
    };
    for (let step = 1; step <= args.steps; step++) {
      const t0 = performance.now();
      const r = await engine.train([batch], 1e-4);
      results.push({ step, loss: r.loss, gradNorm: r.gradNorm, ms: performance.now() - t0 });
      mark(step === 1 ? "step 1 (first)" : `step ${step}`);
    }
    await engine.release();
    mark("sessions released");
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  const samples: Sample[] = await new Promise((resolve) => {
    sampler.once("message", resolve);
    sampler.postMessage("stop");
  });
  await sampler.terminate();

  // Per phase: the highest sampled RSS since the previous mark (a phase may rise and fall back before its end).
  const rows = marks.map((m, i) => {
    const from = i === 0 ? 0 : marks[i - 1].t;
    const within = samples.filter((s) => s.t > from && s.t <= m.t).map((s) => s.rss);
    return { ...m, maxRssInPhase: Math.max(m.rss, ...within) };
  });
  const mb = (x: number) => x.toFixed(0).padStart(8);
  const width = Math.max(28, ...rows.map((r) => r.phase.length));
  console.log(
    `memory timeline: ${args.preset ?? dir}, ${args.dora ? "DoRA" : "LoRA"} r16 all-linear, batch 1 x ${args.seq}, AdamW, ${args.device}${args.checkpointing ? ", gradient checkpointing" : ""}${args.bits ? `, ${args.bits}-bit base (${args.bits === 8 ? "int8" : args.quantType})` : ""}, ${samples.length} samples`,
  );
  console.log(
    `${"phase".padEnd(width)} ${"t (s)".padStart(8)} ${"RSS MiB".padStart(8)} ${"mapped".padStart(8)} ${"max MiB".padStart(8)} ${"peak MiB".padStart(8)}`,
  );
  for (const r of rows) console.log(`${r.phase.padEnd(width)} ${r.t.toFixed(1).padStart(8)} ${mb(r.rss)} ${mb(r.file)} ${mb(r.maxRssInPhase)} ${mb(r.hwm)}`);
  for (const r of results) console.log(`step ${r.step}: loss ${r.loss.toFixed(4)}, grad norm ${r.gradNorm.toExponential(3)}, ${r.ms.toFixed(0)} ms`);
  const round = (s: Sample) => ({ t: +s.t.toFixed(2), rss: Math.round(s.rss), hwm: Math.round(s.hwm) });
  // The JSON keeps one sample per half second (the table's per-phase maxima use all of them).
  const kept = samples.filter((s, i) => i === 0 || Math.floor(s.t * 2) !== Math.floor(samples[i - 1].t * 2));
  console.log(
    JSON.stringify({
      bench: "memory_timeline",
      model: args.preset ?? dir,
      seq: args.seq,
      device: args.device,
      quantization_bit: args.bits ?? null,
      gradient_checkpointing: args.checkpointing,
      marks: rows.map((r) => ({ phase: r.phase, ...round(r), max_rss_in_phase: Math.round(r.maxRssInPhase) })),
      steps: results.map((r) => ({ ...r, ms: Math.round(r.ms) })),
      samples: kept.map(round),
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
