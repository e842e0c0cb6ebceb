/** Back-translation through a pluggable Translator: an OpenAI-compatible HTTP endpoint, or any chat function. */
import type { ChatMessage } from "../types";

/** Translates text between languages (BCP 47 tags or language names). */
export interface Translator {
  translate(text: string, from: string, to: string): Promise<string>;
}

const NAMES: Record<string, string> = {
  en: "English", zh: "Chinese", "zh-cn": "Simplified Chinese", "zh-tw": "Traditional Chinese", de: "German",
  fr: "French", es: "Spanish", it: "Italian", pt: "Portuguese", ru: "Russian", ja: "Japanese", ko: "Korean",
  ar: "Arabic", hi: "Hindi", nl: "Dutch", pl: "Polish", tr: "Turkish", vi: "Vietnamese", sv: "Swedish",
};

/** English name of a language tag for prompts ("zh" -> "Chinese"); unknown tags pass through. */
export function languageName(tag: string): string {
  return NAMES[tag.toLowerCase()] ?? tag;
}

/** The chat messages that ask a model for a translation and nothing else. */
export function translationMessages(text: string, from: string, to: string): ChatMessage[] {
  return [
    {
      role: "system",
      content:
        `You are a translator. Translate the user's text from ${languageName(from)} to ${languageName(to)}. ` +
        "Reply with the translation only: no quotes, notes or explanations.",
    },
    { role: "user", content: text },
  ];
}

/** Strips reasoning blocks (`<think>...</think>`) and surrounding whitespace from a model's reply. */
export function cleanReply(reply: string): string {
  return reply.replace(/<think>[\s\S]*?<\/think>/g, "").replace(/^[\s\S]*<\/think>/, "").trim();
}

/** Options of `openAITranslator`. */
export interface OpenAITranslatorOptions {
  /** API root including the version, as in OpenAI's SDKs: "https://host/v1" or "http://127.0.0.1:8000/v1". */
  baseURL: string;
  model: string;
  /** Sent as a Bearer token when given. */
  apiKey?: string;
  /** Sampling temperature (default 0, so replies repeat where the server allows). */
  temperature?: number;
  /** Per-request timeout in milliseconds (default 60000). */
  timeoutMs?: number;
}

/** A Translator that calls any OpenAI-compatible POST {baseURL}/chat/completions endpoint. */
export function openAITranslator(options: OpenAITranslatorOptions): Translator {
  const url = options.baseURL.replace(/\/+$/, "") + "/chat/completions";
  return {
    async translate(text, from, to) {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers,
          body: JSON.stringify({
            model: options.model,
            messages: translationMessages(text, from, to),
            temperature: options.temperature ?? 0,
          }),
          signal: AbortSignal.timeout(options.timeoutMs ?? 60000),
        });
      } catch (e) {
        throw new Error(`openAITranslator: request to ${url} failed: ${(e as Error).message}`, { cause: e });
      }
      const body = await res.text();
      if (!res.ok) throw new Error(`openAITranslator: ${url} answered HTTP ${res.status}: ${body.slice(0, 300)}`);
      let content: unknown;
      try {
        content = (JSON.parse(body) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
      } catch {
        throw new Error(`openAITranslator: ${url} answered with non-JSON: ${body.slice(0, 300)}`);
      }
      if (typeof content !== "string") throw new Error(`openAITranslator: ${url} reply has no choices[0].message.content: ${body.slice(0, 300)}`);
      return cleanReply(content);
    },
  };
}

/** A Translator over any chat function, e.g. a tunelab model's `(messages) => model.chat(messages)`. */
export function chatTranslator(chat: (messages: ChatMessage[]) => Promise<string>): Translator {
  return {
    async translate(text, from, to) {
      const reply = await chat(translationMessages(text, from, to));
      if (typeof reply !== "string") throw new Error("chatTranslator: the chat function must resolve to a string");
      return cleanReply(reply);
    },
  };
}
