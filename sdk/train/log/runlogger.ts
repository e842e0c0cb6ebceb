/**
 * Everything a run leaves behind as logs, behind one object: train.log and metrics.jsonl in the
 * output directory, and TensorBoard event files under `<outputDir>/runs/<split>/`. Train and val
 * use the same tag names (loss, ...), so TensorBoard draws their loss curves in one chart, which
 * is where the seed tutorial says to look for the point where they separate.
 */
import { join } from "node:path";
import { TensorBoardWriter, type TensorBoardWriterOptions } from "./tensorboard";
import { TrainLog, type DiagnosticRecord, type EvalRecord, type LogPosition, type StepRecord, type TrainLogOptions } from "./trainlog";

/** Options for RunLogger. */
export interface RunLoggerOptions extends TrainLogOptions {
  /** Write TensorBoard event files under `<outputDir>/runs/`; default true. */
  tensorboard?: boolean;
  /** Options of the TensorBoard writers (host name, clock, fsync). */
  tensorboardOptions?: TensorBoardWriterOptions;
}

/** Writes each log event to train.log, metrics.jsonl and TensorBoard at once. */
export class RunLogger {
  readonly outputDir: string;
  readonly trainLog: TrainLog;
  /** Directory of the TensorBoard runs (`tensorboard --logdir=<this>`), or undefined when disabled. */
  readonly tensorboardDir?: string;
  private readonly writers = new Map<string, TensorBoardWriter>();
  private readonly tbOptions: TensorBoardWriterOptions;

  constructor(outputDir: string, opts: RunLoggerOptions = {}) {
    this.outputDir = outputDir;
    this.trainLog = new TrainLog(outputDir, opts);
    if (opts.tensorboard ?? true) this.tensorboardDir = join(outputDir, "runs");
    this.tbOptions = opts.tensorboardOptions ?? {};
  }

  /** The event-file writer of one split ("train", "val", ...), created on first use. */
  writer(split: string): TensorBoardWriter | undefined {
    if (!this.tensorboardDir) return undefined;
    if (!/^[\w.-]+$/.test(split)) throw new Error(`RunLogger: split name "${split}" must be letters, digits, '_', '-' or '.'`);
    let w = this.writers.get(split);
    if (!w) {
      w = new TensorBoardWriter(join(this.tensorboardDir, split), this.tbOptions);
      this.writers.set(split, w);
    }
    return w;
  }

  /** Logs a training step (TensorBoard tags: loss, learning_rate, grad_norm, update_norm, tokens_per_sec). */
  step(r: StepRecord): void {
    this.trainLog.step(r);
    this.writer("train")?.addScalars(
      { loss: r.loss, learning_rate: r.lr, grad_norm: r.gradNorm, update_norm: r.updateNorm, tokens_per_sec: r.tokensPerSec, epoch: r.epoch },
      r.step,
    );
  }

  /** Logs an evaluation (TensorBoard tags: the metric names, in the split's run). */
  eval(r: EvalRecord): void {
    this.trainLog.eval(r);
    this.writer(r.split ?? "val")?.addScalars(r.metrics, r.step);
  }

  /** Logs a diagnostic (text logs only). */
  diagnostic(r: DiagnosticRecord): void {
    this.trainLog.diagnostic(r);
  }

  /** Logs a free-form line (text logs only). */
  message(text: string, at: Partial<LogPosition> = {}): void {
    this.trainLog.message(text, at);
  }

  /** Closes every file. */
  close(): void {
    this.trainLog.close();
    for (const w of this.writers.values()) w.close();
    this.writers.clear();
  }
}
