/**
 * Answer-level generation metrics: exact match, distinct-n, repetition rate, stop rate, and the reasoning block of
 * R1-style outputs (`<think>…</think>` then the answer), so answer metrics can score the text after the reasoning.
 */
import { splitReasoning, THINK_CLOSE, THINK_OPEN } from "../infer/chat";
import { evalTokens, ngrams, type TokenizeOptions } from "./text-units";

/** Options of `exactMatch`. */
export interface ExactMatchOptions {
  /** Lower-case both sides (default false). */
  lowercase?: boolean;
  /** Remove punctuation and symbols (Unicode P and S classes) before comparing (default false). */
  ignorePunctuation?: boolean;
}

/** Normalises a text as exactMatch compares it: NFKC, whitespace runs to one space, trimmed; then the options. */
export function normalizeAnswer(text: string, opts: ExactMatchOptions = {}): string {
  let t = text.normalize("NFKC");
  if (opts.lowercase) t = t.toLowerCase();
  if (opts.ignorePunctuation) t = t.replace(/[\p{P}\p{S}]/gu, " ");
  return t.replace(/\s+/gu, " ").trim();
}

/** 1 when the prediction equals any reference after `normalizeAnswer`, else 0. */
export function exactMatchOne(prediction: string, references: string | readonly string[], opts: ExactMatchOptions = {}): number {
  const p = normalizeAnswer(prediction, opts);
  return (typeof references === "string" ? [references] : references).some((r) => normalizeAnswer(r, opts) === p) ? 1 : 0;
}

/** Share of predictions that exactly match one of their references (see `normalizeAnswer`). */
export function exactMatch(predictions: readonly string[], references: readonly (string | readonly string[])[], opts: ExactMatchOptions = {}): number {
  if (predictions.length !== references.length) throw new Error(`exactMatch: ${predictions.length} predictions but ${references.length} references`);
  if (predictions.length === 0) throw new Error("exactMatch: no predictions");
  return predictions.reduce((s, p, i) => s + exactMatchOne(p, references[i], opts), 0) / predictions.length;
}

function checkN(fn: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${fn}: n must be a positive integer, got ${n}`);
}

/** Distinct-n (Li et al. 2016): distinct n-grams over all n-grams, pooled across the texts; 0 when there are none. */
export function distinctN(texts: readonly string[], n: number, opts: TokenizeOptions = {}): number {
  checkN("distinctN", n);
  const seen = new Set<string>();
  let total = 0;
  for (const t of texts) {
    for (const g of ngrams(evalTokens(t, opts), n)) {
      seen.add(g);
      total++;
    }
  }
  return total === 0 ? 0 : seen.size / total;
}

/** Repetition of one text: the share of its n-grams that repeat an earlier n-gram of the same text (0 when it has none). */
export function repetitionOne(text: string, n: number, opts: TokenizeOptions = {}): number {
  checkN("repetition", n);
  const gs = ngrams(evalTokens(text, opts), n);
  return gs.length === 0 ? 0 : 1 - new Set(gs).size / gs.length;
}

/**
 * Repetition rate: mean over texts of `repetitionOne` (seq-rep-n of Welleck et al. 2019), default n = 4; a
 * distill that loops ("我们再检查一下。我们再检查一下。…") scores near 1, varied text near 0.
 */
export function repetitionRate(texts: readonly string[], n = 4, opts: TokenizeOptions = {}): number {
  if (texts.length === 0) throw new Error("repetitionRate: no texts");
  return texts.reduce((s, t) => s + repetitionOne(t, n, opts), 0) / texts.length;
}

/** Why a generation ended, as the Generator reports it. */
export type StopReason = "stop" | "length";

/** Stop rate: share of generations that ended at an end-of-sequence id or stop string ("stop") before max_new_tokens. */
export function stopRate(finishReasons: readonly StopReason[]): number {
  if (finishReasons.length === 0) throw new Error("stopRate: no finish reasons");
  for (const [i, r] of finishReasons.entries())
    if (r !== "stop" && r !== "length") throw new Error(`stopRate: finishReasons[${i}] must be "stop" or "length", got ${JSON.stringify(r)}`);
  return finishReasons.filter((r) => r === "stop").length / finishReasons.length;
}

/** A generated text split into its reasoning and its answer. */
export interface ThinkSplit {
  /** Whether the text has a `<think>` or `</think>` tag at all. */
  hasThink: boolean;
  /** Whether the reasoning is closed by `</think>`. */
  closed: boolean;
  /** The text inside the reasoning block (trimmed). */
  reasoning: string;
  /** What answer metrics score: the text after `</think>`; "" when a block was opened and never closed; the whole text when there are no tags. */
  answer: string;
}

/**
 * Splits an R1-style output with the chat layer's rule (`splitReasoning`). The chat templates of the R1 distills end
 * the prompt with `<think>\n`, so an output often holds only the closing tag: "reasoning…</think>\n\nanswer" counts as
 * closed too; `opensInPrompt` says the prompt opened a block, so a tag-less output is all (unfinished) reasoning.
 */
export function splitThink(text: string, opensInPrompt = false): ThinkSplit {
  const closed = text.includes(THINK_CLOSE);
  const hasThink = closed || text.includes(THINK_OPEN) || opensInPrompt;
  const open = text.indexOf(THINK_OPEN);
  // An opened, unclosed block: the reply was cut short inside its reasoning, so there is no answer to score.
  if (!closed && (open >= 0 || opensInPrompt)) return { hasThink, closed, reasoning: text.slice(open >= 0 ? open + THINK_OPEN.length : 0).trim(), answer: "" };
  return { hasThink, closed, ...splitReasoning(text, opensInPrompt) };
}

/** Share of outputs with a closed reasoning block (`</think>` present). */
export function thinkClosedRate(texts: readonly string[]): number {
  if (texts.length === 0) throw new Error("thinkClosedRate: no texts");
  return texts.filter((t) => splitThink(t).closed).length / texts.length;
}
