import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer, type ChatMessage } from "../../sdk/io/tokenizer";
import { createTinyModel } from "../../sdk/io/tiny";
import { byteTokenizer } from "../../sdk/io/tiny-tokenizers";
import { readModelConfig } from "../../sdk/io/config";
import { Rng } from "../../sdk/util/random";
import { tempDir } from "./tmp";

const root = tempDir("tunelab-tok-");

/** A tiny model folder with the given tokenizer (small weights: the tokenizer is what is under test). */
function folder(arch: "llama" | "qwen2", tokenizer: "byte" | "qwen3" | "deepseek_v3"): string {
  const out = path.join(root, `${arch}-${tokenizer}`);
  if (!fs.existsSync(path.join(out, "tokenizer.json"))) {
    createTinyModel({ arch, out, seed: 1, tokenizer, hiddenSize: 8, numHeads: 2, numKvHeads: 1, numLayers: 1, tieWordEmbeddings: true });
  }
  return out;
}

const cache = new Map<string, Tokenizer>();
function load(dir: string): Tokenizer {
  if (!cache.has(dir)) cache.set(dir, Tokenizer.fromDir(dir));
  return cache.get(dir)!;
}

/**
 * What tokenizer.json's post-processor adds around a single sequence, read from the JSON itself
 * (independently of the library): TemplateProcessing's `single` list, nothing for ByteLevel, the
 * concatenation for Sequence.
 */
/** The fields of tokenizer.json's post_processor that the test reads. */
interface PostProcessor {
  type: string;
  processors?: PostProcessor[];
  single?: { Sequence?: unknown; SpecialToken?: { id: string } }[];
  special_tokens?: Record<string, { ids: number[] }>;
}

function postProcessorSpecials(dir: string): { before: number[]; after: number[] } {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const walk = (pp: PostProcessor | null): { before: number[]; after: number[] } => {
    if (pp === null || pp.type === "ByteLevel") return { before: [], after: [] };
    if (pp.type === "Sequence") {
      const parts = (pp.processors ?? []).map(walk);
      return { before: parts.flatMap((p) => p.before), after: parts.flatMap((p) => p.after) };
    }
    if (pp.type === "TemplateProcessing") {
      const out = { before: [] as number[], after: [] as number[] };
      let seen = false;
      for (const item of pp.single ?? []) {
        if (item.Sequence) seen = true;
        else if (item.SpecialToken) (seen ? out.after : out.before).push(...pp.special_tokens![item.SpecialToken.id].ids);
      }
      return out;
    }
    throw new Error(`test does not model post_processor ${pp.type}`);
  };
  return walk(json.post_processor);
}

/** Random text over ASCII, Latin, CJK, emoji (astral), combining marks, whitespace and controls. */
function randomText(rng: Rng, length: number): string {
  const pools = ["abcXYZ 019.,!?", "äöüßéñ", "你好世界日本語", "🎉😀👩‍💻🇩🇪", "e\u0301a\u0308", " \t\n\r\n  ", "\u0000\u0007\u007f", "<|im_start|>"];
  let s = "";
  while ([...s].length < length) {
    const pool = [...pools[rng.int(pools.length)]];
    s += pool[rng.int(pool.length)];
  }
  return s;
}

test("byte tokenizer: ids are the UTF-8 bytes, any text round-trips, specials follow its post-processor", () => {
  for (const arch of ["llama", "qwen2"] as const) {
    const dir = folder(arch, "byte");
    const tok = load(dir);
    const rng = new Rng(11);
    for (let i = 0; i < 200; i++) {
      const text = randomText(rng, 1 + rng.int(40)).replace(/<\|im_start\|>/g, "");
      const ids = tok.encode(text, { addSpecialTokens: false });
      assert.deepEqual(ids, Array.from(Buffer.from(text, "utf8")), JSON.stringify(text));
      assert.equal(tok.decode(ids), text);
    }
    const { before, after } = postProcessorSpecials(dir);
    assert.deepEqual(before, arch === "llama" ? [tok.tokenToId("<|begin_of_text|>")] : []);
    const text = "Grüße, 世界! 🎉";
    assert.deepEqual(tok.encode(text), [...before, ...Array.from(Buffer.from(text, "utf8")), ...after]);
    assert.equal(tok.encode(text, { addSpecialTokens: true })[0] === 256, arch === "llama");
    // Special tokens written in text are matched as single tokens; decode can skip them.
    const withSpecial = tok.encode("<|im_start|>user\nhi<|im_end|>", { addSpecialTokens: false });
    assert.equal(withSpecial[0], tok.tokenToId("<|im_start|>"));
    assert.equal(withSpecial[withSpecial.length - 1], tok.tokenToId("<|im_end|>"));
    assert.equal(tok.decode(withSpecial, { skipSpecialTokens: true }), "user\nhi");
    assert.equal(tok.decode(withSpecial), "<|im_start|>user\nhi<|im_end|>");
    // <think> is an added token but not special: it stays when skipping specials.
    assert.equal(tok.decode(tok.encode("<think>x</think>", { addSpecialTokens: false }), { skipSpecialTokens: true }), "<think>x</think>");
    assert.equal(tok.decode([]), "");
    assert.throws(() => tok.decode([tok.vocabSize]), /token id \d+ is not in the vocabulary/);
    assert.equal(tok.vocabSize, readModelConfig(dir).vocabSize);
    assert.equal(tok.idToToken(65), "A");
    assert.equal(tok.idToToken(32), "Ġ");
  }
});

