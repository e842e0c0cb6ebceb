/** Choosing the next token from logits with transformers' logits processors and sampling order. */
import { Rng } from "../util/random";

/**
 * transformers' RepetitionPenaltyLogitsProcessor, in place: for each distinct token in `tokens`, a positive
 * score is divided by `penalty` and a negative one multiplied by it.
 */
export function applyRepetitionPenalty(scores: Float32Array | Float64Array, tokens: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const t of new Set(tokens)) {
    const s = scores[t];
    scores[t] = s < 0 ? s * penalty : s / penalty;
  }
}

/** transformers' TopKLogitsWarper, in place: scores below the k-th largest become -Infinity (ties with it are kept). */
export function applyTopK(scores: Float32Array | Float64Array, k: number): void {
  if (k <= 0 || k >= scores.length) return;
  const sorted = Float64Array.from(scores).sort();
  const kth = sorted[sorted.length - k];
  for (let i = 0; i < scores.length; i++) if (scores[i] < kth) scores[i] = -Infinity;
}

/**
 * transformers' TopPLogitsWarper, in place: tokens sorted by ascending probability are removed while the
 * cumulative probability stays <= 1 - p; the most likely token is always kept.
 */
export function applyTopP(scores: Float32Array | Float64Array, p: number): void {
  if (p >= 1) return;
  const probs = softmax(scores);
  const order = Array.from({ length: scores.length }, (_, i) => i).filter((i) => probs[i] > 0);
  order.sort((a, b) => probs[a] - probs[b] || scores[a] - scores[b]);
  let cumulative = 0;
  for (let j = 0; j < order.length - 1; j++) {
    cumulative += probs[order[j]];
    if (cumulative > 1 - p) break;
    scores[order[j]] = -Infinity;
  }
  for (let i = 0; i < scores.length; i++) if (probs[i] === 0) scores[i] = -Infinity;
}

/** Softmax in float64 (-Infinity scores get probability 0). */
export function softmax(scores: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  const out = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += out[i] = Math.exp(scores[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** Index of the largest score (the first one on ties, as torch.argmax). */
export function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/** The decoding settings of one generate() call, after defaults. */
export interface SamplingSettings {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
}

/**
 * Picks the next token from one row of logits: repetition penalty over `seen` first, then (when sampling)
 * temperature, top-k, top-p and a draw from the softmax, in transformers' order; greedy takes the argmax.
 */
export function selectToken(logits: ArrayLike<number>, seen: Iterable<number>, s: SamplingSettings, rng: Rng): number {
  const scores = Float64Array.from(logits);
  applyRepetitionPenalty(scores, seen, s.repetitionPenalty);
  if (!s.doSample) return argmax(scores);
  if (s.temperature !== 1) for (let i = 0; i < scores.length; i++) scores[i] /= s.temperature;
  applyTopK(scores, s.topK);
  applyTopP(scores, s.topP);
  const probs = softmax(scores);
  const u = rng.next();
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cumulative += probs[i];
    last = i;
    if (u < cumulative) return i;
  }
  return last; // u beyond a cumulative sum that rounded below 1
}
