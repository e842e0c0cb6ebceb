/** Turning rows into token ids and training labels through a minimal tokenizer interface. */
import type { ChatMessage, ChatRow, ClassificationRow, PretrainRow, Row } from "./types";
import type { Dataset } from "./dataset";
import { compareStrings } from "./dataset";
import { DataReport, type DataIssue } from "./report";

/** Label value that the loss ignores (PyTorch/Hugging Face convention). */
export const IGNORE_INDEX = -100;

/** Options passed to a chat template (Hugging Face's add_generation_prompt, enable_thinking, ...). */
export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  enableThinking?: boolean;
  [option: string]: unknown;
}

/** What the data layer needs from a tokenizer; sdk/io's Hugging Face tokenizer satisfies it structurally. */
export interface TextTokenizer {
  /** Token ids of `text`; `addSpecialTokens` adds BOS-style tokens the tokenizer normally adds (default true). */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  eosTokenId: number;
  padTokenId: number;
  /** Renders messages with the model's chat template; absent when the tokenizer has no template. */
  applyChatTemplate?(messages: readonly ChatMessage[], opts?: ChatTemplateOptions): string;
  /** False when the method exists but the tokenizer has no template to render with. */
  readonly hasChatTemplate?: boolean;
}

/** One tokenised example. LM examples carry `labels` (same length, -100 where no loss); classification ones `classLabel`. */
export interface TokenizedExample {
  readonly id: string;
  readonly inputIds: readonly number[];
  readonly labels?: readonly number[];
  readonly classLabel?: number;
  /** Lengths of the examples packed into this one, in order (only on packed examples). */
  readonly segmentLengths?: readonly number[];
}

/** Classification labels and their indices, built from train in sorted order so indices never depend on row order. */
export class LabelVocab {
  readonly labels: readonly string[];
  private readonly index: ReadonlyMap<string, number>;

  constructor(labels: readonly string[]) {
    const sorted = [...new Set(labels)].sort(compareStrings);
    this.labels = Object.freeze(sorted);
    this.index = new Map(sorted.map((l, k) => [l, k]));
  }

  /** The vocabulary of a (train) dataset's labels. */
  static fromDataset(train: Dataset<Row>): LabelVocab {
    return new LabelVocab(train.labels());
  }

  /** Number of classes. */
  get size(): number {
    return this.labels.length;
  }

  /** Index of a label; an unknown label is an error naming it. */
  indexOf(label: string): number {
    const k = this.index.get(label);
    if (k === undefined) throw new Error(`label "${label}" is not in the label vocabulary (${this.labels.join(", ")})`);
    return k;
  }

  /** The label at an index. */
  labelOf(index: number): string {
    const l = this.labels[index];
    if (l === undefined) throw new Error(`class index ${index} is outside the label vocabulary of ${this.size}`);
    return l;
  }
}

/** Options for pre-training rows. */
export interface PretrainEncodeOptions {
  /** Truncate to this many tokens (LLaMA-Factory's cutoff_len); omit or 0 for no truncation. */
  cutoffLen?: number;
  /** Add the tokenizer's special tokens (BOS) (default true). */
  addSpecialTokens?: boolean;
}

/** Pre-training text -> ids + EOS, labels equal to the ids. */
export function encodePretrain(row: PretrainRow, tok: TextTokenizer, opts: PretrainEncodeOptions = {}): TokenizedExample {
  const ids = [...tok.encode(row.text, { addSpecialTokens: opts.addSpecialTokens ?? true }), tok.eosTokenId];
  const cut = truncate(ids, opts.cutoffLen);
  return { id: row.provenance.id, inputIds: cut, labels: cut.slice() };
}

/** Options for classification rows. */
export interface ClassificationEncodeOptions {
  cutoffLen?: number;
  /** Append EOS after the text, giving last-token pooling a fixed final token (default false). */
  appendEos?: boolean;
}

/** Classification text -> ids + the label's index in `vocab`. */
export function encodeClassification(
  row: ClassificationRow,
  tok: TextTokenizer,
  vocab: LabelVocab,
  opts: ClassificationEncodeOptions = {},
): TokenizedExample {
  const ids = tok.encode(row.text, { addSpecialTokens: true });
  if (opts.appendEos) ids.push(tok.eosTokenId);
  return { id: row.provenance.id, inputIds: truncate(ids, opts.cutoffLen), classLabel: vocab.indexOf(row.label) };
}

