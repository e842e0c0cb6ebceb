/** The live view of a training run: progress, loss curve, latest evaluation and diagnostics in one bundle. */
import { htmlEscape, JUPYTER_DISPLAY, plotlyHtml, type Displayable, type DisplayOptions, type MimeBundle } from "../../viz/display";
import { lossCurve, type LossPoint, type LrPoint } from "../../viz/figures";
import { htmlTable } from "../../viz/table";
import { formatDuration, renderProgress } from "./progress";

/** Everything the view shows; the trainer's callbacks fill it in. */
export interface TrainingViewState {
  step: number;
  maxSteps: number;
  elapsedSec: number;
  startStep: number;
  epoch?: number;
  numEpochs?: number;
  tokensPerSec?: number;
  losses: LossPoint[];
  lr: LrPoint[];
  lastEval?: { step: number; metrics: Record<string, number> };
  diagnostics: { kind: string; message: string; suggestion: string }[];
  /** Set when the run has ended. */
  finished?: string;
}

/** A displayable snapshot of a run in progress (or finished). */
export class TrainingView implements Displayable {
  constructor(readonly state: TrainingViewState) {}

  /** One terminal line: bar, step, loss, ETA. */
  line(): string {
    const s = this.state;
    const lastLoss = [...s.losses].reverse().find((p) => p.split === "train")?.loss;
    const bar = renderProgress({
      step: s.step,
      maxSteps: s.maxSteps,
      elapsedSec: s.elapsedSec,
      startStep: s.startStep,
      tokensPerSec: s.tokensPerSec,
      loss: lastLoss,
      epoch: s.epoch,
      numEpochs: s.numEpochs,
    });
    return s.finished ? `${bar}  finished: ${s.finished}` : bar;
  }

  [JUPYTER_DISPLAY](opts: DisplayOptions = {}): MimeBundle {
    const s = this.state;
    const pct = s.maxSteps > 0 ? Math.round((100 * s.step) / s.maxSteps) : 0;
    const status = s.finished ? `finished: ${htmlEscape(s.finished)}` : `ETA ${formatDuration(etaSeconds(s))}`;
    const head =
      `<div style="font-family:monospace">step ${s.step}/${s.maxSteps} (${pct}%) · ${formatDuration(s.elapsedSec)} elapsed · ${status}` +
      (s.tokensPerSec ? ` · ${Math.round(s.tokensPerSec)} tokens/s` : "") +
      `</div><progress max="${s.maxSteps}" value="${s.step}" style="width:100%"></progress>`;
    const plot =
      s.losses.length > 0
        ? plotlyHtml(lossCurve(s.losses, { lr: s.lr, maxSteps: s.maxSteps, title: "Loss" }), { inlinePlotly: opts.inlinePlotly ?? true, height: "320px" })
        : "";
    const evalTable = s.lastEval
      ? htmlTable(
          ["metric", "value"],
          Object.entries(s.lastEval.metrics).map(([k, v]) => [k, v]),
          { caption: `validation at step ${s.lastEval.step}` },
        )
      : "";
    const diag = s.diagnostics
      .map((d) => `<div style="color:#b45309">⚠ ${htmlEscape(d.kind)}: ${htmlEscape(d.message)}. Try: ${htmlEscape(d.suggestion)}</div>`)
      .join("");
    return { "text/plain": this.line(), "text/html": head + plot + evalTable + diag };
  }
}

function etaSeconds(s: TrainingViewState): number | undefined {
  const done = s.step - s.startStep;
  return done > 0 ? (s.elapsedSec / done) * (s.maxSteps - s.step) : undefined;
}
