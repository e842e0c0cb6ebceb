/**
 * `npm run bench -- --preset NAME | --model DIR [--seq 512] [--batch 1] [--rank 16] [--steps 3] [--gen-tokens 32]`:
 * tunelab and PyTorch eager side by side on the same LoRA job at a real model size (rank r on every linear, AdamW,
 * float32 on the CPU), each in its own process: peak RSS, time from start to the end of the first step, seconds per
 * step, tokens/s, and greedy generation tokens/s with a KV cache. tunelab runs twice: with its weight cache cold (the
 * first run on a checkpoint converts it) and warm (every later run). A --preset model is written to a temporary
 * folder and removed afterwards, with its weight cache. PyTorch is Debian's python3-torch (bench/torch_real_size.py);
 * its BLAS and matmul rate are printed beside it, since a reference BLAS makes the comparison meaningless.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createPresetModel, isPresetName, PRESET_NAMES } from "../sdk/io/presets";
import { PROCESS_ENV } from "../sdk/runtime/process-env";
import type { WorkerJob } from "./real-size-worker";

/** What either side reports (bench/real-size-worker.ts, bench/torch_real_size.py). */
interface SideResult {
  load_s: number;
  first_step_end_s: number;
  ms_per_step: number;
  tokens_per_s: number;
  peak_rss_mb: number;
  gen_tokens_per_s: number;
  losses: number[];
  matmul_gflops?: number;
  blas?: string;
}

const USAGE = `usage: npm run bench -- (--preset ${PRESET_NAMES.join("|")} | --model DIR) [--seq N] [--batch N] [--rank N] [--steps N] [--gen-tokens N] [--no-torch]`;

function parseArgs(argv: readonly string[]): WorkerJob & { preset?: string; model?: string; torch: boolean } {
  const out = { seq: 512, batch: 1, rank: 16, steps: 3, genPrompt: 32, genTokens: 32, torch: true, dir: "" } as WorkerJob & {
    preset?: string;
    model?: string;
    torch: boolean;
  };
  const numeric: Record<string, keyof WorkerJob> = {
    "--seq": "seq",
    "--batch": "batch",
    "--rank": "rank",
    "--steps": "steps",
    "--gen-tokens": "genTokens",
    "--gen-prompt": "genPrompt",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--no-torch") out.torch = false;
    else if (flag === "--preset") out.preset = argv[++i];
    else if (flag === "--model") out.model = argv[++i];
    else if (flag in numeric) {
      const value = Number(argv[++i]);
      if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag} must be a positive whole number, got ${argv[i]}\n${USAGE}`);
      (out[numeric[flag]] as number) = value;
    } else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  if (!out.preset === !out.model) throw new Error(`give exactly one of --preset and --model\n${USAGE}`);
  if (out.preset && !isPresetName(out.preset)) throw new Error(`unknown preset ${out.preset}\n${USAGE}`);
  if (out.steps < 3) throw new Error(`--steps must be at least 3 (the first step is timed apart)\n${USAGE}`);
  return out;
}

function runTunelab(job: WorkerJob, cacheDir: string): SideResult {
  const worker = path.join(__dirname, "real-size-worker.js");
  const out = execFileSync(process.execPath, [worker, JSON.stringify(job)], {
    // The environment the tunelab bin and kernel start with (runtime/process-env.ts).
    env: { ...process.env, ...PROCESS_ENV, TUNELAB_CACHE_DIR: cacheDir },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").pop()!) as SideResult;
}

function runTorch(job: WorkerJob): SideResult | string {
  const python = "/usr/bin/python3";
  if (!fs.existsSync(python)) return "no /usr/bin/python3";
  const script = path.join(__dirname, "../../bench/torch_real_size.py");
  const spec = { seq: job.seq, batch: job.batch, rank: job.rank, alpha: 2 * job.rank, steps: job.steps, gen_prompt: job.genPrompt, gen_tokens: job.genTokens };
  try {
    const out = execFileSync(python, [script, job.dir, JSON.stringify(spec)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    return JSON.parse(out.trim().split("\n").pop()!) as SideResult;
  } catch (err) {
    return `PyTorch run failed: ${(err as Error).message.split("\n")[0]}`;
  }
}

/** Runs the comparison and prints a table and a JSON line. */
export async function realSizeBench(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-bench-real-"));
  try {
    let dir = args.model ? path.resolve(args.model) : path.join(tmp, args.preset!);
    if (args.preset && isPresetName(args.preset)) createPresetModel({ preset: args.preset, out: dir, seed: 0 });
    dir = path.resolve(dir);
    const job: WorkerJob = { dir, seq: args.seq, batch: args.batch, rank: args.rank, steps: args.steps, genPrompt: args.genPrompt, genTokens: args.genTokens };
    const cache = path.join(tmp, "cache");
    const cold = runTunelab(job, cache);
    const warm = runTunelab(job, cache);
    const torch = args.torch ? runTorch(job) : "skipped (--no-torch)";
    printReport(args.preset ?? dir, job, cold, warm, torch);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function printReport(name: string, job: WorkerJob, cold: SideResult, warm: SideResult, torch: SideResult | string): void {
  const t = typeof torch === "string" ? null : torch;
  console.log(`\n${name}: LoRA r${job.rank} on every linear, AdamW, float32, batch ${job.batch} x ${job.seq} tokens, CPU (${os.cpus().length} cores)`);
  if (t)
    console.log(
      `PyTorch ${"torch" in t ? (t as { torch?: string }).torch : ""} eager, BLAS ${t.blas ?? "?"} at ${t.matmul_gflops?.toFixed(0) ?? "?"} GFLOP/s (1024^3 matmul)`,
    );
  else console.log(`PyTorch: ${torch}`);
  const rows: [string, (r: SideResult) => number, "lower" | "higher", number][] = [
    ["peak RSS (MiB)", (r) => r.peak_rss_mb, "lower", 0],
    ["start to end of first step (s)", (r) => r.first_step_end_s, "lower", 1],
    ["seconds per step", (r) => r.ms_per_step / 1000, "lower", 2],
    ["tokens/s (training)", (r) => r.tokens_per_s, "higher", 1],
    ["greedy tokens/s (KV cache)", (r) => r.gen_tokens_per_s, "higher", 2],
  ];
  console.log(`${"".padEnd(32)} ${"tunelab".padStart(10)} ${"cold cache".padStart(11)} ${"PyTorch".padStart(10)} ${"tunelab advantage".padStart(18)}`);
  for (const [label, get, better, digits] of rows) {
    const ours = get(warm);
    const theirs = t ? get(t) : NaN;
    const ratio = better === "lower" ? theirs / ours : ours / theirs;
    console.log(
      `${label.padEnd(32)} ${ours.toFixed(digits).padStart(10)} ${get(cold).toFixed(digits).padStart(11)} ${(t ? theirs.toFixed(digits) : "-").padStart(10)} ${(t ? `${ratio.toFixed(2)}x` : "-").padStart(18)}`,
    );
  }
  console.log(
    `first losses: tunelab ${warm.losses.map((l) => l.toFixed(4)).join(", ")}${t ? `; PyTorch ${t.losses.map((l) => l.toFixed(4)).join(", ")}` : ""}`,
  );
  console.log(JSON.stringify({ bench: "real_size", model: name, ...job, tunelab: warm, tunelab_cold: cold, torch: t ?? torch }));
}