/** Options for chat (SFT) rows. */
export interface ChatEncodeOptions {
  cutoffLen?: number;
  /** Also train on system/user tokens (LLaMA-Factory's train_on_prompt). Default false. */
  trainOnPrompt?: boolean;
  /** Passed to the chat template on every render (e.g. enableThinking). */
  templateOptions?: ChatTemplateOptions;
  /** Append a trained EOS when the last assistant turn's rendering does not contain one (default true), so the model learns to stop. */
  appendEos?: boolean;
  /**
   * Templates that re-render earlier turns differently once later turns exist (R1-style ones drop old <think>
   * blocks) are not prefix-stable: "lastTurn" (default) then trains only the final assistant turn; "error" stops.
   */
  templateMismatch?: "lastTurn" | "error";
}

/** A rendered piece of a conversation and whether the loss applies to it. */
interface Segment {
  text: string;
  train: boolean;
}

/**
 * Chat row -> ids and labels: renders the chat template incrementally (the prefix up to each message, diffed
 * against the previous render) so that exactly the assistant tokens carry labels; all others are -100.
 */
export function encodeChat(row: ChatRow, tok: TextTokenizer, opts: ChatEncodeOptions = {}): TokenizedExample & { lastTurnOnly: boolean } {
  const render = chatRenderer(tok);
  const tOpts = opts.templateOptions ?? {};
  let segments = incrementalSegments(row.messages, render, tOpts);
  let lastTurnOnly = false;
  if (!segments) {
    if ((opts.templateMismatch ?? "lastTurn") === "error") {
      throw new Error(
        `${row.provenance.id}: the chat template renders earlier turns differently once later turns are added, so ` +
          `assistant spans cannot be found by prefix; use templateMismatch: "lastTurn" to train the final turn only`,
      );
    }
    segments = lastTurnSegments(row.messages, render, tOpts, row.provenance.id);
    lastTurnOnly = true;
  }
  const inputIds: number[] = [];
  const labels: number[] = [];
  let lastTrained: number[] = [];
  for (const s of segments) {
    if (s.text === "") continue;
    const ids = tok.encode(s.text, { addSpecialTokens: false });
    inputIds.push(...ids);
    labels.push(...(s.train || opts.trainOnPrompt ? ids : ids.map(() => IGNORE_INDEX)));
    if (s.train) lastTrained = ids;
  }
  if ((opts.appendEos ?? true) && !lastTrained.includes(tok.eosTokenId)) {
    inputIds.push(tok.eosTokenId);
    labels.push(tok.eosTokenId);
  }
  return {
    id: row.provenance.id,
    inputIds: truncate(inputIds, opts.cutoffLen),
    labels: truncate(labels, opts.cutoffLen),
    lastTurnOnly,
  };
}

type Render = (messages: readonly ChatMessage[], opts: ChatTemplateOptions) => string;

function chatRenderer(tok: TextTokenizer): Render {
  const apply = tok.applyChatTemplate;
  if (typeof apply !== "function" || tok.hasChatTemplate === false) {
    throw new Error(
      "this tokenizer has no chat template (tokenizer_config.json has no chat_template): chat rows need one; " +
        "set a template, or train these rows as plain text (stage pt)",
    );
  }
  return (messages, opts) => apply.call(tok, messages, opts);
}

/** Segments from rendering each prefix; undefined when a render does not extend the previous one. */
function incrementalSegments(messages: readonly ChatMessage[], render: Render, tOpts: ChatTemplateOptions): Segment[] | undefined {
  const segments: Segment[] = [];
  let prev = "";
  for (let i = 0; i < messages.length; i++) {
    const upTo = messages.slice(0, i + 1);
    const full = render(upTo, { ...tOpts, addGenerationPrompt: false });
    if (messages[i].role === "assistant") {
      const prompt = render(messages.slice(0, i), { ...tOpts, addGenerationPrompt: true });
      if (!prompt.startsWith(prev) || !full.startsWith(prompt)) return undefined;
      segments.push({ text: prompt.slice(prev.length), train: false }, { text: full.slice(prompt.length), train: true });
    } else {
      if (!full.startsWith(prev)) return undefined;
      segments.push({ text: full.slice(prev.length), train: false });
    }
    prev = full;
  }
  return segments;
}

