/**
 * A terminal progress bar as a pure function of the training state, for the CLI (which redraws
 * it with "\r") and for any text display:
 *   epoch 1/10  37%|███████▍            | 1850/5000 [02:13<03:47, 1234 tok/s, loss 2.1500]
 */

/** What the bar shows. */
export interface ProgressState {
  /** Steps done. */
  step: number;
  maxSteps: number;
  /** Seconds since `startStep` (the start of this process's run). */
  elapsedSec: number;
  /** Step this process started at (non-zero after a resume), so the ETA uses this run's rate; default 0. */
  startStep?: number;
  tokensPerSec?: number;
  loss?: number;
  epoch?: number;
  numEpochs?: number;
}

/** Options for `renderProgress`. */
export interface ProgressOptions {
  /** Total width of the line in columns; default 80. */
  width?: number;
  /** Use only ASCII characters ("#" and "-") for the bar. */
  ascii?: boolean;
}

/** Seconds as "mm:ss", or "h:mm:ss" from an hour; "?" when unknown. */
export function formatDuration(sec: number | undefined): string {
  if (sec === undefined || !Number.isFinite(sec) || sec < 0) return "?";
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${String(m).padStart(2, "0")}:${ss}`;
}

/** Seconds left at this run's average rate; undefined before the first step of this run. */
export function estimateEta(s: ProgressState): number | undefined {
  const done = s.step - (s.startStep ?? 0);
  if (done <= 0 || !(s.elapsedSec > 0)) return undefined;
  return (s.elapsedSec / done) * Math.max(0, s.maxSteps - s.step);
}

const EIGHTHS = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

function bar(fraction: number, width: number, ascii: boolean): string {
  const f = Math.min(1, Math.max(0, fraction));
  if (ascii) {
    const full = Math.floor(f * width);
    return "#".repeat(full) + "-".repeat(width - full);
  }
  const eighths = Math.floor(f * width * 8);
  const full = Math.floor(eighths / 8);
  const part = full < width ? EIGHTHS[eighths % 8] : "";
  return ("█".repeat(full) + part).padEnd(width, " ");
}

/** One line: epoch, percent, bar, step/maxSteps, elapsed<ETA, tokens/s and loss. */
export function renderProgress(s: ProgressState, opts: ProgressOptions = {}): string {
  if (!(s.maxSteps > 0)) throw new Error(`renderProgress: maxSteps must be > 0, got ${s.maxSteps}`);
  const width = opts.width ?? 80;
  const fraction = s.step / s.maxSteps;
  const pct = `${String(Math.floor(Math.min(1, Math.max(0, fraction)) * 100)).padStart(3)}%`;
  const extras = [`${formatDuration(s.elapsedSec)}<${formatDuration(estimateEta(s))}`];
  if (s.tokensPerSec !== undefined && Number.isFinite(s.tokensPerSec)) extras.push(`${Math.round(s.tokensPerSec)} tok/s`);
  if (s.loss !== undefined) extras.push(`loss ${Number.isFinite(s.loss) ? s.loss.toFixed(4) : String(s.loss)}`);
  const head = (s.epoch !== undefined && s.numEpochs !== undefined ? `epoch ${s.epoch}/${s.numEpochs} ` : "") + pct;
  const tail = ` ${s.step}/${s.maxSteps} [${extras.join(", ")}]`;
  const barWidth = Math.max(10, width - head.length - tail.length - 2);
  return `${head}|${bar(fraction, barWidth, opts.ascii ?? false)}|${tail}`;
}
