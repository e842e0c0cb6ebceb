/**
 * A Hugging Face tokenizer loaded from a model folder: `tokenizer.json` runs through
 * @huggingface/tokenizers (so encoding, including the file's own post-processor, is the file's), and
 * `tokenizer_config.json` supplies the special tokens and the chat template, rendered with
 * @huggingface/jinja the way transformers' `apply_chat_template` renders it.
 */
import { CHAT_TEMPLATES } from "./templates";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { readJsonObject } from "./config";

/** One chat message; extra fields (reasoning_content, tool_calls, ...) are passed to the template as is. */
export interface ChatMessage {
  role: string;
  content: string;
  /** Fields some templates read besides role and content. */
  reasoning_content?: string;
  tool_calls?: unknown[];
  name?: string;
}

/** Options of `applyChatTemplate` (transformers' names in camelCase). */
export interface ChatTemplateOptions {
  /** Append the prompt that starts the assistant's turn (`add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /** `enable_thinking`, read by Qwen3-style templates; left undefined when not given. */
  enableThinking?: boolean;
  /** Tool (function) schemas for templates that support them. */
  tools?: unknown[];
  /** Pick a named template when `chat_template` is a list; default "default" (or "tool_use" with tools). */
  templateName?: string;
  /** Further variables for the template. */
  extra?: Record<string, unknown>;
}

/** Options of `encode`. */
export interface EncodeOptions {
  /** Run tokenizer.json's post-processor with its special tokens (default true, as in transformers). */
  addSpecialTokens?: boolean;
}

/** Options of `decode`. */
export interface DecodeOptions {
  /** Drop special tokens from the text (default false). */
  skipSpecialTokens?: boolean;
}

/** Where each part of a tokenizer came from, for error messages. */
interface Sources {
  tokenizerJson: string;
  tokenizerConfig: string;
}

/** A special-token entry of tokenizer_config.json: a string or an AddedToken-like object. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** The named chat templates of a tokenizer_config `chat_template` value (a string is named "default"). */
function parseChatTemplates(value: unknown, source: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value === "string") return { default: value };
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const [i, item] of value.entries()) {
      const name = (item as { name?: unknown })?.name;
      const template = (item as { template?: unknown })?.template;
      if (typeof name !== "string" || typeof template !== "string") {
        throw new Error(`${source}: chat_template[${i}] must be {"name": string, "template": string}`);
      }
      out[name] = template;
    }
    return out;
  }
  throw new Error(`${source}: "chat_template" must be a string or a list of {name, template}`);
}

/** One more than the largest id of tokenizer.json's model vocabulary and added tokens. */
function vocabSizeOf(tokenizerJson: Record<string, unknown>): number {
  let maxId = -1;
  const vocab = (tokenizerJson.model as { vocab?: unknown } | undefined)?.vocab;
  // BPE and WordPiece store {token: id}; Unigram stores [[piece, score], ...] where the index is the id.
  if (Array.isArray(vocab)) maxId = vocab.length - 1;
  else if (typeof vocab === "object" && vocab !== null) {
    for (const id of Object.values(vocab as Record<string, number>)) if (id > maxId) maxId = id;
  }
  for (const t of (tokenizerJson.added_tokens ?? []) as { id: number }[]) if (t.id > maxId) maxId = t.id;
  return maxId + 1;
}

/** A tokenizer with its special tokens and chat template. */
export class Tokenizer {
  /** Ids 0 .. vocabSize-1 cover the model vocabulary and every added token. */
  readonly vocabSize: number;
  /** The primary end-of-sequence id (tokenizer_config's eos_token). */
  readonly eosTokenId: number;
  /** Every id that ends generation: eos_token, plus generation_config.json's and config.json's eos_token_id. */
  readonly eosTokenIds: number[];
  /** tokenizer_config's bos_token id, if it has one. */
  readonly bosTokenId?: number;
  /** tokenizer_config's pad_token id, falling back to eosTokenId. */
  readonly padTokenId: number;
  /** Named chat templates ("default" for a plain string template); empty when there is none. */
  readonly chatTemplates: Readonly<Record<string, string>>;
  /** Ids of all added tokens marked special. */
  readonly specialTokenIds: number[];
  /** The special token strings by role (bos_token, eos_token, pad_token, unk_token), as the template sees them. */
  readonly specialTokens: Readonly<Record<string, string>>;

