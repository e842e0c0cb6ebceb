/**
 * Chat through the model's own chat template, with DeepSeek-R1-style `<think>…</think>` reasoning returned
 * apart from the answer. R1 templates end the generation prompt with `<think>\n`, so a completion may carry
 * only the closing tag; the prompt tells which case applies.
 */
import type { ChatMessage, Tokenizer } from "../io/tokenizer";
import type { FinishReason, GenerateOptions, Generator } from "./generate";

/** The tags that delimit reasoning in DeepSeek-R1 and Qwen3 outputs. */
export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";

/** Which part of the reply a streamed piece of text belongs to. */
export type ReplyPart = "reasoning" | "answer";

/** Options of `chat`: generation options plus the template's switches and a text stream. */
export interface ChatOptions extends Omit<GenerateOptions, "onToken"> {
  /** `enable_thinking` for templates that read it (Qwen3); left undefined when not given. */
  enableThinking?: boolean;
  /** Tool schemas for templates that support them. */
  tools?: unknown[];
  /** A named chat template when the tokenizer has several. */
  templateName?: string;
  /**
   * Receives the reply as it is generated, as text pieces (never a partial UTF-8 character nor half a think
   * tag); `part` says whether the piece is reasoning (the tags count as reasoning) or answer.
   */
  onToken?: (textDelta: string, part: ReplyPart) => void;
}

/** A chat reply. */
export interface ChatResult {
  /** The rendered prompt the model saw. */
  prompt: string;
  /** The whole completion as generated (tags included, special tokens and stop strings left out). */
  text: string;
  /** What the model thought (between the think tags), trimmed; "" when it did not. */
  reasoning: string;
  /** The reply after the reasoning, trimmed. */
  answer: string;
  /** The completion's token ids (without the end-of-sequence id). */
  tokens: number[];
  finishReason: FinishReason;
}

/** Whether a rendered prompt leaves a `<think>` block open, so the completion starts inside the reasoning. */
export function promptOpensThinking(prompt: string): boolean {
  const open = prompt.lastIndexOf(THINK_OPEN);
  return open >= 0 && prompt.indexOf(THINK_CLOSE, open) < 0;
}

/**
 * Splits a completion into reasoning and answer. `<think>x</think>y` gives x and y; `x</think>y` (the prompt
 * opened the block) also gives x and y; with no closing tag the text is all reasoning when a block is open
 * (the reply was cut short), else all answer.
 */
export function splitReasoning(text: string, opensInPrompt = false): { reasoning: string; answer: string } {
  const open = text.indexOf(THINK_OPEN);
  const close = text.indexOf(THINK_CLOSE);
  if (open >= 0 && (close < 0 || open < close)) {
    const before = text.slice(0, open);
    if (close < 0) return { reasoning: text.slice(open + THINK_OPEN.length).trim(), answer: before.trim() };
    return { reasoning: text.slice(open + THINK_OPEN.length, close).trim(), answer: (before + text.slice(close + THINK_CLOSE.length)).trim() };
  }
  if (close >= 0) return { reasoning: text.slice(0, close).trim(), answer: text.slice(close + THINK_CLOSE.length).trim() };
  return opensInPrompt ? { reasoning: text.trim(), answer: "" } : { reasoning: "", answer: text.trim() };
}

/** Length of the longest tail of `text` that is a proper prefix of a think tag. */
function partialTagLength(text: string): number {
  for (let n = THINK_CLOSE.length - 1; n > 0; n--) {
    const tail = text.slice(-n);
    if (THINK_OPEN.startsWith(tail) || THINK_CLOSE.startsWith(tail)) return n;
  }
  return 0;
}

/**
 * Turns generated token ids into text pieces for a live display: never a partial UTF-8 character, never half a
 * think tag, each piece marked as reasoning (up to and including the closing tag) or answer.
 */
export class ReplyStream {
  private readonly tokens: number[] = [];
  private emitted = "";

  constructor(
    private readonly tokenizer: Tokenizer,
    /** Whether the prompt left a think block open (see promptOpensThinking). */
    private readonly opensInPrompt: boolean,
    private readonly onText: (textDelta: string, part: ReplyPart) => void,
  ) {}

  /** Adds one generated token; emits whatever text became safe to show. */
  push(token: number): void {
    this.tokens.push(token);
    const text = this.tokenizer.decode(this.tokens, { skipSpecialTokens: true });
    if (text.endsWith("\uFFFD")) return; // a byte-level token may end inside a UTF-8 character
    this.emit(text, text.length - partialTagLength(text));
  }

  /** Emits the rest at the end of generation. */
  finish(): void {
    const text = this.tokenizer.decode(this.tokens, { skipSpecialTokens: true });
    this.emit(text, text.length);
  }

  private emit(text: string, upTo: number): void {
    if (upTo <= this.emitted.length || !text.startsWith(this.emitted)) return;
    const shown = text.slice(0, upTo);
    // The reasoning span of the text so far, as splitReasoning sees it; the rest is answer.
    const close = shown.indexOf(THINK_CLOSE);
    let open = this.opensInPrompt ? 0 : shown.indexOf(THINK_OPEN);
    if (close >= 0 && (open < 0 || open > close)) open = 0;
    const [start, end] = open < 0 ? [upTo, upTo] : [open, close >= 0 ? close + THINK_CLOSE.length : upTo];
    const from = this.emitted.length;
    this.emitted = shown;
    const cuts = [from, ...[start, end].filter((c) => c > from && c < upTo), upTo];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const piece = shown.slice(cuts[i], cuts[i + 1]);
      if (piece) this.onText(piece, cuts[i] >= start && cuts[i] < end ? "reasoning" : "answer");
    }
  }
}

/** Runs one chat turn: renders `messages` with the generation prompt, generates, and splits the reply. */
export async function chat(generator: Generator, messages: readonly ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
  const { enableThinking, tools, templateName, onToken, ...generateOptions } = opts;
  const tokenizer = generator.tokenizer;
  const prompt = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true, enableThinking, tools, templateName });
  const ids = tokenizer.encode(prompt, { addSpecialTokens: false }); // the template writes its own special tokens
  const opened = promptOpensThinking(prompt);

  const stream = onToken ? new ReplyStream(tokenizer, opened, onToken) : null;
  const result = await generator.generate(ids, { ...generateOptions, onToken: stream ? (token) => stream.push(token) : undefined });
  stream?.finish();
  let text = result.text;
  for (const stop of opts.stopStrings ?? []) {
    const at = text.indexOf(stop);
    if (at >= 0) text = text.slice(0, at);
  }
  return { prompt, text, ...splitReasoning(text, opened), tokens: result.tokens, finishReason: result.finishReason };
}