test("byte tokenizer special ids: eos list from generation_config, bos, pad", () => {
  const llama = load(folder("llama", "byte"));
  assert.equal(llama.bosTokenId, llama.tokenToId("<|begin_of_text|>"));
  assert.equal(llama.eosTokenId, llama.tokenToId("<|im_end|>"));
  assert.deepEqual(llama.eosTokenIds, [llama.tokenToId("<|im_end|>"), llama.tokenToId("<|end_of_text|>")]);
  assert.equal(llama.padTokenId, llama.tokenToId("<|end_of_text|>"));
  const qwen = load(folder("qwen2", "byte"));
  assert.equal(qwen.bosTokenId, undefined);
  assert.deepEqual(qwen.eosTokenIds, [qwen.tokenToId("<|im_end|>"), qwen.tokenToId("<|endoftext|>")]);
  assert.deepEqual(qwen.specialTokenIds.sort(), [256, 257, 258]);
});

test("qwen3 and deepseek_v3 tokenizers: encode with special tokens adds exactly what the post-processor says", () => {
  const text = "Hello world, 2024 年 is here! naïve café";
  for (const [arch, kind] of [
    ["qwen2", "qwen3"],
    ["llama", "deepseek_v3"],
  ] as const) {
    const dir = folder(arch, kind);
    const tok = load(dir);
    const plain = tok.encode(text, { addSpecialTokens: false });
    const { before, after } = postProcessorSpecials(dir);
    assert.deepEqual(tok.encode(text), [...before, ...plain, ...after], kind);
    assert.equal(tok.decode(plain), text, kind);
    // "Hello world" is two vocabulary tokens in both byte-level BPEs: "Hello" and "Ġworld".
    assert.deepEqual(tok.encode("Hello world", { addSpecialTokens: false }), [tok.tokenToId("Hello"), tok.tokenToId("Ġworld")], kind);
    assert.equal(tok.vocabSize, readModelConfig(dir).vocabSize, kind);
  }
  const qwen = load(folder("qwen2", "qwen3"));
  assert.equal(qwen.tokenToId("Hello"), 9707);
  assert.equal(qwen.vocabSize, 151669);
  assert.equal(qwen.eosTokenId, 151645); // <|im_end|>
  assert.deepEqual(qwen.eosTokenIds, [151645, 151643]);
  assert.equal(qwen.padTokenId, 151643); // <|endoftext|>
  assert.deepEqual(qwen.encode("<|im_start|>user", { addSpecialTokens: false }), [151644, qwen.tokenToId("user")]);
  const ds = load(folder("llama", "deepseek_v3"));
  assert.equal(ds.bosTokenId, 0);
  assert.equal(ds.eosTokenId, 1);
  assert.equal(ds.padTokenId, 1);
});

test("DeepSeek-R1 chat template: reasoning cut from earlier turns, generation prompt opens <think>", () => {
  const tok = load(folder("llama", "deepseek_v3"));
  const messages: ChatMessage[] = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
    { role: "assistant", content: "<think>\nThey greet me.\n</think>\n\nHello!" },
    { role: "user", content: "2+2?" },
  ];
  const bos = "<｜begin▁of▁sentence｜>";
  assert.equal(
    tok.applyChatTemplate(messages, { addGenerationPrompt: true }),
    `${bos}Be brief.<｜User｜>Hi<｜Assistant｜>\n\nHello!<｜end▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜><think>\n`,
  );
  assert.equal(tok.applyChatTemplate(messages.slice(0, 2)), `${bos}Be brief.<｜User｜>Hi`);
  // The chat ids start with the bos token written by the template, once.
  const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
  assert.equal(ids[0], 0);
  assert.equal(ids.filter((id) => id === 0).length, 1);
  assert.equal(tok.decode(ids), tok.applyChatTemplate(messages, { addGenerationPrompt: true }));
});