  private readonly hf: HfTokenizer;
  private readonly sources: Sources;
  private readonly compiled = new Map<string, Template>();

  private constructor(
    tokenizerJson: Record<string, unknown>,
    tokenizerConfig: Record<string, unknown>,
    sources: Sources,
    chatTemplates: Record<string, string>,
    extraEosIds: number[],
  ) {
    this.sources = sources;
    // transformers' current default for clean_up_tokenization_spaces is false; the JS library's is true.
    const config = { ...tokenizerConfig, clean_up_tokenization_spaces: tokenizerConfig.clean_up_tokenization_spaces ?? false };
    try {
      this.hf = new HfTokenizer(tokenizerJson, config);
    } catch (err) {
      // A TypeError from inside the library means a field is missing or of the wrong type; its text helps nobody.
      const why = err instanceof TypeError ? "a field is missing or has the wrong type (the file is damaged)" : (err as Error).message;
      throw new Error(`${sources.tokenizerJson}: cannot build the tokenizer (with ${sources.tokenizerConfig}): ${why}`, { cause: err });
    }
    this.vocabSize = vocabSizeOf(tokenizerJson);

    const specialTokens: Record<string, string> = {};
    for (const role of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
      const content = tokenContent(tokenizerConfig[role]);
      if (content !== undefined) specialTokens[role] = content;
    }
    this.specialTokens = specialTokens;
    const idOf = (role: string): number | undefined => {
      const content = specialTokens[role];
      if (content === undefined) return undefined;
      const id = this.hf.token_to_id(content);
      if (id === undefined) {
        throw new Error(
          `${sources.tokenizerConfig}: ${role} ${JSON.stringify(content.length > 40 ? content.slice(0, 40) + "…" : content)} is not a token of ${sources.tokenizerJson}`,
        );
      }
      return id;
    };
    const eos = idOf("eos_token");
    const eosIds = [...(eos === undefined ? [] : [eos]), ...extraEosIds].filter((id, i, all) => all.indexOf(id) === i);
    if (eosIds.length === 0) {
      throw new Error(
        `${sources.tokenizerConfig}: no "eos_token" (and no eos_token_id in generation_config.json or config.json); ` +
          `generation needs an end-of-sequence token`,
      );
    }
    this.eosTokenIds = eosIds;
    this.eosTokenId = eosIds[0];
    const bos = idOf("bos_token");
    if (bos !== undefined) this.bosTokenId = bos;
    this.padTokenId = idOf("pad_token") ?? this.eosTokenId;
    this.chatTemplates = chatTemplates;
    this.specialTokenIds = [...this.hf.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id);
  }

  /**
   * Loads `tokenizer.json` and `tokenizer_config.json` from a HF model folder. The chat template is
   * taken from `chat_template.jinja` if the folder has one, else from tokenizer_config's `chat_template`.
   * End-of-sequence ids from `generation_config.json` and `config.json` in the same folder are added.
   */
  static fromDir(dir: string): Tokenizer {
    const tokenizerJsonPath = path.join(dir, "tokenizer.json");
    if (!fs.existsSync(tokenizerJsonPath)) {
      throw new Error(`${dir}: no tokenizer.json (tunelab needs a "fast" Hugging Face tokenizer file)`);
    }
    const tokenizerJson = readJsonObject(tokenizerJsonPath);
    const configPath = path.join(dir, "tokenizer_config.json");
    const tokenizerConfig = fs.existsSync(configPath) ? readJsonObject(configPath) : {};
    let templates = parseChatTemplates(tokenizerConfig.chat_template, configPath);
    const jinjaPath = path.join(dir, "chat_template.jinja");
    const chatJsonPath = path.join(dir, "chat_template.json");
    if (fs.existsSync(jinjaPath)) templates = { ...templates, default: fs.readFileSync(jinjaPath, "utf8") };
    else if (fs.existsSync(chatJsonPath)) {
      templates = { ...templates, ...parseChatTemplates(readJsonObject(chatJsonPath).chat_template, chatJsonPath) };
    }
    const extraEos: number[] = [];
    for (const name of ["generation_config.json", "config.json"]) {
      const file = path.join(dir, name);
      if (!fs.existsSync(file)) continue;
      const v = readJsonObject(file).eos_token_id;
      for (const id of Array.isArray(v) ? v : [v]) if (typeof id === "number" && Number.isSafeInteger(id)) extraEos.push(id);
    }
    return new Tokenizer(tokenizerJson, tokenizerConfig, { tokenizerJson: tokenizerJsonPath, tokenizerConfig: configPath }, templates, extraEos);
  }

