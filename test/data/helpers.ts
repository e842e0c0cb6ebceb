/** Shared test helpers for the data layer: temp files and a real (if tiny) character-level tokenizer. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage } from "../../sdk/data/types";
import type { ChatTemplateOptions, TextTokenizer } from "../../sdk/data/tokenize";

/** A fresh temporary folder. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "tunelab-data-"));
}

/** Writes `content` to `name` inside `dir` and returns the path. */
export function writeTemp(dir: string, name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

const SPECIALS = ["<pad>", "<bos>", "<eos>", "<|im_start|>", "<|im_end|>"];

/**
 * A character-level tokenizer: each special token is one id, every other character is 100 + its code point.
 * Its chat template is ChatML; `stripOldThinking` makes it drop <think> blocks from assistant turns that come
 * before the last user turn, as Qwen3's template does (so it is not prefix-stable).
 */
export class CharTokenizer implements TextTokenizer {
  readonly padTokenId = 0;
  readonly bosTokenId = 1;
  eosTokenId = 4; // <|im_end|>, as for Qwen chat models
  constructor(
    private readonly opts: { bos?: boolean; template?: boolean; stripOldThinking?: boolean; eos?: "<eos>" | "<|im_end|>" } = {},
  ) {
    if (opts.eos === "<eos>") this.eosTokenId = 2;
    if (opts.template === false) this.applyChatTemplate = undefined;
  }

  encode(text: string, o: { addSpecialTokens?: boolean } = {}): number[] {
    const ids: number[] = [];
    if (this.opts.bos && (o.addSpecialTokens ?? true)) ids.push(this.bosTokenId);
    let i = 0;
    outer: while (i < text.length) {
      for (let s = 0; s < SPECIALS.length; s++) {
        if (text.startsWith(SPECIALS[s], i)) {
          ids.push(s);
          i += SPECIALS[s].length;
          continue outer;
        }
      }
      const cp = text.codePointAt(i)!;
      ids.push(100 + cp);
      i += cp > 0xffff ? 2 : 1;
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => (id < 100 ? SPECIALS[id] : String.fromCodePoint(id - 100))).join("");
  }

  applyChatTemplate?: (messages: readonly ChatMessage[], opts?: ChatTemplateOptions) => string = (messages, opts = {}) => {
    const lastUser = messages.map((m) => m.role).lastIndexOf("user");
    let out = "";
    messages.forEach((m, k) => {
      let content = m.content;
      if (this.opts.stripOldThinking && m.role === "assistant" && k < lastUser) {
        content = content.replace(/<think>[\s\S]*?<\/think>/g, "");
      }
      out += `<|im_start|>${m.role}\n${content}<|im_end|>\n`;
    });
    if (opts.addGenerationPrompt) out += "<|im_start|>assistant\n";
    return out;
  };
}
