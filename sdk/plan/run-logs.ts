/**
 * What a finished (or running) training folder says about itself, read the same way whoever wrote it: tunelab
 * (metrics.jsonl, run.json) or LLaMA-Factory (trainer_state.json's log_history, trainer_log.jsonl, all_results.json,
 * as LF's LogCallback and transformers' Trainer write them). A RunLogs shows as a table and the loss curve.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { readMetricsJsonl } from "../train/log";
import type { EvalEvent } from "../train/callbacks";
import { displayFigure, JUPYTER_DISPLAY, plotlyHtml, type Displayable, type DisplayOptions, type MimeBundle, type PlotlyFigure } from "../viz/display";
import { lossCurve } from "../viz/figures";
import { htmlTable, textTable } from "../viz/table";

/** Who wrote the folder. */
export type RunSource = "tunelab" | "llamafactory";

/** One logged training step. */
export interface LoggedStep {
  step: number;
  loss: number;
  learningRate: number;
  epoch?: number;
  gradNorm?: number;
}

/** The logs of a run folder. */
export interface RunLogData {
  source: RunSource;
  dir: string;
  /** The files the logs were read from (relative to dir). */
  readFrom: string[];
  history: LoggedStep[];
  evals: EvalEvent[];
  /** Final figures: LF's all_results.json (train_loss, eval_loss, ...) or tunelab's run.json result (val_*, test_*). */
  results: Record<string, number>;
  /** Steps done and planned (planned: LF's max_steps / total_steps). */
  steps: number;
  totalSteps?: number;
  /** The folder holding the PEFT adapter, or null (full fine-tune, or none written yet). */
  adapterDir: string | null;
}

const LF_FILES = ["trainer_state.json", "trainer_log.jsonl", "all_results.json", "train_results.json"];
const TUNELAB_FILES = ["run.json", "metrics.jsonl"];

