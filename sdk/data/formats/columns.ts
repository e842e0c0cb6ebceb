/** Column and role-tag mappings (LLaMA-Factory's `columns` and `tags`, camelCase here). */
import type { DataFormat } from "../types";

/** Which record fields hold what; LLaMA-Factory names (prompt/query/response/history/messages/system) plus text/label. */
export interface ColumnMap {
  /** classification / pretrain text (default "text"). */
  text?: string;
  /** classification label (default "label"). */
  label?: string;
  /** alpaca instruction (default "instruction"). */
  prompt?: string;
  /** alpaca input, appended to the instruction after a newline (default "input"). */
  query?: string;
  /** alpaca output (default "output"). */
  response?: string;
  /** alpaca history: [[instruction, response], ...] (default "history"). */
  history?: string;
  /** sharegpt/openai message list (default "conversations" for sharegpt, "messages" for openai). */
  messages?: string;
  /** system prompt column (default "system"). */
  system?: string;
}

/** How sharegpt-style messages name their role and content, and which role values mean what. */
export interface RoleTags {
  roleTag: string;
  contentTag: string;
  userTag: string;
  assistantTag: string;
  systemTag: string;
  /** Tool results; they become user turns (not trained). */
  observationTag: string;
  /** Function calls made by the model; they become assistant turns (trained). */
  functionTag: string;
}

/** LLaMA-Factory's sharegpt defaults. */
export const SHAREGPT_TAGS: RoleTags = Object.freeze({
  roleTag: "from",
  contentTag: "value",
  userTag: "human",
  assistantTag: "gpt",
  systemTag: "system",
  observationTag: "observation",
  functionTag: "function_call",
});

/** OpenAI chat-message tags. */
export const OPENAI_TAGS: RoleTags = Object.freeze({
  roleTag: "role",
  contentTag: "content",
  userTag: "user",
  assistantTag: "assistant",
  systemTag: "system",
  observationTag: "tool",
  functionTag: "function",
});

/** Default column names per format. */
export function defaultColumns(format: DataFormat): Required<ColumnMap> {
  return {
    text: "text",
    label: "label",
    prompt: "instruction",
    query: "input",
    response: "output",
    history: "history",
    messages: format === "openai" ? "messages" : "conversations",
    system: "system",
  };
}
