import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createTinyModel, TinyModelOptions } from "../../sdk/io/tiny";
import { BaseModel, openModel } from "../../sdk/models/model";
import { LoraState, loraModules, loraTrainables, makeLoraConfig } from "../../sdk/models/lora";
import { causalLMForward } from "../../sdk/models/tasks";
import { compileEval, forwardNames as names } from "../../sdk/models/forward";
import type { HostTensor, RuntimeTensor } from "../../sdk/runtime/session";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import { Rng } from "../../sdk/util/random";
import { applyRepetitionPenalty, applyTopK, applyTopP, selectToken } from "../../sdk/infer/sampling";
import { Generator } from "../../sdk/infer/generate";
import { chat, promptOpensThinking, ReplyPart, ReplyStream, splitReasoning } from "../../sdk/infer/chat";
import { Tokenizer } from "../../sdk/io/tokenizer";
import { tinyTokenizer } from "../../sdk/io/tiny-tokenizers";

const root = mkdtempSync(path.join(tmpdir(), "tunelab-generate-"));
after(() => rmSync(root, { recursive: true, force: true }));

function tinyModel(name: string, options: Omit<TinyModelOptions, "out" | "seed">): BaseModel {
  const dir = path.join(root, name);
  createTinyModel({ seed: 21, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.2, ...options, out: dir });
  return openModel(dir);
}