/** Which tool wrote `dir`, or an error listing what each would have left there. */
export function runSource(dir: string): RunSource {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder`);
  const has = (f: string) => fs.existsSync(path.join(dir, f));
  if (TUNELAB_FILES.some(has)) return "tunelab";
  if (LF_FILES.some(has) || newestCheckpoint(dir, "trainer_state.json")) return "llamafactory";
  throw new Error(`${dir}: not a training output folder: it has none of tunelab's ${TUNELAB_FILES.join(", ")} or LLaMA-Factory's ${LF_FILES.join(", ")}`);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8").replace(/\bNaN\b|-?\bInfinity\b/g, "null"));
  } catch (err) {
    throw new Error(`${file}: not readable JSON (${(err as Error).message})`, { cause: err });
  }
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** The newest checkpoint-N folder holding `file`, or null. */
function newestCheckpoint(dir: string, file: string): string | null {
  const steps = fs
    .readdirSync(dir)
    .map((f) => /^checkpoint-(\d+)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && fs.existsSync(path.join(dir, m[0], file)))
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  return steps.length ? path.join(dir, `checkpoint-${steps[0]}`) : null;
}

/** transformers' eval_* keys of one log entry as metric names (eval_runtime and throughput figures left out). */
function evalMetrics(entry: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(entry)) {
    const m = /^eval_(.+)$/.exec(k);
    const value = num(v);
    if (!m || value === undefined || /^(loss|runtime|samples_per_second|steps_per_second)$/.test(m[1])) continue;
    out[m[1]] = value;
  }
  if (out.perplexity === undefined && num(entry.eval_loss) !== undefined) out.perplexity = Math.exp(entry.eval_loss as number);
  return out;
}

/** LLaMA-Factory's output folder: trainer_state.json (or a checkpoint's), else trainer_log.jsonl; all_results.json. */
function readLfLogs(dir: string): RunLogData {
  const readFrom: string[] = [];
  const history: LoggedStep[] = [];
  const evals: EvalEvent[] = [];
  let steps = 0;
  let totalSteps: number | undefined;
  const stateDir = fs.existsSync(path.join(dir, "trainer_state.json")) ? dir : newestCheckpoint(dir, "trainer_state.json");
  const state = stateDir ? (readJson(path.join(stateDir, "trainer_state.json")) as Record<string, unknown>) : null;
  if (state && Array.isArray(state.log_history) && state.log_history.length > 0) {
    readFrom.push(path.relative(dir, path.join(stateDir!, "trainer_state.json")));
    for (const e of state.log_history as Record<string, unknown>[]) {
      const step = num(e.step);
      if (step === undefined) continue;
      if (num(e.loss) !== undefined) {
        history.push({ step, loss: e.loss as number, learningRate: num(e.learning_rate) ?? NaN, epoch: num(e.epoch), gradNorm: num(e.grad_norm) });
      }
      if (num(e.eval_loss) !== undefined) evals.push({ step, epoch: num(e.epoch) ?? NaN, loss: e.eval_loss as number, metrics: evalMetrics(e) });
    }
    steps = num(state.global_step) ?? history.at(-1)?.step ?? 0;
    totalSteps = num(state.max_steps);
  } else if (fs.existsSync(path.join(dir, "trainer_log.jsonl"))) {
    // LF's LogCallback: one JSON object a logging step, {current_steps, total_steps, loss, eval_loss, lr, epoch, ...}.
    readFrom.push("trainer_log.jsonl");
    const file = path.join(dir, "trainer_log.jsonl");
    const lines = fs.readFileSync(file, "utf8").split("\n");
    for (const [i, line] of lines.entries()) {
      if (line.trim() === "") continue;
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(line) as Record<string, unknown>;
      } catch (err) {
        if (i === lines.length - 1) break; // a line still being written
        throw new Error(`${file}:${i + 1}: not valid JSON (${(err as Error).message})`, { cause: err });
      }
      const step = num(e.current_steps);
      if (step === undefined) continue;
      steps = Math.max(steps, step);
      totalSteps = num(e.total_steps) ?? totalSteps;
      if (num(e.loss) !== undefined) history.push({ step, loss: e.loss as number, learningRate: num(e.lr) ?? NaN, epoch: num(e.epoch) });
      if (num(e.eval_loss) !== undefined) {
        const loss = e.eval_loss as number;
        evals.push({ step, epoch: num(e.epoch) ?? NaN, loss, metrics: { perplexity: Math.exp(loss) } });
      }
    }
  }
  const results: Record<string, number> = {};
  for (const f of ["train_results.json", "eval_results.json", "all_results.json"]) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) continue;
    readFrom.push(f);
    for (const [k, v] of Object.entries(readJson(file) as Record<string, unknown>)) if (num(v) !== undefined) results[k] = v as number;
  }
  const adapterDir = fs.existsSync(path.join(dir, "adapter_config.json")) ? dir : newestCheckpoint(dir, "adapter_config.json");
  return { source: "llamafactory", dir, readFrom, history, evals, results, steps, totalSteps, adapterDir };
}

/** tunelab's output folder: metrics.jsonl and run.json (docs/outputs.md). */
function readTunelabLogs(dir: string): RunLogData {
  const readFrom: string[] = [];
  const history: LoggedStep[] = [];
  const evals: EvalEvent[] = [];
  let steps = 0;
  let totalSteps: number | undefined;
  if (fs.existsSync(path.join(dir, "metrics.jsonl"))) {
    readFrom.push("metrics.jsonl");
    for (const e of readMetricsJsonl(path.join(dir, "metrics.jsonl"))) {
      const step = num(e.step);
      if (step === undefined) continue;
      if (e.event === "step") {
        history.push({ step, loss: num(e.loss) ?? NaN, learningRate: num(e.lr) ?? NaN, epoch: num(e.epoch), gradNorm: num(e.grad_norm) });
        steps = Math.max(steps, step);
      } else if (e.event === "eval" && e.split === "val") {
        const { event: _e, time: _t, step: _s, epoch, num_epochs: _n, split: _p, loss, ...metrics } = e;
        evals.push({
          step,
          epoch: num(epoch) ?? NaN,
          loss: num(loss) ?? NaN,
          metrics: Object.fromEntries(Object.entries(metrics).filter(([, v]) => num(v) !== undefined)) as Record<string, number>,
        });
      }
    }
  }
  const results: Record<string, number> = {};
  if (fs.existsSync(path.join(dir, "run.json"))) {
    readFrom.push("run.json");
    const run = readJson(path.join(dir, "run.json")) as {
      result?: { steps?: number; val?: Record<string, number> | null; test?: Record<string, number> | null };
    };
    steps = num(run.result?.steps) ?? steps;
    totalSteps = steps;
    for (const part of ["val", "test"] as const)
      for (const [k, v] of Object.entries(run.result?.[part] ?? {})) if (num(v) !== undefined) results[`${part}_${k}`] = v;
  }
  const adapterDir = fs.existsSync(path.join(dir, "adapter_config.json")) ? dir : null;
  return { source: "tunelab", dir, readFrom, history, evals, results, steps, totalSteps, adapterDir };
}

/** The logs of a run folder, whoever wrote it. */
export function readRunLogs(dir: string): RunLogData {
  const abs = path.resolve(dir);
  return runSource(abs) === "tunelab" ? readTunelabLogs(abs) : readLfLogs(abs);
}

/** A run folder's logs, displayable: a summary table and the loss curve. */
export class RunLogs implements Displayable {
  constructor(readonly data: RunLogData) {}

  /** Reads `dir` (tunelab's or LLaMA-Factory's output folder). */
  static read(dir: string): RunLogs {
    return new RunLogs(readRunLogs(dir));
  }

  get history(): readonly LoggedStep[] {
    return this.data.history;
  }

  get evals(): readonly EvalEvent[] {
    return this.data.evals;
  }

  /** Train and validation loss against step (learning rate on a second axis). */
  lossCurve(): PlotlyFigure & Displayable {
    return displayFigure(this.figure());
  }

  private figure(): PlotlyFigure {
    const points = [
      ...this.data.history.map((h) => ({ step: h.step, loss: h.loss, split: "train" as const })),
      ...this.data.evals.map((e) => ({ step: e.step, loss: e.loss, split: "val" as const })),
    ];
    const lr = this.data.history.filter((h) => Number.isFinite(h.learningRate)).map((h) => ({ step: h.step, lr: h.learningRate }));
    return lossCurve(points, { lr, title: `Loss (${this.data.source === "llamafactory" ? "LLaMA-Factory" : "tunelab"} run)` });
  }

  /** Summary rows: steps, last losses, final results. */
  rows(): [string, unknown][] {
    const d = this.data;
    return [
      ["written by", d.source === "llamafactory" ? "LLaMA-Factory" : "tunelab"],
      ["folder", d.dir],
      ["steps", d.totalSteps !== undefined && d.totalSteps !== d.steps ? `${d.steps} / ${d.totalSteps}` : d.steps],
      ["logged steps", d.history.length],
      ["last train loss", d.history.at(-1)?.loss ?? "-"],
      ["evaluations", d.evals.length],
      ["last eval loss", d.evals.at(-1)?.loss ?? "-"],
      ...Object.entries(d.results).map(([k, v]): [string, unknown] => [k, v]),
      ["adapter", d.adapterDir ?? "-"],
      ["read from", d.readFrom.join(", ")],
    ];
  }

  [JUPYTER_DISPLAY](opts: DisplayOptions = {}): MimeBundle {
    const rows = this.rows();
    const plot =
      this.data.history.length + this.data.evals.length > 0 ? plotlyHtml(this.figure(), { inlinePlotly: opts.inlinePlotly ?? true, height: "320px" }) : "";
    return { "text/plain": textTable(["run", ""], rows), "text/html": htmlTable(["run", ""], rows) + plot };
  }
}
