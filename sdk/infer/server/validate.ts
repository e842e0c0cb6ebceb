/**
 * Request bodies of the OpenAI-compatible endpoints and /predict, checked field by field: a wrong field gives a
 * 400 naming it (OpenAI's `param`) and saying what was expected. Fields OpenAI defines that tunelab cannot honour
 * (n > 1, logprobs, penalties other than 0) are refused rather than silently ignored; unknown fields are ignored.
 */
import type { ChatMessage } from "../../io/tokenizer";
import { badRequest } from "./errors";

/** Decoding options common to every generating endpoint. */
export interface SamplingRequest {
  model?: string;
  /** max_tokens (or max_completion_tokens); undefined: the server's default. */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  /** top_k (vLLM's extension); -1 or 0 = off. */
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop: string[];
  /** vLLM's ignore_eos: generate max_tokens tokens whatever the model says. */
  ignoreEos: boolean;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with usage and no choices. */
  includeUsage: boolean;
}

/** POST /v1/chat/completions. */
export interface ChatRequest extends SamplingRequest {
  messages: ChatMessage[];
  /** chat_template_kwargs.enable_thinking (Qwen3-style templates). */
  enableThinking?: boolean;
}

/** POST /v1/completions: one or more prompts (one choice each). */
export interface CompletionRequest extends SamplingRequest {
  prompts: string[];
}

/** POST /predict. */
export interface PredictRequest extends SamplingRequest {
  text: string;
}

type Body = Record<string, unknown>;

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function object(body: unknown): Body {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest(`the request body must be a JSON object, got ${typeName(body)}`);
  }
  return body as Body;
}

function optNumber(b: Body, key: string, check: (v: number) => boolean, want: string, integer = false): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v)))
    throw badRequest(`${key} must be ${integer ? "an integer" : "a number"}, got ${typeName(v)} ${JSON.stringify(v)}`, key);
  if (!check(v)) throw badRequest(`${key} must be ${want}, got ${v}`, key);
  return v;
}

function optBool(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badRequest(`${key} must be true or false, got ${typeName(v)}`, key);
  return v;
}

function sampling(b: Body, maxTokensLimit: number): SamplingRequest {
  const model = b.model;
  if (model !== undefined && model !== null && typeof model !== "string") throw badRequest(`model must be a string, got ${typeName(model)}`, "model");
  const key = b.max_completion_tokens !== undefined && b.max_completion_tokens !== null ? "max_completion_tokens" : "max_tokens";
  const maxTokens = optNumber(b, key, (v) => v >= 1, "at least 1", true);
  if (maxTokens !== undefined && maxTokens > maxTokensLimit) {
    throw badRequest(`${key} is ${maxTokens}, more than this server allows (${maxTokensLimit}, --max-tokens)`, key, "max_tokens_exceeded");
  }
  const n = optNumber(b, "n", (v) => v === 1, "1 (tunelab returns one choice per prompt)", true);
  void n;
  if (b.logprobs !== undefined && b.logprobs !== null && b.logprobs !== false) throw badRequest("logprobs are not supported by this server", "logprobs");
  for (const k of ["presence_penalty", "frequency_penalty"]) optNumber(b, k, (v) => v === 0, "0 (not supported; use repetition_penalty)");
  let stop: string[] = [];
  if (typeof b.stop === "string") stop = [b.stop];
  else if (Array.isArray(b.stop)) stop = b.stop as string[];
  else if (b.stop !== undefined && b.stop !== null) throw badRequest(`stop must be a string or an array of strings, got ${typeName(b.stop)}`, "stop");
  if (stop.length > 4 || stop.some((s) => typeof s !== "string" || s.length === 0)) throw badRequest("stop must hold at most 4 non-empty strings", "stop");
  const streamOptions = b.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== "object" || Array.isArray(streamOptions))) {
    throw badRequest(`stream_options must be an object, got ${typeName(streamOptions)}`, "stream_options");
  }
  const topK = optNumber(b, "top_k", (v) => v >= -1, "-1 (off), 0 (off) or a positive integer", true);
  return {
    model: typeof model === "string" ? model : undefined,
    maxTokens,
    temperature: optNumber(b, "temperature", (v) => v >= 0 && v <= 2, "between 0 and 2"),
    topP: optNumber(b, "top_p", (v) => v > 0 && v <= 1, "in (0, 1]"),
    topK: topK === -1 ? 0 : topK,
    repetitionPenalty: optNumber(b, "repetition_penalty", (v) => v > 0, "greater than 0"),
    seed: optNumber(b, "seed", () => true, "an integer", true),
    stop,
    ignoreEos: optBool(b, "ignore_eos") ?? false,
    stream: optBool(b, "stream") ?? false,
    includeUsage: streamOptions ? (streamOptions as Body).include_usage === true : false,
  };
}

