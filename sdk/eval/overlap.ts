/**
 * Reference-overlap metrics of generated text: corpus BLEU (NLTK's corpus_bleu), ROUGE-1/2/L F-measure and chrF
 * (sacreBLEU's CHRF). All take strings and cut them with `evalTokens` (BLEU, ROUGE) or into characters (chrF).
 */
import { evalTokens, ngramCounts, type TokenizeOptions } from "./text-units";

/** Hypotheses and, for each, one or more references. */
export interface OverlapInput extends TokenizeOptions {
  hypotheses: readonly string[];
  /** references[i] are the references of hypotheses[i]: one string or several. */
  references: readonly (string | readonly string[])[];
}

/** The references of each hypothesis as arrays, checked against the hypotheses. */
export function referenceLists(fn: string, input: { hypotheses: readonly string[]; references: readonly (string | readonly string[])[] }): string[][] {
  const { hypotheses, references } = input;
  if (!Array.isArray(hypotheses) || !Array.isArray(references)) throw new Error(`${fn}: hypotheses and references must be arrays`);
  if (hypotheses.length !== references.length) {
    throw new Error(`${fn}: ${hypotheses.length} hypotheses but ${references.length} reference lists; give one list (or string) per hypothesis`);
  }
  if (hypotheses.length === 0) throw new Error(`${fn}: no hypotheses to score`);
  return references.map((r, i) => {
    if (typeof hypotheses[i] !== "string") throw new Error(`${fn}: hypotheses[${i}] must be a string, got ${JSON.stringify(hypotheses[i])}`);
    const list = typeof r === "string" ? [r] : [...r];
    if (list.length === 0 || list.some((x) => typeof x !== "string"))
      throw new Error(`${fn}: references[${i}] must be a string or a non-empty array of strings`);
    return list;
  });
}

/** Options of `bleu`. */
export interface BleuOptions extends OverlapInput {
  /** Weights of the 1..N-gram log precisions; default [0.25, 0.25, 0.25, 0.25] (BLEU-4). */
  weights?: readonly number[];
}

/** Python's sys.float_info.min: NLTK's method0 puts it in place of a zero precision. */
const FLOAT_MIN = 2.2250738585072014e-308;

/**
 * Corpus BLEU in [0, 1], exactly NLTK's `corpus_bleu(list_of_references, hypotheses)` with default weights and no
 * smoothing: clipped n-gram counts summed over the corpus, brevity penalty from the summed closest reference lengths
 * (ties to the shorter), 0 when no unigram matches, and a zero higher-order precision counted as 2.2e-308.
 */
export function bleu(input: BleuOptions): number {
  const refs = referenceLists("bleu", input);
  const weights = input.weights ?? [0.25, 0.25, 0.25, 0.25];
  if (weights.length === 0 || weights.some((w) => !(w >= 0))) throw new Error("bleu: weights must be a non-empty list of numbers >= 0");
  const maxN = weights.length;
  const num = new Array<number>(maxN + 1).fill(0);
  const den = new Array<number>(maxN + 1).fill(0);
  let hypLen = 0;
  let refLen = 0;
  input.hypotheses.forEach((h, i) => {
    const hyp = evalTokens(h, input);
    const rs = refs[i].map((r) => evalTokens(r, input));
    for (let n = 1; n <= maxN; n++) {
      const counts = ngramCounts(hyp, n);
      const maxRef = new Map<string, number>();
      for (const r of rs) for (const [g, c] of ngramCounts(r, n)) if (counts.has(g)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      let clipped = 0;
      let total = 0;
      for (const [g, c] of counts) {
        clipped += Math.min(c, maxRef.get(g) ?? 0);
        total += c;
      }
      num[n] += clipped;
      den[n] += Math.max(1, total);
    }
    hypLen += hyp.length;
    // NLTK's closest_ref_length: the reference length nearest the hypothesis length, the shorter on a tie.
    let best = rs[0].length;
    for (const r of rs) {
      const d = Math.abs(r.length - hyp.length);
      const bd = Math.abs(best - hyp.length);
      if (d < bd || (d === bd && r.length < best)) best = r.length;
    }
    refLen += best;
  });
  if (num[1] === 0) return 0;
  const bp = hypLen > refLen ? 1 : hypLen === 0 ? 0 : Math.exp(1 - refLen / hypLen);
  let s = 0;
  for (let n = 1; n <= maxN; n++) s += weights[n - 1] * Math.log(num[n] === 0 ? FLOAT_MIN : num[n] / den[n]);
  return bp * Math.exp(s);
}

/** ROUGE F-measures, each the mean over hypotheses of the best score against that hypothesis's references. */
export interface RougeScores {
  rouge1: number;
  rouge2: number;
  rougeL: number;
}

function fMeasure(overlap: number, hypCount: number, refCount: number): number {
  const p = hypCount === 0 ? 0 : overlap / hypCount;
  const r = refCount === 0 ? 0 : overlap / refCount;
  return p + r === 0 ? 0 : (2 * p * r) / (p + r);
}

function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const cur = new Array<number>(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    prev = cur;
  }
  return prev[b.length];
}

