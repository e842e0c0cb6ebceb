/**
 * Answers for evaluation in batches: each prompt rendered with the model's chat template, prompts of similar length
 * batched together, every batch one left-padded, KV-cached Generator.generate call in which each row stops at its
 * own end-of-sequence id. 200 prompts at batch size 16 are 13 generate calls, not 200.
 */
import type { ChatMessage } from "../io/tokenizer";
import type { ChatRow, ClassificationRow, Row } from "../data/types";
import { promptOpensThinking, THINK_OPEN } from "../infer/chat";
import type { GenerateOptions, Generator } from "../infer/generate";
import type { GenerationSample } from "./generation-metric";

/** Options of `generateAnswers`. */
export interface GenerateAnswersOptions extends Omit<GenerateOptions, "onToken"> {
  /** Prompts per generate call (default 16). */
  batchSize?: number;
  /** A named chat template when the tokenizer has several. */
  templateName?: string;
  /** `enable_thinking` for templates that read it. */
  enableThinking?: boolean;
  /** Called after each batch with the number of prompts done. */
  onProgress?: (done: number, total: number) => void;
}

/** One prompt to answer: the conversation so far, and the reference reply if known. */
export interface EvalPrompt {
  messages: readonly ChatMessage[];
  reference?: string;
}

/**
 * Evaluation prompts of data rows: a chat row's messages before its last assistant reply (the reference); a
 * classification row's text as a user message, its label the reference.
 */
export function evalPrompts(rows: readonly Row[]): EvalPrompt[] {
  return rows.map((row) => {
    if (row.kind === "chat") return chatPrompt(row);
    if (row.kind === "classification") return classificationPrompt(row);
    throw new Error(`${row.provenance.source}:${row.provenance.line}: generation metrics need chat or classification rows, got a {"text"} row`);
  });
}

function chatPrompt(row: ChatRow): EvalPrompt {
  const last = row.messages.length - 1;
  if (last < 1 || row.messages[last].role !== "assistant") {
    throw new Error(`${row.provenance.source}:${row.provenance.line}: the conversation must end with an assistant reply (the reference answer)`);
  }
  return { messages: row.messages.slice(0, last), reference: row.messages[last].content };
}

function classificationPrompt(row: ClassificationRow): EvalPrompt {
  return { messages: [{ role: "user", content: row.text }], reference: row.label };
}

/**
 * Generates an answer to every prompt, in batches of similar prompt length, and returns them as samples in input
 * order. When the template opens a `<think>` block in the prompt, the prediction starts with "<think>" so that it
 * reads as the model's whole reasoning-then-answer output.
 */
export async function generateAnswers(generator: Generator, prompts: readonly EvalPrompt[], opts: GenerateAnswersOptions = {}): Promise<GenerationSample[]> {
  const { batchSize = 16, templateName, enableThinking, onProgress, ...gen } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`generateAnswers: batchSize must be a positive integer, got ${batchSize}`);
  const tok = generator.tokenizer;
  const rendered = prompts.map((p) => {
    const text = tok.applyChatTemplate(p.messages, { addGenerationPrompt: true, templateName, enableThinking });
    return { text, ids: tok.encode(text, { addSpecialTokens: false }), opens: promptOpensThinking(text) };
  });
  // Similar lengths together, so left padding wastes little; results go back to input order.
  const order = rendered.map((_, i) => i).sort((a, b) => rendered[a].ids.length - rendered[b].ids.length || a - b);
  const out: GenerationSample[] = new Array(prompts.length);
  for (let k = 0; k < order.length; k += batchSize) {
    const idx = order.slice(k, k + batchSize);
    const results = await generator.generate(
      idx.map((i) => rendered[i].ids),
      gen,
    );
    results.forEach((r, j) => {
      const i = idx[j];
      let text = r.text;
      for (const stop of gen.stopStrings ?? []) {
        const at = text.indexOf(stop);
        if (at >= 0) text = text.slice(0, at);
      }
      const last = prompts[i].messages[prompts[i].messages.length - 1];
      out[i] = {
        prompt: last?.content ?? "",
        prediction: (rendered[i].opens ? THINK_OPEN : "") + text,
        ...(prompts[i].reference !== undefined ? { reference: prompts[i].reference } : {}),
        finishReason: r.finishReason,
      };
    });
    onProgress?.(Math.min(k + batchSize, order.length), order.length);
  }
  return out;
}
