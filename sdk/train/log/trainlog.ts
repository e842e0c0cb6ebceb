/**
 * train.log (human lines in the seed tutorial's style, made for `tail -f train.log | grep "loss:"`)
 * and metrics.jsonl (one JSON object per log event, for programs). Both are append-only and each
 * line reaches the OS as it is written, so a crash or interrupt keeps everything logged so far.
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { formatExp } from "../../viz/table";

/** Where in training a line was logged. */
export interface LogPosition {
  /** 1-based epoch. */
  epoch: number;
  numEpochs: number;
  /** Optimizer step (after the update). */
  step: number;
}

/** A training-step log event. */
export interface StepRecord extends LogPosition {
  loss: number;
  lr: number;
  gradNorm?: number;
  tokensPerSec?: number;
  /** Norm of the parameter update (for the vanishing-update diagnostic). */
  updateNorm?: number;
}

/** An evaluation log event: metrics on one split (loss, accuracy, f1_macro, ...). */
export interface EvalRecord extends LogPosition {
  /** Default "val". */
  split?: string;
  metrics: Readonly<Record<string, number>>;
}

/** A diagnostic: something the trainer noticed (overfitting, vanishing updates, NaN loss). */
export interface DiagnosticRecord extends Partial<LogPosition> {
  /** Default "warning". */
  level?: "info" | "warning" | "error";
  /** Short machine name, e.g. "overfitting", "vanishing_updates", "nan_loss". */
  kind: string;
  message: string;
  /** What to try, e.g. "raise lora_dropout to 0.3 or enable early stopping (patience 3)". */
  suggestion?: string;
}

/** One line of metrics.jsonl (snake_case keys; non-finite numbers are written as null). */
export type MetricsEvent = { event: "step" | "eval" | "diagnostic" | "message"; time: string } & Record<string, unknown>;

function prefix(p: Partial<LogPosition>): string {
  const parts: string[] = [];
  if (p.epoch !== undefined && p.numEpochs !== undefined) parts.push(`[epoch ${p.epoch}/${p.numEpochs}]`);
  if (p.step !== undefined) parts.push(`step ${p.step}`);
  return parts.join(" ");
}

/** A number for a log line: 4 decimals, e-notation when tiny or huge, "nan"/"inf" when not finite. */
export function formatLogNumber(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-4 || a >= 1e7)) return formatExp(x, 2);
  return x.toFixed(4);
}

/** `[epoch 1/10] step 500 loss: 2.1500 lr: 3.0e-05 grad_norm: 0.8123 tokens/s: 1234` */
export function formatStepLine(r: StepRecord): string {
  let line = `${prefix(r)} loss: ${formatLogNumber(r.loss)} lr: ${formatExp(r.lr, 1)}`;
  if (r.gradNorm !== undefined) line += ` grad_norm: ${formatLogNumber(r.gradNorm)}`;
  if (r.updateNorm !== undefined) line += ` update_norm: ${formatExp(r.updateNorm, 2)}`;
  if (r.tokensPerSec !== undefined) line += ` tokens/s: ${Math.round(r.tokensPerSec)}`;
  return line;
}

/** `[epoch 1/10] step 500 val_loss: 1.8700 val_accuracy: 0.8123 val_f1_macro: 0.8000` */
export function formatEvalLine(r: EvalRecord): string {
  const split = r.split ?? "val";
  const metrics = Object.entries(r.metrics).map(([k, v]) => `${split}_${k}: ${formatLogNumber(v)}`);
  return `${prefix(r)} ${metrics.join(" ")}`.trimEnd();
}

/** `[epoch 3/10] step 1500 WARNING overfitting: <message> Suggestion: <suggestion>` */
export function formatDiagnosticLine(r: DiagnosticRecord): string {
  const head = prefix(r);
  return `${head ? head + " " : ""}${(r.level ?? "warning").toUpperCase()} ${r.kind}: ${r.message}${r.suggestion ? ` Suggestion: ${r.suggestion}` : ""}`;
}

const RESERVED = new Set(["event", "time", "epoch", "num_epochs", "step", "split"]);

function finiteOrNull(x: number | undefined): number | null | undefined {
  return x === undefined ? undefined : Number.isFinite(x) ? x : null;
}

