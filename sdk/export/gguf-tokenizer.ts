/**
 * The tokenizer as GGUF metadata (what llama.cpp's convert_hf_to_gguf.py writes for a byte-level BPE tokenizer):
 * tokenizer.ggml.model "gpt2", the pre-tokenizer name llama.cpp knows the split regex by, every token string with
 * its type, the BPE merges, the special token ids and the chat template.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Tokenizer } from "../io/tokenizer";
import { gv, type GgufValue } from "./gguf-file";

/** llama.cpp's token types (llama.h `llama_token_type`). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;

/** Split regexes of the pre-tokenizers llama.cpp implements, by the name it knows them by (llama-vocab.cpp). */
const PRE_TOKENIZERS: readonly { name: string; pattern: string }[] = [
  { name: "qwen2", pattern: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
  {
    name: "llama-bpe",
    pattern: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
  { name: "deepseek-v3", pattern: "\\p{N}{1,3}" },
];

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean };
  pre_tokenizer?: { type?: string; use_regex?: boolean; pretokenizers?: { type?: string; pattern?: { Regex?: string } }[] } | null;
  added_tokens?: { id: number; content: string; special: boolean }[];
}

/** The llama.cpp pre-tokenizer name for a tokenizer.json pre_tokenizer, or null when llama.cpp knows none. */
export function llamaCppPreTokenizer(pre: TokenizerJson["pre_tokenizer"]): string | null {
  if (!pre) return null;
  if (pre.type === "ByteLevel" && pre.use_regex !== false) return "gpt-2";
  if (pre.type === "Sequence" && pre.pretokenizers?.[0]?.type === "Split") {
    const first = pre.pretokenizers[0].pattern?.Regex;
    return PRE_TOKENIZERS.find((p) => p.pattern === first)?.name ?? null;
  }
  return null;
}

/** The tokenizer.* metadata for `vocabSize` embedding rows; `warnings` collects what llama.cpp may treat differently. */
export function tokenizerMetadata(modelDir: string, tokenizer: Tokenizer, vocabSize: number, warnings: string[]): Map<string, GgufValue> {
  const file = path.join(modelDir, "tokenizer.json");
  if (!fs.existsSync(file)) throw new Error(`${modelDir}: no tokenizer.json; GGUF export needs the tokenizer to put in the file`);
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as TokenizerJson;
  const model = json.model;
  if (model?.type !== "BPE" || !model.vocab)
    throw new Error(`${file}: model.type is ${JSON.stringify(model?.type)}; GGUF export supports byte-level BPE tokenizers`);
  if (model.byte_fallback)
    throw new Error(`${file}: a byte-fallback (SentencePiece-style) BPE tokenizer is not supported by the GGUF export; only byte-level BPE`);
  let pre = llamaCppPreTokenizer(json.pre_tokenizer);
  if (pre === null) {
    warnings.push(`${file}: pre-tokenizer not recognised; wrote tokenizer.ggml.pre "default", so llama.cpp may split text differently`);
    pre = "default";
  }
  const tokens: (string | undefined)[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(TOKEN_TYPE.NORMAL);
  for (const [tok, id] of Object.entries(model.vocab)) if (id < vocabSize) tokens[id] = tok;
  for (const t of json.added_tokens ?? []) {
    if (t.id >= vocabSize) throw new Error(`${file}: added token ${JSON.stringify(t.content)} has id ${t.id}, past the model's ${vocabSize} embeddings`);
    tokens[t.id] = t.content;
    types[t.id] = t.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  const filled = Array.from(tokens, (t, i) => {
    if (t !== undefined) return t;
    types[i] = TOKEN_TYPE.UNUSED;
    return `[PAD${i}]`; // as convert_hf_to_gguf.py names embedding rows without a token
  });
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(" ") : m));
  const meta = new Map<string, GgufValue>([
    ["tokenizer.ggml.model", gv.str("gpt2")],
    ["tokenizer.ggml.pre", gv.str(pre)],
    ["tokenizer.ggml.tokens", gv.strs(filled)],
    ["tokenizer.ggml.token_type", gv.i32s(types)],
    ["tokenizer.ggml.merges", gv.strs(merges)],
  ]);
  if (tokenizer.bosTokenId !== undefined) meta.set("tokenizer.ggml.bos_token_id", gv.u32(tokenizer.bosTokenId));
  meta.set("tokenizer.ggml.eos_token_id", gv.u32(tokenizer.eosTokenId));
  meta.set("tokenizer.ggml.padding_token_id", gv.u32(tokenizer.padTokenId));
  const config = readTokenizerConfig(modelDir);
  meta.set("tokenizer.ggml.add_bos_token", gv.bool(config.add_bos_token === true && tokenizer.bosTokenId !== undefined));
  meta.set("tokenizer.ggml.add_eos_token", gv.bool(config.add_eos_token === true));
  const template = tokenizer.chatTemplates.default;
  if (template) meta.set("tokenizer.chat_template", gv.str(template));
  return meta;
}

function readTokenizerConfig(modelDir: string): Record<string, unknown> {
  const file = path.join(modelDir, "tokenizer_config.json");
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>) : {};
}