/** A LoRA on every linear with random A and B (B is zero at PEFT's init, which would make the adapter a no-op). */
function randomLora(model: BaseModel, seed: number): LoraState {
  const modules = loraModules(model.config, makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear" }));
  const rng = new Rng(seed);
  const tensors = new Map(
    loraTrainables(modules, seed).map((t) => [t.name, t.name.endsWith("lora_B") ? Float32Array.from(t.init, () => rng.normal() * 0.2) : t.init]),
  );
  return { modules, tensors };
}

const PROMPT_TEXT = "The quick brown fox";
const noEos = { eosTokenIds: [] as number[] };

for (const arch of ["llama", "qwen2"] as const) {
  const model = tinyModel(arch, { arch, tieWordEmbeddings: arch === "qwen2" });
  const lora = randomLora(model, 4);
  const prompt = model.tokenizer.encode(PROMPT_TEXT);

  test(`${arch}: greedy with the KV cache gives exactly the tokens of full recomputation (LoRA applied)`, async () => {
    const gen = new Generator(model, { lora });
    const cached = await gen.generate(prompt, { doSample: false, maxNewTokens: 24, ...noEos });
    const full = await gen.generate(prompt, { doSample: false, maxNewTokens: 24, useCache: false, ...noEos });
    assert.equal(cached.tokens.length, 24);
    assert.equal(cached.finishReason, "length");
    assert.equal(cached.promptTokens, prompt.length);
    assert.deepEqual(cached.tokens, full.tokens);
    assert.ok(new Set(cached.tokens).size > 1, `degenerate output ${cached.tokens}`);

    // The adapter really takes part: the same prompt without it gives other logits.
    const plain = new Generator(model);
    const [withLora, without] = [(await gen.forward({ inputIds: [prompt] })).logits[0], (await plain.forward({ inputIds: [prompt] })).logits[0]];
    assert.ok(maxAbsDiff(withLora, without) > 1e-2, "LoRA did not change the logits");
    await Promise.all([gen.release(), plain.release()]);
  });

  test(`${arch}: logits of the KV-cache path equal the training decoder's for every position (max abs diff < 1e-4)`, async () => {
    const seq = [...prompt, 7, 200, 33, 65, 101, 9];
    // The training graph: causal-LM eval with LoRA tensors fed as parameters, logits for all positions.
    const trainable = [...lora.tensors].map(([name, data]) => ({ name, shape: shapeOf(lora, name), init: data }));
    const session = await sessionForGraph(
      compileEval(causalLMForward({ config: model.config, weights: model.weights, lora: lora.modules, loraDropout: 0 }, { logits: true }), trainable),
    );
    const int64 = (row: number[]) => ({ dtype: "int64" as const, shape: [1, row.length], data: BigInt64Array.from(row.map(BigInt)) });
    const feeds: Record<string, HostTensor> = { input_ids: int64(seq), attention_mask: int64(seq.map(() => 1)), labels: int64(seq) };
    for (const t of trainable) feeds[names.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
    const reference = (await session.run(feeds, ["logits"])).logits.data as Float32Array;
    await session.release();
    const vocab = model.config.vocabSize;
    const at = (pos: number) => reference.subarray(pos * vocab, (pos + 1) * vocab);

    const gen = new Generator(model, { lora });
    const split = 5;
    let step = await gen.forward({ inputIds: [seq.slice(0, split)] });
    let worst = maxAbsDiff(step.logits[0], at(split - 1));
    for (let pos = split; pos < seq.length; pos++) {
      step = await gen.forward({ inputIds: [[seq[pos]]] }, step.cache);
      assert.equal(step.cache.length, pos + 1);
      worst = Math.max(worst, maxAbsDiff(step.logits[0], at(pos)));
    }
    assert.ok(worst < 1e-4, `max abs logit difference ${worst}`);
    await gen.release();
  });
}

test("batched prompts (left padding) give each prompt's own greedy continuation, with and without the cache", async () => {
  const model = tinyModel("batch-llama", { arch: "llama" });
  const gen = new Generator(model, { lora: randomLora(model, 9) });
  const prompts = [model.tokenizer.encode("Hello there, friend"), model.tokenizer.encode("Hi")];
  const opts = { doSample: false, maxNewTokens: 12, ...noEos };
  const batched = await gen.generate(prompts, opts);
  const batchedFull = await gen.generate(prompts, { ...opts, useCache: false });
  for (let i = 0; i < prompts.length; i++) {
    const single = await gen.generate(prompts[i], opts);
    assert.deepEqual(batched[i].tokens, single.tokens, `row ${i}`);
    assert.deepEqual(batchedFull[i].tokens, single.tokens, `row ${i} without cache`);
  }
  await gen.release();
});

test("the KV cache stays where onnxruntime writes it: two host buffers alternate, and a cache is extended once", async () => {
  const model = tinyModel("kv-buffers", { arch: "qwen2" });
  const gen = new Generator(model);
  const buffers: ArrayBufferLike[] = [];
  let step = await gen.forward({ inputIds: [[5, 6, 7]] });
  for (let pos = 3; pos < 8; pos++) {
    buffers.push(((step.cache.input("key", 1) as RuntimeTensor).inner.data as Float32Array).buffer);
    const before = step.cache;
    step = await gen.forward({ inputIds: [[pos + 10]] }, before);
    assert.throws(() => before.input("key", 0), /already extended/);
    await assert.rejects(gen.forward({ inputIds: [[1]] }, before), /already extended/);
  }
  // Passes write into the buffer two passes back: no new cache array per token, and no copy of one in JavaScript.
  assert.notEqual(buffers[0], buffers[1]);
  for (let i = 2; i < buffers.length; i++) assert.equal(buffers[i], buffers[i - 2], `pass ${i}`);
  await gen.release();
});

test("a batch's cache cut to some rows continues exactly as those rows' own caches", async () => {
  const model = tinyModel("kv-select", { arch: "llama" });
  const gen = new Generator(model);
  const both = await gen.forward({
    inputIds: [
      [5, 6, 7],
      [8, 9, 10],
    ],
  });
  const cut = await both.cache.selectRows([1]);
  assert.throws(() => both.cache.input("key", 0), /already extended/);
  assert.throws(() => cut.input("key", 5), RangeError);
  const after = await gen.forward({ inputIds: [[11]] }, cut);
  const alone = await gen.forward({ inputIds: [[11]] }, (await gen.forward({ inputIds: [[8, 9, 10]] })).cache);
  assert.ok(maxAbsDiff(after.logits[0], alone.logits[0]) < 1e-5);
  await gen.release();
});

const hasVulkan = existsSync("/usr/share/vulkan/icd.d") && readdirSync("/usr/share/vulkan/icd.d").length > 0;

test(
  "on webgpu the KV cache stays in GPU memory between tokens, and greedy tokens equal the cpu's",
  { skip: hasVulkan ? false : "no Vulkan driver installed" },
  async () => {
    const model = tinyModel("kv-webgpu", { arch: "llama" });
    const lora = randomLora(model, 3);
    const [cpu, gpu] = [new Generator(model, { lora }), new Generator(model, { lora, device: "webgpu" })];
    const step = await gpu.forward({ inputIds: [[5, 6, 7]] });
    assert.equal((step.cache.input("value", 0) as RuntimeTensor).location, "gpu-buffer");
    step.cache.dispose();
    const prompts = [model.tokenizer.encode("Hello there, friend"), model.tokenizer.encode("Hi")];
    const opts = { doSample: false, maxNewTokens: 10, ...noEos };
    assert.deepEqual(
      (await gpu.generate(prompts, opts)).map((r) => r.tokens),
      (await cpu.generate(prompts, opts)).map((r) => r.tokens),
    );
    await Promise.all([cpu.release(), gpu.release()]);
  },
);

test("sampling: a seed reproduces its tokens, another seed differs, top_k = 1 equals greedy", async () => {
  const model = tinyModel("sample-qwen2", { arch: "qwen2" });
  const gen = new Generator(model, { lora: randomLora(model, 2) });
  const prompt = model.tokenizer.encode(PROMPT_TEXT);
  const sampling = { doSample: true, temperature: 1.5, topK: 0, topP: 1, maxNewTokens: 20, ...noEos };
  const a = await gen.generate(prompt, { ...sampling, seed: 7 });
  const b = await gen.generate(prompt, { ...sampling, seed: 7 });
  const c = await gen.generate(prompt, { ...sampling, seed: 8 });
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
  assert.equal(a.tokens.length, 20);

  const greedy = await gen.generate(prompt, { doSample: false, maxNewTokens: 20, ...noEos });
  const topK1 = await gen.generate(prompt, { ...sampling, topK: 1, seed: 3 });
  assert.deepEqual(topK1.tokens, greedy.tokens);
  assert.notDeepEqual(a.tokens, greedy.tokens);

  // Without a per-call seed the generator's own seeded stream is used and advances: two calls differ,
  // and a fresh generator with the same seed repeats the first call.
  // generation_config.json supplies the defaults: the tiny model's says do_sample, temperature 0.6, top_p 0.95, top_k 20.
  const defaults = await gen.generate(prompt, { seed: 11, maxNewTokens: 20, ...noEos });
  const explicit = await gen.generate(prompt, { doSample: true, temperature: 0.6, topP: 0.95, topK: 20, seed: 11, maxNewTokens: 20, ...noEos });
  assert.deepEqual(defaults.tokens, explicit.tokens);
  assert.notDeepEqual(
    defaults.tokens,
    (await gen.generate(prompt, { doSample: true, temperature: 1.5, topK: 0, topP: 1, seed: 11, maxNewTokens: 20, ...noEos })).tokens,
  );

  const g1 = await gen.generate(prompt, sampling);
  const g2 = await gen.generate(prompt, sampling);
  assert.notDeepEqual(g1.tokens, g2.tokens);
  const fresh = [new Generator(model, { lora: randomLora(model, 2) }), new Generator(model, { lora: randomLora(model, 2), seed: 1 })];
  const [f0, f1] = [await fresh[0].generate(prompt, sampling), await fresh[1].generate(prompt, sampling)];
  assert.deepEqual(f0.tokens, g1.tokens);
  assert.notDeepEqual(f1.tokens, g1.tokens);
  await Promise.all([gen.release(), ...fresh.map((g) => g.release())]);
});

test("logits processors follow transformers: repetition penalty, top-k, top-p", () => {
  // Repetition penalty: positive scores of seen tokens are divided, negative ones multiplied; repeats count once.
  const scores = Float64Array.from([2, -1, 0.5, -4]);
  applyRepetitionPenalty(scores, [0, 1, 1], 2);
  assert.deepEqual([...scores], [1, -2, 0.5, -4]);

  const k = Float64Array.from([1, 3, 2, 3]);
  applyTopK(k, 3);
  assert.deepEqual([...k], [-Infinity, 3, 2, 3]);
  const k2 = Float64Array.from([1, 3, 2, 3]);
  applyTopK(k2, 2); // ties with the k-th value stay
  assert.deepEqual([...k2], [-Infinity, 3, -Infinity, 3]);

  // probabilities 0.5, 0.3, 0.15, 0.05; top_p 0.75 drops tokens while the ascending cumulative sum is <= 0.25.
  const p = Float64Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
  applyTopP(p, 0.75);
  assert.deepEqual(
    [...p].map((v) => v === -Infinity),
    [false, false, true, true],
  );
  const keepOne = Float64Array.from([0.9, 0.1].map(Math.log));
  applyTopP(keepOne, 0.01);
  assert.deepEqual(
    [...keepOne].map((v) => v === -Infinity),
    [false, true],
  );

  // Greedy with the penalty: a seen leader loses to an unseen runner-up, for positive and for negative logits.
  const greedy = { doSample: false, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1.2 };
  const rng = new Rng(0);
  assert.equal(selectToken([3, 2.9, 0], [0], greedy, rng), 1); // 3 / 1.2 = 2.5 < 2.9
  assert.equal(selectToken([3, 2.4, 0], [0], greedy, rng), 0); // 2.5 > 2.4
  assert.equal(selectToken([-1, -1.1, -5], [0], greedy, rng), 1); // -1 * 1.2 = -1.2 < -1.1
  assert.equal(selectToken([3, 2.9, 0], [0], { ...greedy, repetitionPenalty: 1 }, rng), 0);
});

test("repetition penalty in generate() covers prompt and output tokens, as transformers does", async () => {
  const model = tinyModel("penalty-llama", { arch: "llama" });
  const gen = new Generator(model);
  const prompt = model.tokenizer.encode("abcabcabcabc");
  const penalty = 3;
  const got = await gen.generate(prompt, { doSample: false, repetitionPenalty: penalty, maxNewTokens: 10, ...noEos });
  // The same decoding written out here: full recomputation, the penalty applied by hand to every token seen so far.
  const seq = [...prompt];
  const want: number[] = [];
  for (let i = 0; i < 10; i++) {
    const logits = Array.from((await gen.forward({ inputIds: [seq] })).logits[0]);
    for (const t of new Set(seq)) logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
    const next = logits.indexOf(Math.max(...logits));
    want.push(next);
    seq.push(next);
  }
  assert.deepEqual(got.tokens, want);
  const unpenalised = await gen.generate(prompt, { doSample: false, repetitionPenalty: 1, maxNewTokens: 10, ...noEos });
  assert.notDeepEqual(unpenalised.tokens, got.tokens);
  await gen.release();
});

test("generation stops at an end-of-sequence id and at stop strings", async () => {
  const model = tinyModel("eos-qwen2", { arch: "qwen2" });
  const gen = new Generator(model, { lora: randomLora(model, 5) });
  const prompt = model.tokenizer.encode(PROMPT_TEXT);
  const free = await gen.generate(prompt, { doSample: false, maxNewTokens: 16, ...noEos });
  // Declare the greedy path's 4th token an eos id: generation must stop right before it.
  const eos = free.tokens[3];
  const first = free.tokens.indexOf(eos);
  const stopped = await gen.generate(prompt, { doSample: false, maxNewTokens: 16, eosTokenIds: [eos] });
  assert.equal(stopped.finishReason, "stop");
  assert.deepEqual(stopped.tokens, free.tokens.slice(0, first));

  // The tokenizer's own eos ids are the default.
  assert.deepEqual(model.tokenizer.eosTokenIds.includes(eos), false);
  const byDefault = await gen.generate(prompt, { doSample: false, maxNewTokens: 16 });
  assert.deepEqual(byDefault.tokens, free.tokens.slice(0, byDefault.tokens.length));

  const stop = model.tokenizer.decode(free.tokens.slice(0, 5));
  const byString = await gen.generate(prompt, { doSample: false, maxNewTokens: 16, stopStrings: [stop], ...noEos });
  assert.equal(byString.finishReason, "stop");
  assert.ok(byString.tokens.length <= 5);
  assert.deepEqual(byString.tokens, free.tokens.slice(0, byString.tokens.length));
  assert.ok(model.tokenizer.decode(byString.tokens).includes(stop));

  const none = await gen.generate(prompt, { maxNewTokens: 0 });
  assert.deepEqual([none.tokens, none.finishReason], [[], "length"]);
  await assert.rejects(gen.generate([], {}), /prompt 0 is empty/);
  await assert.rejects(gen.generate(prompt, { topP: 1.5 }), /topP must be in \(0, 1\]/);
  await gen.release();
});

test("splitReasoning separates <think> reasoning from the answer", () => {
  assert.deepEqual(splitReasoning("<think>\nLet me add.\n</think>\n\nIt is 4."), { reasoning: "Let me add.", answer: "It is 4." });
  // R1's template opened the block in the prompt: only the closing tag is generated.
  assert.deepEqual(splitReasoning("Let me add.\n</think>\n\nIt is 4.", true), { reasoning: "Let me add.", answer: "It is 4." });
  assert.deepEqual(splitReasoning("Let me add.\n</think>\n\nIt is 4.", false), { reasoning: "Let me add.", answer: "It is 4." });
  // Cut off while thinking.
  assert.deepEqual(splitReasoning("Let me", true), { reasoning: "Let me", answer: "" });
  assert.deepEqual(splitReasoning("<think>Let me"), { reasoning: "Let me", answer: "" });
  // No reasoning at all.
  assert.deepEqual(splitReasoning("It is 4."), { reasoning: "", answer: "It is 4." });
  assert.deepEqual(splitReasoning("<think>\n\n</think>\n\nIt is 4."), { reasoning: "", answer: "It is 4." });

  assert.equal(promptOpensThinking("<｜User｜>2+2?<｜Assistant｜><think>\n"), true);
  assert.equal(promptOpensThinking("<|im_start|>assistant\n<think>\n\n</think>\n\n"), false);
  assert.equal(promptOpensThinking("<|im_start|>assistant\n"), false);
});

test("chat on a tiny model with the DeepSeek-R1 template: prompt, reasoning split and streaming", async () => {
  const model = tinyModel("r1-qwen2", { arch: "qwen2", tokenizer: "deepseek_v3", tieWordEmbeddings: true, hiddenSize: 16, numHeads: 2, numKvHeads: 1 });
  const gen = new Generator(model, { lora: randomLora(model, 6) });
  const messages = [
    { role: "system", content: "You are terse." },
    { role: "user", content: "What is 2+2?" },
    { role: "assistant", content: "<think>\nadd them\n</think>\n\n4" },
    { role: "user", content: "And 3+3?" },
  ];
  const pieces: [string, string][] = [];
  const reply = await chat(gen, messages, { doSample: false, maxNewTokens: 12, onToken: (d, part) => pieces.push([d, part]) });
  // R1: bos + system, turns, earlier reasoning cut from assistant turns, and a generation prompt that opens <think>.
  assert.equal(
    reply.prompt,
    "<｜begin▁of▁sentence｜>You are terse.<｜User｜>What is 2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>And 3+3?<｜Assistant｜><think>\n",
  );
  assert.equal(reply.finishReason, "length");
  assert.equal(reply.tokens.length, 12);
  assert.equal(reply.text, model.tokenizer.decode(reply.tokens, { skipSpecialTokens: true }));
  // The completion starts inside the reasoning, and a random model does not close it.
  assert.ok(!reply.text.includes("</think>"));
  assert.deepEqual({ reasoning: reply.reasoning, answer: reply.answer }, { reasoning: reply.text.trim(), answer: "" });
  assert.equal(pieces.map(([d]) => d).join(""), reply.text);
  assert.ok(pieces.every(([, part]) => part === "reasoning"));

  // The same tokens as generating from the template's ids directly.
  const ids = model.tokenizer.encode(reply.prompt, { addSpecialTokens: false });
  assert.deepEqual((await gen.generate(ids, { doSample: false, maxNewTokens: 12 })).tokens, reply.tokens);
  await gen.release();
});

test("chat with a template that does not open <think> returns the whole reply as the answer", async () => {
  const model = tinyModel("chatml-qwen2", { arch: "qwen2" });
  const gen = new Generator(model);
  const reply = await chat(gen, [{ role: "user", content: "hi" }], { doSample: false, maxNewTokens: 8, ...noEos });
  assert.equal(reply.prompt, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  assert.equal(reply.reasoning, "");
  assert.equal(reply.answer, reply.text.trim());
  await gen.release();
});

test("ReplyStream streams whole characters and whole think tags, marking reasoning and answer", () => {
  const run = (tokenizer: Tokenizer, text: string, opensInPrompt: boolean) => {
    const pieces: [string, ReplyPart][] = [];
    const stream = new ReplyStream(tokenizer, opensInPrompt, (d, part) => pieces.push([d, part]));
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    assert.ok(ids.length > 8);
    for (const id of ids) stream.push(id);
    stream.finish();
    assert.equal(pieces.map(([d]) => d).join(""), text);
    assert.ok(
      pieces.every(([d]) => !d.includes("\uFFFD")),
      "a piece holds half a character",
    );
    const join = (part: ReplyPart) =>
      pieces
        .filter(([, p]) => p === part)
        .map(([d]) => d)
        .join("");
    return { reasoning: join("reasoning"), answer: join("answer") };
  };
  const byteTok = (() => {
    const f = tinyTokenizer("byte", "qwen2");
    return Tokenizer.fromObjects(f.tokenizerJson, f.tokenizerConfig);
  })();
  // The byte tokenizer: two-byte characters arrive one byte per token; <think> tags are single tokens.
  assert.deepEqual(run(byteTok, "<think>\nLet me see: é.</think>\n\nHi é!", false), { reasoning: "<think>\nLet me see: é.</think>", answer: "\n\nHi é!" });
  assert.deepEqual(run(byteTok, "Just answering é", false), { reasoning: "", answer: "Just answering é" });
  // DeepSeek's tokenizer splits the tags over several tokens; no piece of a tag may leak out as answer.
  const f = tinyTokenizer("deepseek_v3", "qwen2");
  const ds = Tokenizer.fromObjects(f.tokenizerJson, f.tokenizerConfig);
  assert.ok(ds.encode("</think>", { addSpecialTokens: false }).length > 1);
  assert.deepEqual(run(ds, "<think>\nhmm, 2+2</think>\n\nIt is 4.", false), { reasoning: "<think>\nhmm, 2+2</think>", answer: "\n\nIt is 4." });
  assert.deepEqual(run(ds, "hmm, 2+2</think>\n\nIt is 4.", true), { reasoning: "hmm, 2+2</think>", answer: "\n\nIt is 4." });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function shapeOf(lora: LoraState, name: string): number[] {
  const m = lora.modules.find((x) => name.startsWith(x.path + "."))!;
  return name.endsWith("lora_A") ? [m.rank, m.inFeatures] : [m.outFeatures, m.rank];
}
