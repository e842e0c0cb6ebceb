/**
 * Classification with a chat model that has no classification head: label-word scoring. The prompt is rendered
 * with the chat template, and each label's tokens are scored as the reply's continuation; the prediction is the label
 * with the highest log-probability. `firstTokenOnly` restricts the next token to the labels' first tokens (one
 * forward pass per prompt), as "restricting the next token to the label words" usually means.
 */
import type { ChatMessage } from "../io/tokenizer";
import type { Generator, KvCache } from "../infer/generate";

/** Options of `labelWordPredict`. */
export interface LabelWordOptions {
  /** A named chat template when the tokenizer has several. */
  templateName?: string;
  /** `enable_thinking` for templates that read it (false keeps R1/Qwen3 templates from opening a think block). */
  enableThinking?: boolean;
  /** Score only each label's first token (default false: the whole label, summed log-probabilities). */
  firstTokenOnly?: boolean;
  /** "sum" (default) or "mean" (per label token) of the label's token log-probabilities. */
  reduce?: "sum" | "mean";
}

/** Label-word predictions. */
export interface LabelWordResult {
  /** The best label of each prompt. */
  predicted: string[];
  /** scores[i][j]: log-probability of labels[j] as the reply to prompt i (reduced as asked). */
  scores: number[][];
  labels: string[];
}

function logSoftmaxAt(logits: Float32Array, index: number): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return logits[index] - max - Math.log(sum);
}

/** Scores each label as the reply to each prompt (a user text or a conversation) and predicts the best. */
export async function labelWordPredict(
  generator: Generator,
  prompts: readonly (string | readonly ChatMessage[])[],
  labels: readonly string[],
  opts: LabelWordOptions = {},
): Promise<LabelWordResult> {
  if (labels.length < 2) throw new Error(`labelWordPredict: give at least two labels, got ${labels.length}`);
  if (new Set(labels).size !== labels.length) throw new Error("labelWordPredict: labels contain duplicates");
  const tok = generator.tokenizer;
  const labelIds = labels.map((l) => {
    const ids = tok.encode(l, { addSpecialTokens: false });
    if (ids.length === 0) throw new Error(`labelWordPredict: label ${JSON.stringify(l)} has no tokens`);
    return ids;
  });
  if (opts.firstTokenOnly) {
    const firsts = new Map<number, string>();
    labels.forEach((l, j) => {
      const other = firsts.get(labelIds[j][0]);
      if (other !== undefined)
        throw new Error(
          `labelWordPredict: labels ${JSON.stringify(other)} and ${JSON.stringify(l)} start with the same token; score whole labels (firstTokenOnly: false)`,
        );
      firsts.set(labelIds[j][0], l);
    });
  }
  const scores: number[][] = [];
  for (const p of prompts) {
    const messages: readonly ChatMessage[] = typeof p === "string" ? [{ role: "user", content: p }] : p;
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true, templateName: opts.templateName, enableThinking: opts.enableThinking });
    const ids = tok.encode(text, { addSpecialTokens: false });
    let row: number[];
    if (opts.firstTokenOnly) {
      const first = await generator.forward({ inputIds: [ids] });
      row = labelIds.map((lab) => logSoftmaxAt(first.logits[0], lab[0]));
      first.cache.dispose();
    } else {
      // One row per label, teacher-forced together: the prompt pass, then one pass per label token (a row past its
      // label's end repeats its last token; what it computes is never read).
      const first = await generator.forward({ inputIds: labelIds.map(() => ids) });
      const sums = labelIds.map((lab, j) => logSoftmaxAt(first.logits[j], lab[0]));
      let cache: KvCache = first.cache;
      const longest = Math.max(...labelIds.map((l) => l.length));
      for (let k = 1; k < longest; k++) {
        const step = await generator.forward({ inputIds: labelIds.map((lab) => [lab[Math.min(k, lab.length) - 1]]) }, cache);
        cache = step.cache;
        labelIds.forEach((lab, j) => {
          if (k < lab.length) sums[j] += logSoftmaxAt(step.logits[j], lab[k]);
        });
      }
      cache.dispose();
      row = sums.map((v, j) => (opts.reduce === "mean" ? v / labelIds[j].length : v));
    }
    scores.push(row);
  }
  const predicted = scores.map((row) => labels[row.indexOf(Math.max(...row))]);
  return { predicted, scores, labels: [...labels] };
}