/** ROUGE-N F of one pair (clipped n-gram overlap, as Google's rouge-score). */
export function rougeN(hyp: readonly string[], ref: readonly string[], n: number): number {
  const h = ngramCounts(hyp, n);
  const r = ngramCounts(ref, n);
  let overlap = 0;
  for (const [g, c] of h) overlap += Math.min(c, r.get(g) ?? 0);
  return fMeasure(overlap, Math.max(0, hyp.length - n + 1), Math.max(0, ref.length - n + 1));
}

/** ROUGE-L F of one pair (longest common subsequence of tokens, beta = 1, as rouge-score's rougeL). */
export function rougeL(hyp: readonly string[], ref: readonly string[]): number {
  return fMeasure(lcsLength(hyp, ref), hyp.length, ref.length);
}

/** Per-hypothesis ROUGE-1/2/L F (best over its references). */
export function rougePerSample(input: OverlapInput): RougeScores[] {
  const refs = referenceLists("rouge", input);
  return input.hypotheses.map((h, i) => {
    const hyp = evalTokens(h, input);
    const best: RougeScores = { rouge1: 0, rouge2: 0, rougeL: 0 };
    for (const r of refs[i]) {
      const ref = evalTokens(r, input);
      best.rouge1 = Math.max(best.rouge1, rougeN(hyp, ref, 1));
      best.rouge2 = Math.max(best.rouge2, rougeN(hyp, ref, 2));
      best.rougeL = Math.max(best.rougeL, rougeL(hyp, ref));
    }
    return best;
  });
}

/** ROUGE-1, ROUGE-2 and ROUGE-L F-measure in [0, 1], averaged over hypotheses. */
export function rouge(input: OverlapInput): RougeScores {
  const per = rougePerSample(input);
  const mean = (k: keyof RougeScores) => per.reduce((s, r) => s + r[k], 0) / per.length;
  return { rouge1: mean("rouge1"), rouge2: mean("rouge2"), rougeL: mean("rougeL") };
}

/** Options of `chrf` (sacreBLEU's CHRF arguments). */
export interface ChrfOptions {
  hypotheses: readonly string[];
  references: readonly (string | readonly string[])[];
  /** Character n-gram order; default 6. */
  charOrder?: number;
  /** Recall weight; default 2. */
  beta?: number;
  /** Lower-case first; default false. */
  lowercase?: boolean;
}

function charNgramCounts(text: string, maxN: number): Map<string, number>[] {
  const chars = Array.from(text.split(/\s+/u).join("")); // code points, whitespace removed (sacreBLEU's whitespace=False)
  return Array.from({ length: maxN }, (_, k) => {
    const m = new Map<string, number>();
    for (let i = 0; i + k + 1 <= chars.length; i++) {
      const g = chars.slice(i, i + k + 1).join("");
      m.set(g, (m.get(g) ?? 0) + 1);
    }
    return m;
  });
}

function chrfFromStats(stats: readonly number[], order: number, beta: number): number {
  // sacreBLEU 2.x CHRF._compute_f_score without eps smoothing: average precision and recall over the effective orders.
  const factor = beta * beta;
  let avgP = 0;
  let avgR = 0;
  let effective = 0;
  for (let i = 0; i < order; i++) {
    const [nHyp, nRef, nMatch] = stats.slice(3 * i, 3 * i + 3);
    if (nHyp > 0 && nRef > 0) {
      avgP += nMatch / nHyp;
      avgR += nMatch / nRef;
      effective++;
    }
  }
  if (effective === 0) return 0;
  avgP /= effective;
  avgR /= effective;
  return avgP + avgR === 0 ? 0 : ((1 + factor) * avgP * avgR) / (factor * avgP + avgR);
}

/**
 * Corpus chrF in [0, 1] (sacreBLEU's CHRF score divided by 100): character n-grams of order 1..6 with whitespace
 * removed, word order 0, beta 2, statistics summed over the corpus (each hypothesis paired with its best-scoring
 * reference), precision and recall averaged over the orders with any n-grams, then F-beta.
 */
export function chrf(input: ChrfOptions): number {
  const refs = referenceLists("chrf", input);
  const order = input.charOrder ?? 6;
  const beta = input.beta ?? 2;
  if (!Number.isInteger(order) || order < 1) throw new Error(`chrf: charOrder must be a positive integer, got ${order}`);
  if (!(beta > 0)) throw new Error(`chrf: beta must be > 0, got ${beta}`);
  const prep = (s: string) => (input.lowercase ? s.toLowerCase() : s);
  const total = new Array<number>(3 * order).fill(0);
  input.hypotheses.forEach((h, i) => {
    const hyp = charNgramCounts(prep(h), order);
    let best: number[] = [];
    let bestF = -1;
    for (const r of refs[i]) {
      const ref = charNgramCounts(prep(r), order);
      const stats: number[] = [];
      for (let k = 0; k < order; k++) {
        let match = 0;
        let hypCount = 0;
        for (const [g, c] of hyp[k]) {
          hypCount += c;
          match += Math.min(c, ref[k].get(g) ?? 0);
        }
        let refCount = 0;
        for (const c of ref[k].values()) refCount += c;
        stats.push(ref[k].size > 0 ? hypCount : 0, refCount, match);
      }
      const f = chrfFromStats(stats, order, beta);
      if (f > bestF) [best, bestF] = [stats, f];
    }
    best.forEach((v, j) => (total[j] += v));
  });
  return chrfFromStats(total, order, beta);
}