/** Options for TrainLog. */
export interface TrainLogOptions {
  /** File name of the text log inside the output directory; default "train.log". */
  logFile?: string;
  /** File name of the JSON-lines log; default "metrics.jsonl". */
  metricsFile?: string;
  /** Clock for the `time` field; default the system clock. */
  now?: () => Date;
  /** Also echo each train.log line here (e.g. process.stderr.write for the CLI). */
  echo?: (line: string) => void;
}

/** Appends train.log lines and metrics.jsonl events in an output directory. */
export class TrainLog {
  /** Path of train.log. */
  readonly logPath: string;
  /** Path of metrics.jsonl. */
  readonly metricsPath: string;
  private logFd: number | undefined;
  private metricsFd: number | undefined;
  private readonly now: () => Date;
  private readonly echo?: (line: string) => void;

  constructor(outputDir: string, opts: TrainLogOptions = {}) {
    mkdirSync(outputDir, { recursive: true });
    this.logPath = join(outputDir, opts.logFile ?? "train.log");
    this.metricsPath = join(outputDir, opts.metricsFile ?? "metrics.jsonl");
    // Append: a resumed run continues the same files.
    this.logFd = openSync(this.logPath, "a");
    this.metricsFd = openSync(this.metricsPath, "a");
    this.now = opts.now ?? (() => new Date());
    this.echo = opts.echo;
  }

  private write(line: string, event: Record<string, unknown>): void {
    if (this.logFd === undefined || this.metricsFd === undefined) throw new Error(`TrainLog: ${this.logPath} is closed`);
    writeSync(this.logFd, line + "\n");
    const json = JSON.stringify({ ...event, time: this.now().toISOString() }, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v));
    writeSync(this.metricsFd, json + "\n");
    this.echo?.(line);
  }

  /** Logs a training step. */
  step(r: StepRecord): void {
    this.write(formatStepLine(r), {
      event: "step",
      epoch: r.epoch,
      num_epochs: r.numEpochs,
      step: r.step,
      loss: finiteOrNull(r.loss),
      lr: r.lr,
      grad_norm: finiteOrNull(r.gradNorm),
      update_norm: finiteOrNull(r.updateNorm),
      tokens_per_sec: r.tokensPerSec,
    });
  }

  /** Logs an evaluation. */
  eval(r: EvalRecord): void {
    for (const k of Object.keys(r.metrics)) {
      if (RESERVED.has(k)) throw new Error(`TrainLog.eval: metric name "${k}" is reserved in metrics.jsonl; rename it`);
    }
    this.write(formatEvalLine(r), { event: "eval", epoch: r.epoch, num_epochs: r.numEpochs, step: r.step, split: r.split ?? "val", ...r.metrics });
  }

  /** Logs a diagnostic. */
  diagnostic(r: DiagnosticRecord): void {
    this.write(formatDiagnosticLine(r), {
      event: "diagnostic",
      epoch: r.epoch,
      num_epochs: r.numEpochs,
      step: r.step,
      level: r.level ?? "warning",
      kind: r.kind,
      message: r.message,
      suggestion: r.suggestion,
    });
  }

  /** Logs a free-form line, e.g. "training started: 5000 steps". */
  message(text: string, at: Partial<LogPosition> = {}): void {
    const head = prefix(at);
    this.write(`${head ? head + " " : ""}${text}`, { event: "message", epoch: at.epoch, num_epochs: at.numEpochs, step: at.step, text });
  }

  /** Closes both files; later writes throw. */
  close(): void {
    if (this.logFd !== undefined) closeSync(this.logFd);
    if (this.metricsFd !== undefined) closeSync(this.metricsFd);
    this.logFd = this.metricsFd = undefined;
  }
}

/** Reads metrics.jsonl; a malformed line is an error naming its line number (a torn last line is skipped). */
export function readMetricsJsonl(path: string): MetricsEvent[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const out: MetricsEvent[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line) as MetricsEvent);
    } catch (err) {
      // A crash mid-write can leave the last line unfinished (no newline yet): not an error.
      if (i === lines.length - 1) break;
      throw new Error(`${path}:${i + 1}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
  }
  return out;
}
