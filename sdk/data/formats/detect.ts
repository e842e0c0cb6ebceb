/** Guesses a file's format from the fields of its first records. */
import type { DataFormat } from "../types";
import type { RawRecord } from "../read";
import { clip } from "../read/json";
import { OPENAI_TAGS, SHAREGPT_TAGS, type RoleTags } from "./columns";

/** A detected format, with the message tags when it is a chat format. */
export interface Detected {
  format: DataFormat;
  tags?: RoleTags;
}

/**
 * Detects the format from the keys of the first records: `messages` -> openai, `conversations` -> sharegpt,
 * `instruction`+`output` -> alpaca, `text`+`label` -> classification, `text` -> pretrain. Chat message tags are
 * read from the first message (role/content or from/value), so OpenAI-style lists under `conversations` work too.
 */
export function detectFormat(records: readonly RawRecord[], source: string): Detected {
  const sample = records.slice(0, 50).map((r) => r.value).filter(isObject);
  if (sample.length === 0) throw new Error(`${source}: no records to detect the format from`);
  const has = (k: string) => sample.some((o) => k in o);
  const chatTags = (key: string): RoleTags => {
    for (const o of sample) {
      const list = o[key];
      if (Array.isArray(list) && list.length > 0 && isObject(list[0])) {
        if ("role" in list[0]) return OPENAI_TAGS;
        if ("from" in list[0]) return SHAREGPT_TAGS;
      }
    }
    return key === "messages" ? OPENAI_TAGS : SHAREGPT_TAGS;
  };
  // The format fixes the default list column ("messages" vs "conversations"); the tags follow the messages.
  if (has("messages")) return { format: "openai", tags: chatTags("messages") };
  if (has("conversations")) return { format: "sharegpt", tags: chatTags("conversations") };
  if (has("instruction") && has("output")) return { format: "alpaca" };
  if (has("text") && has("label")) return { format: "classification" };
  if (has("text")) return { format: "pretrain" };
  const keys = [...new Set(sample.flatMap((o) => Object.keys(o)))].slice(0, 12);
  throw new Error(
    `${source}: cannot tell the data format from the fields {${keys.map((k) => clip(k)).join(", ")}}; expected text+label (classification), ` +
      `instruction+output (alpaca), conversations (sharegpt), messages (openai) or text (pretrain); ` +
      `pass format and columns to say which fields mean what`,
  );
}

/** True for a plain (non-array) object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
