/** Reading and writing Hugging Face model folders: safetensors, config, tokenizer and chat template, PEFT adapters, tiny models. */
export * from "./safetensors";
export * from "../util/float16";
export * from "./config";
export * from "./tokenizer";
export * from "./peft";
export * from "./tiny";
export { byteTokenizer, bytesToUnicode, deepseekR1Template, packagedTokenizer, tinyTokenizer } from "./tiny-tokenizers";
export type { TinyTokenizerKind, TokenizerFiles } from "./tiny-tokenizers";
export { writeFileAtomic, writeFileAtomicWith, writeJsonAtomic } from "./atomic";
export * from "./presets";
export * from "./safetensors-writer";
export * from "./model-marker";
export { presetTokenizer } from "./preset-tokenizers";
export type { PresetTokenizerKind } from "./preset-tokenizers";
