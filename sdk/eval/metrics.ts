/**
 * Classification and language-model metrics with scikit-learn semantics (zero_division=0):
 * labels default to the sorted union of true and predicted labels, and a 0/0 score is 0.
 */

/** A class label: strings or integers, not mixed within one call. */
export type Label = string | number;

/** A confusion matrix: matrix[i][j] counts samples with true label labels[i] predicted as labels[j]. */
export interface ConfusionMatrix {
  labels: Label[];
  matrix: number[][];
}

/** Precision, recall, F1 and support (number of true samples) of one class. */
export interface ClassScores {
  label: Label;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** How per-class scores are combined (sklearn's `average`). */
export type Average = "macro" | "micro" | "weighted";

/** Options shared by the averaged scores. */
export interface AverageOptions {
  /** Default "macro". */
  average?: Average;
  /** Labels to score, in order; default the sorted union of yTrue and yPred. */
  labels?: readonly Label[];
}

/** All classification metrics at once. */
export interface ClassificationMetrics {
  accuracy: number;
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  microF1: number;
  weightedF1: number;
  perClass: ClassScores[];
  confusion: ConfusionMatrix;
  numExamples: number;
}

function checkPair(fn: string, yTrue: readonly Label[], yPred: readonly Label[]): void {
  if (yTrue.length !== yPred.length) {
    throw new Error(`${fn}: yTrue has ${yTrue.length} labels but yPred has ${yPred.length}; they must be the same length`);
  }
  if (yTrue.length === 0) throw new Error(`${fn}: no samples (yTrue and yPred are empty)`);
  for (const [name, ys] of [
    ["yTrue", yTrue],
    ["yPred", yPred],
  ] as const) {
    for (const [i, y] of ys.entries()) {
      if (typeof y === "number" ? !Number.isInteger(y) : typeof y !== "string") {
        throw new Error(`${fn}: ${name}[${i}] must be a string or an integer label, got ${JSON.stringify(y)}`);
      }
    }
  }
  // "1" and 1 never compare equal: a mix is almost always labels read as text on one side only.
  const kind = typeof yTrue[0];
  const odd = [...yTrue, ...yPred].findIndex((y) => typeof y !== kind);
  if (odd >= 0) {
    const [name, i] = odd < yTrue.length ? ["yTrue", odd] : ["yPred", odd - yTrue.length];
    throw new Error(
      `${fn}: labels mix strings and numbers (yTrue[0] is a ${kind}, ${name}[${i}] is ${JSON.stringify(odd < yTrue.length ? yTrue[i] : yPred[i])}); use one type`,
    );
  }
}

/** The sorted union of labels (numeric order for integers, code-unit order for strings), like np.unique. */
export function uniqueLabels(...lists: ReadonlyArray<readonly Label[]>): Label[] {
  const set = new Set<Label>();
  for (const list of lists) for (const y of list) set.add(y);
  const all = [...set];
  const kinds = new Set(all.map((y) => typeof y));
  if (kinds.size > 1) {
    throw new Error(
      `labels mix strings and numbers (${all
        .slice(0, 6)
        .map((y) => JSON.stringify(y))
        .join(", ")}); use one type`,
    );
  }
  return kinds.has("number") ? (all as number[]).sort((a, b) => a - b) : (all as string[]).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function resolveLabels(fn: string, yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): Label[] {
  if (labels === undefined) return uniqueLabels(yTrue, yPred);
  if (labels.length === 0) throw new Error(`${fn}: labels is empty; give at least one label or leave it unset`);
  if (new Set(labels).size !== labels.length) throw new Error(`${fn}: labels contains duplicates`);
  return [...labels];
}

const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);

/** Fraction of samples whose predicted label equals the true label. */
export function accuracy(yTrue: readonly Label[], yPred: readonly Label[]): number {
  checkPair("accuracy", yTrue, yPred);
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) correct++;
  return correct / yTrue.length;
}

/** Confusion matrix (rows true, columns predicted); samples with a label outside `labels` are ignored. */
export function confusionMatrix(yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): ConfusionMatrix {
  checkPair("confusionMatrix", yTrue, yPred);
  const ls = resolveLabels("confusionMatrix", yTrue, yPred, labels);
  const index = new Map<Label, number>(ls.map((l, i) => [l, i]));
  const matrix = ls.map(() => new Array<number>(ls.length).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const t = index.get(yTrue[i]);
    const p = index.get(yPred[i]);
    if (t !== undefined && p !== undefined) matrix[t][p]++;
  }
  return { labels: ls, matrix };
}

interface Counts {
  labels: Label[];
  tp: number[];
  fp: number[];
  fn: number[];
}

// Counted directly rather than from the confusion matrix so that, as in sklearn, a sample whose
// predicted label is outside `labels` still counts as a false negative of its true class.
function countsFor(fn: string, yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): Counts {
  checkPair(fn, yTrue, yPred);
  const ls = resolveLabels(fn, yTrue, yPred, labels);
  const index = new Map<Label, number>(ls.map((l, i) => [l, i]));
  const tp = new Array<number>(ls.length).fill(0);
  const fp = tp.slice();
  const fnc = tp.slice();
  for (let i = 0; i < yTrue.length; i++) {
    const t = index.get(yTrue[i]);
    const p = index.get(yPred[i]);
    if (yTrue[i] === yPred[i]) {
      if (t !== undefined) tp[t]++;
    } else {
      if (p !== undefined) fp[p]++;
      if (t !== undefined) fnc[t]++;
    }
  }
  return { labels: ls, tp, fp, fn: fnc };
}

function scoresFromCounts(c: Counts): ClassScores[] {
  return c.labels.map((label, i) => {
    const precision = div(c.tp[i], c.tp[i] + c.fp[i]);
    const recall = div(c.tp[i], c.tp[i] + c.fn[i]);
    return { label, precision, recall, f1: div(2 * c.tp[i], 2 * c.tp[i] + c.fp[i] + c.fn[i]), support: c.tp[i] + c.fn[i] };
  });
}

/** Precision, recall, F1 and support for each label (sklearn's precision_recall_fscore_support, average=None). */
export function perClassScores(yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): ClassScores[] {
  return scoresFromCounts(countsFor("perClassScores", yTrue, yPred, labels));
}

type ScoreName = "precision" | "recall" | "f1";

function averaged(fn: string, score: ScoreName, yTrue: readonly Label[], yPred: readonly Label[], opts: AverageOptions): number {
  const average = opts.average ?? "macro";
  const c = countsFor(fn, yTrue, yPred, opts.labels);
  if (average === "micro") {
    const tp = c.tp.reduce((a, b) => a + b, 0);
    const fp = c.fp.reduce((a, b) => a + b, 0);
    const fnn = c.fn.reduce((a, b) => a + b, 0);
    if (score === "precision") return div(tp, tp + fp);
    if (score === "recall") return div(tp, tp + fnn);
    return div(2 * tp, 2 * tp + fp + fnn);
  }
  const per = scoresFromCounts(c);
  if (average === "macro") return per.reduce((s, r) => s + r[score], 0) / per.length;
  if (average === "weighted") {
    const total = per.reduce((s, r) => s + r.support, 0);
    return div(
      per.reduce((s, r) => s + r[score] * r.support, 0),
      total,
    );
  }
  throw new Error(`${fn}: average must be "macro", "micro" or "weighted", got ${JSON.stringify(average)}`);
}

/** Precision averaged over labels (default macro). */
export function precisionScore(yTrue: readonly Label[], yPred: readonly Label[], opts: AverageOptions = {}): number {
  return averaged("precisionScore", "precision", yTrue, yPred, opts);
}

/** Recall averaged over labels (default macro). */
export function recallScore(yTrue: readonly Label[], yPred: readonly Label[], opts: AverageOptions = {}): number {
  return averaged("recallScore", "recall", yTrue, yPred, opts);
}

/** F1 averaged over labels (default macro); micro F1 equals accuracy when every label is scored. */
export function f1Score(yTrue: readonly Label[], yPred: readonly Label[], opts: AverageOptions = {}): number {
  return averaged("f1Score", "f1", yTrue, yPred, opts);
}

/** Accuracy, macro/micro/weighted F1, macro precision/recall, per-class scores and confusion matrix. */
export function classificationMetrics(yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): ClassificationMetrics {
  const opts = { labels: labels ?? uniqueLabels(yTrue, yPred) };
  const perClass = perClassScores(yTrue, yPred, opts.labels);
  return {
    accuracy: accuracy(yTrue, yPred),
    macroPrecision: precisionScore(yTrue, yPred, { ...opts, average: "macro" }),
    macroRecall: recallScore(yTrue, yPred, { ...opts, average: "macro" }),
    macroF1: f1Score(yTrue, yPred, { ...opts, average: "macro" }),
    microF1: f1Score(yTrue, yPred, { ...opts, average: "micro" }),
    weightedF1: f1Score(yTrue, yPred, { ...opts, average: "weighted" }),
    perClass,
    confusion: confusionMatrix(yTrue, yPred, opts.labels),
    numExamples: yTrue.length,
  };
}

/** Perplexity from a mean negative log-likelihood per token in nats: exp(meanNll). */
export function perplexity(meanNll: number): number {
  if (typeof meanNll !== "number" || Number.isNaN(meanNll)) throw new Error(`perplexity: mean NLL must be a number, got ${meanNll}`);
  if (meanNll < 0) throw new Error(`perplexity: mean NLL must be >= 0 (it is a negative log-probability), got ${meanNll}`);
  return Math.exp(meanNll);
}

/** Perplexity from a summed NLL over `tokenCount` tokens: exp(nllSum / tokenCount). */
export function perplexityFromSum(nllSum: number, tokenCount: number): number {
  if (!(tokenCount > 0)) throw new Error(`perplexityFromSum: tokenCount must be > 0, got ${tokenCount}`);
  return perplexity(nllSum / tokenCount);
}

/** Token ids: plain arrays or typed arrays (onnxruntime returns int64 as BigInt64Array). */
export type TokenIds = ArrayLike<number> | BigInt64Array;

/** Options for `tokenAccuracy`. */
export interface TokenAccuracyOptions {
  /** Target value that marks a position to skip (padding, prompt tokens); default -100 as in Hugging Face. */
  ignoreIndex?: number;
}

/**
 * Fraction of scored positions where the predicted token equals the target token. Predictions and
 * targets must already be aligned (for a causal LM, position t of the logits predicts token t+1).
 */
export function tokenAccuracy(predicted: TokenIds, targets: TokenIds, opts: TokenAccuracyOptions = {}): number {
  if (predicted.length !== targets.length) {
    throw new Error(`tokenAccuracy: predicted has ${predicted.length} tokens but targets has ${targets.length}`);
  }
  const ignore = opts.ignoreIndex ?? -100;
  let scored = 0;
  let correct = 0;
  for (let i = 0; i < targets.length; i++) {
    const t = Number(targets[i]);
    if (t === ignore) continue;
    scored++;
    if (Number(predicted[i]) === t) correct++;
  }
  if (scored === 0) throw new Error(`tokenAccuracy: every target is ignoreIndex (${ignore}); nothing to score`);
  return correct / scored;
}

/** Index of the largest value in each row of a [rows, width] row-major array (first on ties). */
export function argmaxRows(values: ArrayLike<number>, width: number): Int32Array {
  if (!Number.isInteger(width) || width < 1) throw new Error(`argmaxRows: width must be a positive integer, got ${width}`);
  if (values.length % width !== 0) throw new Error(`argmaxRows: length ${values.length} is not a multiple of width ${width}`);
  const rows = values.length / width;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestValue = values[r * width];
    for (let j = 1; j < width; j++) {
      const v = values[r * width + j];
      if (v > bestValue) [best, bestValue] = [j, v];
    }
    out[r] = best;
  }
  return out;
}
