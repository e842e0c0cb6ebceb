/**
 * Trains a byte-level BPE tokenizer (GPT-2 style: the ByteLevel pre-tokenizer's regex split, bytes mapped to printable
 * characters, merges learned from pair counts) and returns it as tokenizer files for a model folder. Deterministic:
 * ties between equally frequent pairs go to the pair whose text sorts first, so the same texts give the same merges.
 */
import { bytesToUnicode, type TokenizerFiles } from "../../sdk/io/tiny-tokenizers";

/** Options of trainByteLevelBpe. */
export interface BpeOptions {
  /** Size of the vocabulary: 256 byte tokens + merges + the special tokens (at least 256 + specials). */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged (default 2). */
  minFrequency?: number;
}

/** The split of the ByteLevel pre-tokenizer (`use_regex: true`), as GPT-2's tokenizer and HF tokenizers do it. */
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Special tokens after the learned vocabulary (chatml, as the Qwen-like tiny models have). */
const SPECIALS = [
  { content: "<|endoftext|>", special: true },
  { content: "<|im_start|>", special: true },
  { content: "<|im_end|>", special: true },
  { content: "<think>", special: false },
  { content: "</think>", special: false },
];

/** The chatml chat template of the tiny Qwen-like models (no bos token). */
const CHATML =
  "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** Learns `vocabSize - 256 - specials` merges from `texts` and returns chatml tokenizer files (no bos; eos <|im_end|>). */
export function trainByteLevelBpe(texts: readonly string[], options: BpeOptions): TokenizerFiles {
  const numMerges = options.vocabSize - 256 - SPECIALS.length;
  if (!Number.isSafeInteger(options.vocabSize) || numMerges < 0) {
    throw new Error(`trainByteLevelBpe: vocabSize must be an integer of at least ${256 + SPECIALS.length}, got ${options.vocabSize}`);
  }
  const minFrequency = options.minFrequency ?? 2;
  const byteChar = bytesToUnicode();
  const encoder = new TextEncoder();

  // Count pre-tokenized pieces, each as a sequence of byte characters.
  const pieceCounts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(SPLIT)) {
      let piece = "";
      for (const b of encoder.encode(m[0])) piece += byteChar[b];
      pieceCounts.set(piece, (pieceCounts.get(piece) ?? 0) + 1);
    }
  }
  const pieces = [...pieceCounts.keys()].sort();
  const words: string[][] = pieces.map((p) => [...p]);
  const freq = pieces.map((p) => pieceCounts.get(p)!);

  // Pair counts and, per pair, the words holding it. A pair key is "a b": byte characters never contain a space.
  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1): void => {
    const syms = words[w];
    for (let i = 0; i + 1 < syms.length; i++) {
      const key = `${syms[i]} ${syms[i + 1]}`;
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq[w]);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  const merges: string[] = [];
  const vocab: Record<string, number> = {};
  byteChar.forEach((c, b) => (vocab[c] = b));
  while (merges.length < numMerges) {
    let best = "";
    let bestCount = 0;
    for (const [key, count] of pairCount) {
      if (count > bestCount || (count === bestCount && count > 0 && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (bestCount < minFrequency) break;
    const [a, b] = best.split(" ");
    const merged = a + b;
    merges.push(best);
    vocab[merged] = 256 + merges.length - 1;
    const holders = [...pairWords.get(best)!].sort((x, y) => x - y);
    for (const w of holders) {
      addPairs(w, -1);
      const syms = words[w];
      const next: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          next.push(merged);
          i++;
        } else next.push(syms[i]);
      }
      words[w] = next;
      addPairs(w, 1);
    }
    pairCount.delete(best);
    pairWords.delete(best);
  }

  const firstSpecial = 256 + merges.length;
  const addedTokens = SPECIALS.map((t, i) => ({
    id: firstSpecial + i,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: t.special,
  }));
  const idOf = (content: string): number => addedTokens.find((t) => t.content === content)!.id;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
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
      merges,
    },
  };
  const addedDecoder: Record<string, unknown> = {};
  for (const { id, ...rest } of addedTokens) addedDecoder[String(id)] = rest;
  const tokenizerConfig = {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: addedDecoder,
    bos_token: null,
    chat_template: CHATML,
    clean_up_tokenization_spaces: false,
    eos_token: "<|im_end|>",
    model_max_length: 2048,
    pad_token: "<|endoftext|>",
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: null,
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: firstSpecial + SPECIALS.length,
    bosTokenId: null,
    eosTokenIds: [idOf("<|im_end|>"), idOf("<|endoftext|>")],
    padTokenId: idOf("<|endoftext|>"),
  };
}
