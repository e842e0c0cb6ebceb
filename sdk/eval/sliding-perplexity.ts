/**
 * Perplexity of texts longer than the model's context, by a sliding window as in Hugging Face's perplexity guide:
 * windows of `maxLength` tokens start every `stride` tokens; each window scores only the tokens no earlier window
 * scored (the others are labelled -100 and serve as context). Every token after the first is scored exactly once,
 * with at least maxLength - stride tokens of context once the text is longer than a window. stride = maxLength is
 * plain chunking; a smaller stride gives each token more context at more compute.
 *
 * One difference from the guide's code: it counts `trg_len - 1` tokens per window (its note: the model shifts the
 * labels), which under-counts every window after the first by one; here the count is the number of tokens actually
 * scored, so with one window the result equals `tunelab eval`'s perplexity exactly.
 */
import { IGNORE_INDEX, type TokenizedExample } from "../data/tokenize";
import { evaluateModel, type EvalTarget } from "./evaluate";

/** Window settings. */
export interface SlidingWindowOptions {
  /** Tokens per window; default the model's max_position_embeddings. */
  maxLength?: number;
  /** Tokens the window moves each time (1..maxLength); default maxLength / 2 rounded down (at least 1). */
  stride?: number;
}

/** The windows of one token sequence as examples whose labels mark only the tokens each window scores. */
export function slidingWindows(ids: readonly number[], maxLength: number, stride: number, id = "text"): TokenizedExample[] {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`sliding window: maxLength must be an integer >= 2, got ${maxLength}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > maxLength)
    throw new Error(`sliding window: stride must be an integer in 1..maxLength (${maxLength}), got ${stride}`);
  const out: TokenizedExample[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < ids.length; begin += stride) {
    const end = Math.min(begin + maxLength, ids.length);
    const trgLen = end - prevEnd;
    const inputIds = ids.slice(begin, end);
    const labels = inputIds.map((t, i) => (i < inputIds.length - trgLen ? IGNORE_INDEX : t));
    out.push({ id: `${id}@${begin}`, inputIds, labels });
    prevEnd = end;
    if (end === ids.length) break;
  }
  return out;
}

/** Tokens a window's labels make the causal LM loss score (every label after the first position that is not -100). */
export function scoredTokens(example: TokenizedExample): number {
  return (example.labels ?? example.inputIds).slice(1).filter((t) => t !== IGNORE_INDEX).length;
}

/** Sliding-window perplexity of a corpus. */
export interface SlidingPerplexity {
  /** Mean NLL per scored token (nats). */
  loss: number;
  perplexity: number;
  /** Tokens scored (the sum over texts of length - 1). */
  tokens: number;
  windows: number;
  maxLength: number;
  stride: number;
}

/** Perplexity of token sequences (e.g. tokenizer.encode of long texts) with a sliding window over each. */
export async function slidingWindowPerplexity(
  target: Omit<EvalTarget, "stage">,
  sequences: readonly (readonly number[])[],
  opts: SlidingWindowOptions & { batchSize?: number } = {},
): Promise<SlidingPerplexity> {
  const maxLength = opts.maxLength ?? target.model.config.maxPositionEmbeddings;
  const stride = opts.stride ?? Math.max(1, Math.floor(maxLength / 2));
  if (maxLength > target.model.config.maxPositionEmbeddings) {
    throw new Error(`sliding window: maxLength ${maxLength} exceeds the model's max_position_embeddings (${target.model.config.maxPositionEmbeddings})`);
  }
  const windows = sequences.flatMap((ids, i) => {
    if (ids.length < 2) throw new Error(`sliding window: text ${i} has ${ids.length} token(s); perplexity needs at least 2`);
    return slidingWindows(ids, maxLength, stride, `text${i}`);
  });
  const tokens = windows.reduce((n, w) => n + scoredTokens(w), 0);
  const e = await evaluateModel({ ...target, stage: "pt" }, windows, opts.batchSize ?? 8);
  return { loss: e.loss, perplexity: Math.exp(e.loss), tokens, windows: windows.length, maxLength, stride };
}