  /** Builds a tokenizer from already-parsed tokenizer.json and tokenizer_config.json objects. */
  static fromObjects(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}): Tokenizer {
    const sources = { tokenizerJson: "tokenizer.json", tokenizerConfig: "tokenizer_config.json" };
    return new Tokenizer(tokenizerJson, tokenizerConfig, sources, parseChatTemplates(tokenizerConfig.chat_template, sources.tokenizerConfig), []);
  }

  /** Token ids of `text`; with addSpecialTokens (default) exactly what tokenizer.json's post-processor adds. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new Error(`encode: expected a string, got ${typeof text}`);
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** The text of `ids`; throws on an id outside the vocabulary. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    for (const id of ids) {
      if (!Number.isSafeInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
        throw new Error(`decode: token id ${id} is not in the vocabulary (0..${this.vocabSize - 1})`);
      }
    }
    return this.hf.decode(ids.slice(), { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The id of a token string (vocabulary or added token), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Whether a chat template is available. */
  get hasChatTemplate(): boolean {
    return Object.keys(this.chatTemplates).length > 0;
  }

  /** Renders `messages` through the chat template, as transformers' apply_chat_template(tokenize=False). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const names = Object.keys(this.chatTemplates);
    const builtin = options.templateName !== undefined && !(options.templateName in this.chatTemplates) ? CHAT_TEMPLATES[options.templateName] : undefined;
    if (names.length === 0 && builtin === undefined) {
      throw new Error(`${this.sources.tokenizerConfig}: the tokenizer has no chat_template, so it cannot format chat messages`);
    }
    let name = options.templateName;
    if (name === undefined) {
      if (options.tools && this.chatTemplates.tool_use !== undefined) name = "tool_use";
      else if (this.chatTemplates.default !== undefined) name = "default";
      else if (names.length === 1) name = names[0];
      else {
        throw new Error(`${this.sources.tokenizerConfig}: chat_template has several templates (${names.join(", ")}) and no "default"; pass templateName`);
      }
    }
    const source = this.chatTemplates[name] ?? builtin;
    if (source === undefined) {
      throw new Error(`${this.sources.tokenizerConfig}: no chat template named "${name}" (have ${[...names, ...Object.keys(CHAT_TEMPLATES)].join(", ")})`);
    }
    for (const [i, m] of messages.entries()) {
      if (typeof m?.role !== "string") throw new Error(`applyChatTemplate: messages[${i}].role must be a string`);
    }
    const cacheKey = builtin === undefined ? name : `builtin:${name}`;
    let template = this.compiled.get(cacheKey);
    if (!template) {
      try {
        template = new Template(source);
      } catch (err) {
        throw new Error(`${this.sources.tokenizerConfig}: chat template "${name}" does not parse: ${(err as Error).message}`, { cause: err });
      }
      this.compiled.set(cacheKey, template);
    }
    const context: Record<string, unknown> = {
      ...this.specialTokens,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      ...(options.tools !== undefined ? { tools: options.tools } : {}),
      // Left out when not given: templates test `enable_thinking is defined`.
      ...(options.enableThinking !== undefined ? { enable_thinking: options.enableThinking } : {}),
      ...options.extra,
    };
    try {
      return template.render(context);
    } catch (err) {
      throw new Error(`${this.sources.tokenizerConfig}: chat template "${name}" failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Token ids of the rendered chat (no post-processor specials: the template writes its own). */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }
}