function messageText(content: unknown, at: string): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part, i) => {
        const p = part as Body;
        if (typeof p !== "object" || p === null || p.type !== "text" || typeof p.text !== "string") {
          throw badRequest(`${at}.content[${i}] must be a {"type": "text", "text": ...} part (only text is supported)`, `${at}.content`);
        }
        return p.text;
      })
      .join("");
  }
  if (content === null || content === undefined) return "";
  throw badRequest(`${at}.content must be a string or an array of text parts, got ${typeName(content)}`, `${at}.content`);
}

/** Checks a chat completion request. */
export function parseChatRequest(body: unknown, maxTokensLimit: number): ChatRequest {
  const b = object(body);
  if (b.messages === undefined) throw badRequest("messages is required: an array of {role, content} objects", "messages");
  if (!Array.isArray(b.messages)) throw badRequest(`messages must be an array of {role, content} objects, got ${typeName(b.messages)}`, "messages");
  if (b.messages.length === 0) throw badRequest("messages must hold at least one message", "messages");
  const messages = b.messages.map((m: unknown, i): ChatMessage => {
    const at = `messages[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw badRequest(`${at} must be an object with role and content, got ${typeName(m)}`, at);
    const msg = m as Body;
    if (typeof msg.role !== "string" || !ROLES.has(msg.role)) {
      throw badRequest(`${at}.role must be one of ${[...ROLES].join(", ")}, got ${JSON.stringify(msg.role)}`, `${at}.role`);
    }
    const out: ChatMessage = { role: msg.role === "developer" ? "system" : msg.role, content: messageText(msg.content, at) };
    if (typeof msg.reasoning_content === "string") out.reasoning_content = msg.reasoning_content;
    if (typeof msg.name === "string") out.name = msg.name;
    return out;
  });
  const kwargs = b.chat_template_kwargs;
  const enableThinking = kwargs && typeof kwargs === "object" ? (kwargs as Body).enable_thinking : undefined;
  if (enableThinking !== undefined && typeof enableThinking !== "boolean")
    throw badRequest("chat_template_kwargs.enable_thinking must be true or false", "chat_template_kwargs");
  return { ...sampling(b, maxTokensLimit), messages, enableThinking };
}

/** Checks a (legacy) completion request. */
export function parseCompletionRequest(body: unknown, maxTokensLimit: number, maxPrompts: number): CompletionRequest {
  const b = object(body);
  if (b.prompt === undefined || b.prompt === null) throw badRequest("prompt is required: a string or an array of strings", "prompt");
  const prompts = typeof b.prompt === "string" ? [b.prompt] : b.prompt;
  if (!Array.isArray(prompts) || prompts.length === 0 || prompts.some((p) => typeof p !== "string")) {
    throw badRequest(`prompt must be a string or a non-empty array of strings (token arrays are not supported), got ${typeName(b.prompt)}`, "prompt");
  }
  if (prompts.length > maxPrompts) throw badRequest(`prompt holds ${prompts.length} prompts; at most ${maxPrompts} per request`, "prompt");
  if (b.echo === true) throw badRequest("echo is not supported by this server", "echo");
  if (typeof b.suffix === "string" && b.suffix) throw badRequest("suffix is not supported by this server", "suffix");
  return { ...sampling(b, maxTokensLimit), prompts: prompts as string[] };
}

/** Checks a /predict request: {"text": ...} plus optional decoding options. */
export function parsePredictRequest(body: unknown, maxTokensLimit: number): PredictRequest {
  const b = object(body);
  if (b.text === undefined) throw badRequest('text is required: {"text": "..."}', "text");
  if (typeof b.text !== "string") throw badRequest(`text must be a string, got ${typeName(b.text)}`, "text");
  const s = sampling(b, maxTokensLimit);
  if (s.stream) throw badRequest("/predict does not stream; use /v1/completions with stream: true", "stream");
  return { ...s, text: b.text };
}