test("Qwen3 chat template: enable_thinking, reasoning of the last turn, tools", () => {
  const tok = load(folder("qwen2", "qwen3"));
  const user: ChatMessage[] = [{ role: "user", content: "Why?" }];
  assert.equal(tok.applyChatTemplate(user, { addGenerationPrompt: true }), "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n");
  assert.equal(
    tok.applyChatTemplate(user, { addGenerationPrompt: true, enableThinking: false }),
    "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
  );
  assert.equal(
    tok.applyChatTemplate([...user, { role: "assistant", content: "Because.", reasoning_content: "Think." }]),
    "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n<think>\nThink.\n</think>\n\nBecause.<|im_end|>\n",
  );
  const tools = [{ type: "function", function: { name: "add", parameters: { type: "object" } } }];
  const withTools = tok.applyChatTemplate(user, { tools, addGenerationPrompt: true });
  assert.ok(withTools.startsWith("<|im_start|>system\n# Tools\n"), withTools);
  assert.ok(withTools.includes('"name": "add"'), withTools);
});

test("chat_template as a list of named templates, and missing templates", () => {
  const files = byteTokenizer("chatml");
  const named = Tokenizer.fromObjects(files.tokenizerJson, {
    ...files.tokenizerConfig,
    chat_template: [
      { name: "default", template: "D{% for m in messages %}{{ m.content }}{% endfor %}" },
      { name: "tool_use", template: "T{{ tools | length }}" },
      { name: "rag", template: "R" },
    ],
  });
  assert.equal(named.applyChatTemplate([{ role: "user", content: "x" }]), "Dx");
  assert.equal(named.applyChatTemplate([{ role: "user", content: "x" }], { tools: [{}, {}] }), "T2");
  assert.equal(named.applyChatTemplate([], { templateName: "rag" }), "R");
  assert.throws(
    () => named.applyChatTemplate([], { templateName: "nope" }),
    /no chat template named "nope" \(have default, tool_use, rag, qwen, chatml, llama3, deepseekr1\)/,
  );
  const none = Tokenizer.fromObjects(files.tokenizerJson, { ...files.tokenizerConfig, chat_template: undefined });
  assert.equal(none.hasChatTemplate, false);
  assert.throws(() => none.applyChatTemplate([{ role: "user", content: "x" }]), /tokenizer_config.json: the tokenizer has no chat_template/);
  const failing = Tokenizer.fromObjects(files.tokenizerJson, { ...files.tokenizerConfig, chat_template: "{{ raise_exception('only user turns') }}" });
  assert.throws(() => failing.applyChatTemplate([]), /chat template "default" failed: only user turns/);
  assert.throws(() => Tokenizer.fromObjects(files.tokenizerJson, { ...files.tokenizerConfig, eos_token: "<nope>" }), /eos_token "<nope>" is not a token/);
  assert.throws(() => Tokenizer.fromObjects(files.tokenizerJson, { ...files.tokenizerConfig, eos_token: undefined }), /no "eos_token"/);
});

test("a chat_template.jinja file overrides tokenizer_config's template; missing tokenizer.json is explained", () => {
  const dir = path.join(root, "jinja");
  fs.mkdirSync(dir);
  const files = byteTokenizer("chatml");
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(files.tokenizerJson));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(files.tokenizerConfig));
  fs.writeFileSync(path.join(dir, "chat_template.jinja"), "J{{ messages | length }}");
  assert.equal(Tokenizer.fromDir(dir).applyChatTemplate([{ role: "user", content: "a" }]), "J1");
  const empty = path.join(root, "empty");
  fs.mkdirSync(empty);
  assert.throws(() => Tokenizer.fromDir(empty), /no tokenizer.json/);
});

test("damaged tokenizer files: errors name both files, without library internals or huge token text", () => {
  const dir = path.join(root, "damaged");
  createTinyModel({ arch: "qwen2", out: dir, seed: 1, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1 });
  const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify({ ...tj, added_tokens: {} }));
  assert.throws(
    () => Tokenizer.fromDir(dir),
    (e: Error) =>
      /tokenizer\.json: cannot build the tokenizer \(with .*tokenizer_config\.json\): a field is missing or has the wrong type/.test(e.message) &&
      e.cause instanceof TypeError,
  );
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tj));
  const tc = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ ...tc, eos_token: "y".repeat(100_000) }));
  assert.throws(
    () => Tokenizer.fromDir(dir),
    (e: Error) => e.message.length < 500 && /tokenizer_config\.json: eos_token "y{40}…" is not a token of/.test(e.message),
  );
});