/** Everything before the final assistant turn as prompt, that turn as the only trained span. */
function lastTurnSegments(messages: readonly ChatMessage[], render: Render, tOpts: ChatTemplateOptions, id: string): Segment[] {
  let last = messages.length - 1;
  while (last >= 0 && messages[last].role !== "assistant") last--;
  const prompt = render(messages.slice(0, last), { ...tOpts, addGenerationPrompt: true });
  const full = render(messages.slice(0, last + 1), { ...tOpts, addGenerationPrompt: false });
  // Templates such as DeepSeek-R1's end the generation prompt with "<think>\n" and drop reasoning from rendered
  // assistant turns, so the full render does not extend the prompt. Then the trained span is written the way the
  // model must generate it after that prompt (an empty think pair when the reply has no reasoning), so training
  // and chat() see the same text.
  const completion = full.startsWith(prompt) ? full.slice(prompt.length) : completionAfter(prompt, messages[last].content, id);
  const segs: Segment[] = [{ text: prompt, train: false }, { text: completion, train: true }];
  // Messages after the final assistant turn (rare: a trailing user turn) are context only.
  if (last < messages.length - 1) {
    const all = render(messages, { ...tOpts, addGenerationPrompt: false });
    if (all.startsWith(full)) segs.push({ text: all.slice(full.length), train: false });
  }
  return segs;
}

/** The reply as generated after `prompt`, for templates whose prompt opens a <think> block. */
function completionAfter(prompt: string, reply: string, id: string): string {
  if (!/<think>\s*$/.test(prompt)) {
    throw new Error(`${id}: the chat template's render of the conversation does not start with its render of the prompt; cannot find the assistant span`);
  }
  const body = reply.replace(/^\s*<think>\s*/, "");
  return body.includes("</think>") ? body : `\n</think>\n\n${body}`;
}

function truncate<T>(xs: T[], cutoffLen: number | undefined): T[] {
  if (cutoffLen === undefined || cutoffLen === 0) return xs;
  if (!Number.isInteger(cutoffLen) || cutoffLen < 0) throw new Error(`cutoffLen: expected a positive integer, got ${cutoffLen}`);
  return xs.length > cutoffLen ? xs.slice(0, cutoffLen) : xs;
}

/** Options of `tokenizeDataset`. */
export interface TokenizeOptions extends ChatEncodeOptions, PretrainEncodeOptions {
  /** Label vocabulary for classification rows (build it from train with LabelVocab.fromDataset). */
  labelVocab?: LabelVocab;
  /** Append EOS to classification texts (default false). */
  classificationEos?: boolean;
}

/** The examples of a dataset, with its report (SFT rows whose trained tokens were all cut off are dropped and counted). */
export interface TokenizedDataset {
  examples: TokenizedExample[];
  report: DataReport;
  /** Rows longer than cutoffLen (they were truncated). */
  truncated: number;
  /** Chat rows trained on their last assistant turn only (template not prefix-stable). */
  lastTurnOnly: number;
}

/** Tokenises every row by its kind (pretrain, classification, chat). */
export function tokenizeDataset(ds: Dataset<Row>, tok: TextTokenizer, opts: TokenizeOptions = {}): TokenizedDataset {
  const examples: TokenizedExample[] = [];
  const dropped: DataIssue[] = [];
  let truncated = 0;
  let lastTurnOnly = 0;
  const vocab = opts.labelVocab;
  const full = { ...opts, cutoffLen: undefined };
  for (const row of ds.rows) {
    let ex: TokenizedExample;
    let untruncatedLength: number;
    if (row.kind === "pretrain") {
      const whole = encodePretrain(row, tok, full);
      untruncatedLength = whole.inputIds.length;
      ex = cut(whole, opts.cutoffLen);
    } else if (row.kind === "classification") {
      if (!vocab) throw new Error("tokenizeDataset: classification rows need labelVocab (LabelVocab.fromDataset(train))");
      const whole = encodeClassification(row, tok, vocab, { appendEos: opts.classificationEos });
      untruncatedLength = whole.inputIds.length;
      ex = cut(whole, opts.cutoffLen);
    } else {
      const whole = encodeChat(row, tok, full);
      if (whole.lastTurnOnly) lastTurnOnly++;
      untruncatedLength = whole.inputIds.length;
      ex = cut({ id: whole.id, inputIds: whole.inputIds, labels: whole.labels }, opts.cutoffLen);
      if (!ex.labels!.some((l) => l !== IGNORE_INDEX)) {
        dropped.push({
          source: row.provenance.source,
          line: row.provenance.line,
          reason: "too-long",
          message: `no assistant token left after truncation to cutoffLen ${opts.cutoffLen} (the prompt alone is longer)`,
        });
        continue;
      }
    }
    if (untruncatedLength > ex.inputIds.length) truncated++;
    examples.push(ex);
  }
  return { examples, report: ds.report.withDropped(dropped), truncated, lastTurnOnly };
}

function cut(ex: TokenizedExample, cutoffLen: number | undefined): TokenizedExample {
  return {
    ...ex,
    inputIds: truncate(ex.inputIds.slice(), cutoffLen),
    ...(ex.labels ? { labels: truncate(ex.labels.slice(), cutoffLen) } : {}),
  };
}
