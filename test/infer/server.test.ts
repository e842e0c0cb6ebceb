import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import { serve, type ServerHandle } from "../../sdk/infer/server";
import { Generator } from "../../sdk/infer/generate";
import { chat } from "../../sdk/infer/chat";
import { evaluateModel } from "../../sdk/eval/evaluate";
import type { Adapter } from "../../sdk/models/lora";
import type { BaseModel } from "../../sdk/models/model";
import { client, post, randomAdapter, tempRoot, tinyModel } from "./server-helpers";

const tmp = tempRoot("tunelab-serve-");
let model: BaseModel;
let r1: BaseModel;
let sftAdapter: Adapter;
let clsAdapter: Adapter;
let server: ServerHandle;
let r1Server: ServerHandle;
const LABELS = ["billing", "bug", "praise"];
const messages = [
  { role: "system" as const, content: "You are terse." },
  { role: "user" as const, content: "Hello there, how are you?" },
];

before(async () => {
  model = tinyModel(tmp.root, "tiny-chat");
  sftAdapter = randomAdapter(model, path.join(tmp.root, "sft"), 3);
  clsAdapter = randomAdapter(model, path.join(tmp.root, "tickets"), 4, LABELS);
  r1 = tinyModel(tmp.root, "tiny-r1", { tokenizer: "deepseek_v3", tieWordEmbeddings: true, hiddenSize: 16, numHeads: 2, numKvHeads: 1 });
  server = await serve(model, { port: 0, adapters: [path.join(tmp.root, "sft"), { name: "classifier", path: path.join(tmp.root, "tickets") }] });
  r1Server = await serve(r1, { port: 0, servedModelName: "r1" });
});
after(async () => {
  await Promise.all([server?.close(), r1Server?.close()]);
  tmp.remove();
});

const greedy = { doSample: false, maxNewTokens: 16 };

test("GET /v1/models lists the base model and each adapter; /health answers", async () => {
  const list = await client(server.url).models.list();
  assert.deepEqual(
    list.data.map((m) => m.id),
    ["tiny-chat", "sft", "classifier"],
  );
  assert.ok(list.data.every((m) => m.object === "model" && m.owned_by === "tunelab" && Number.isInteger(m.created)));
  assert.deepEqual(server.models[0], "sft"); // an adapter, when given, is the default model
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, "ok");
});

test("chat completion (openai client) equals tunelab's own greedy chat, for the base model and an adapter", async () => {
  const openai = client(server.url);
  for (const [name, lora] of [
    ["tiny-chat", null],
    ["sft", sftAdapter],
  ] as const) {
    const gen = new Generator(model, { lora });
    const want = await chat(gen, messages, greedy);
    await gen.release();
    const got = await openai.chat.completions.create({ model: name, messages, temperature: 0, max_tokens: 16 });
    assert.equal(got.object, "chat.completion");
    assert.equal(got.model, name);
    assert.equal(got.choices.length, 1);
    assert.equal(got.choices[0].message.role, "assistant");
    assert.equal(got.choices[0].message.content, want.answer, name);
    assert.equal(got.choices[0].finish_reason, want.finishReason);
    assert.equal(got.usage?.completion_tokens, want.tokens.length);
    assert.equal(got.usage?.prompt_tokens, model.tokenizer.encode(want.prompt, { addSpecialTokens: false }).length);
    assert.equal(got.usage?.total_tokens, got.usage!.prompt_tokens + got.usage!.completion_tokens);
  }
  // The adapter really is applied: base and adapter answer differently.
  const [a, b] = await Promise.all(["tiny-chat", "sft"].map((m) => openai.chat.completions.create({ model: m, messages, temperature: 0, max_tokens: 16 })));
  assert.notEqual(a.choices[0].message.content, b.choices[0].message.content);
});

test("streamed chat (openai client): chunks as OpenAI defines them, joining to the non-streamed content", async () => {
  const openai = client(server.url);
  const whole = await openai.chat.completions.create({ model: "sft", messages, temperature: 0, max_tokens: 16 });
  const stream = await openai.chat.completions.create({
    model: "sft",
    messages,
    temperature: 0,
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  assert.ok(chunks.length >= 3, `only ${chunks.length} chunks`);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id && c.id.startsWith("chatcmpl-") && c.model === "sft"));
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? "")).join("");
  assert.equal(content, whole.choices[0].message.content);
  const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f !== null);
  assert.deepEqual(finishes, [whole.choices[0].finish_reason]);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, whole.usage);

  // A stop string from inside the answer: both forms end right before it.
  const answer = whole.choices[0].message.content!;
  const stop = answer.slice(4, 6);
  const cut = answer.slice(0, answer.indexOf(stop)).trim();
  const stopped = await openai.chat.completions.create({ model: "sft", messages, temperature: 0, max_tokens: 16, stop: [stop, "never-said"] });
  assert.equal(stopped.choices[0].message.content, cut);
  assert.equal(stopped.choices[0].finish_reason, "stop");
  let streamed = "";
  for await (const c of await openai.chat.completions.create({
    model: "sft",
    messages,
    temperature: 0,
    max_tokens: 16,
    stop: [stop, "never-said"],
    stream: true,
  })) {
    streamed += c.choices[0]?.delta.content ?? "";
  }
  assert.equal(streamed, cut);
});

test("R1 reasoning comes back as reasoning_content, streamed and not, equal to chat()'s split", async () => {
  const gen = new Generator(r1);
  const want = await chat(gen, messages, { doSample: false, maxNewTokens: 12 });
  await gen.release();
  assert.ok(want.reasoning.length > 0, "the R1 template opens <think>, so the reply is reasoning");
  const openai = client(r1Server.url);
  const got = await openai.chat.completions.create({ model: "r1", messages, temperature: 0, max_tokens: 12 });
  const msg = got.choices[0].message as { content: string | null; reasoning_content?: string };
  assert.equal(msg.reasoning_content, want.reasoning);
  assert.equal(msg.content, want.answer);

  const stream = await openai.chat.completions.create({ model: "r1", messages, temperature: 0, max_tokens: 12, stream: true });
  let reasoning = "";
  let content = "";
  for await (const c of stream) {
    const delta = c.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
    reasoning += delta?.reasoning_content ?? "";
    content += delta?.content ?? "";
  }
  assert.equal(reasoning, want.reasoning);
  assert.equal(content, want.answer);
  assert.ok(!reasoning.includes("<think>") && !reasoning.includes("</think>"));
});

test("completions: one or several prompts, streamed or not, equal to greedy generate(); stop strings are cut", async () => {
  const openai = client(server.url);
  const prompts = ["The quick brown fox", "Once upon"];
  const gen = new Generator(model);
  const want = await Promise.all(prompts.map((p) => gen.generate(model.tokenizer.encode(p), greedy)));
  await gen.release();
  const got = await openai.completions.create({ model: "tiny-chat", prompt: prompts, temperature: 0, max_tokens: 16 });
  assert.equal(got.object, "text_completion");
  assert.deepEqual(
    got.choices.map((c) => [c.index, c.text, c.finish_reason]),
    want.map((w, i) => [i, w.text, w.finishReason]),
  );
  assert.equal(got.usage?.completion_tokens, want[0].tokens.length + want[1].tokens.length);

  const stream = await openai.completions.create({ model: "tiny-chat", prompt: prompts, temperature: 0, max_tokens: 16, stream: true });
  const texts = ["", ""];
  for await (const c of stream) for (const ch of c.choices) texts[ch.index] += ch.text;
  assert.deepEqual(texts, [want[0].text, want[1].text]);

  // A stop string taken from the middle of the greedy text: the output ends right before it, streamed or not.
  const full = want[0].text;
  const stop = full.slice(6, 9);
  const cut = full.slice(0, full.indexOf(stop));
  const stopped = await openai.completions.create({ model: "tiny-chat", prompt: prompts[0], temperature: 0, max_tokens: 16, stop });
  assert.equal(stopped.choices[0].text, cut);
  assert.equal(stopped.choices[0].finish_reason, "stop");
  let streamed = "";
  for await (const c of await openai.completions.create({ model: "tiny-chat", prompt: prompts[0], temperature: 0, max_tokens: 16, stop, stream: true })) {
    streamed += c.choices[0]?.text ?? "";
  }
  assert.equal(streamed, cut);
});

test("POST /predict: generated text for a language model; label and scores for a classifier", async () => {
  const gen = new Generator(model, { lora: sftAdapter });
  const want = await gen.generate(model.tokenizer.encode("Ticket: my invoice is wrong"), { doSample: false, maxNewTokens: 10 });
  await gen.release();
  const text = await post(`${server.url}/predict`, JSON.stringify({ text: "Ticket: my invoice is wrong", temperature: 0, max_tokens: 10 }));
  assert.equal(text.status, 200);
  assert.equal(text.json.model, "sft");
  assert.equal(text.json.text, want.text);
  assert.equal(text.json.usage?.completion_tokens, want.tokens.length);

  const texts = ["my invoice is wrong", "the app crashes on start", "great work, thanks!", "refund please"];
  const results = await Promise.all(texts.map((t) => post(`${server.url}/predict`, JSON.stringify({ model: "classifier", text: t }))));
  // The same adapter through tunelab's evaluation (its own forward graph and batching) predicts the same classes.
  const examples = texts.map((t, i) => ({ id: String(i), inputIds: model.tokenizer.encode(t), classLabel: 0 }));
  const e = await evaluateModel({ model, stage: "cls", adapter: clsAdapter }, examples, 2);
  results.forEach((r, i) => {
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.json.scores!.map((s) => s.label),
      LABELS,
    );
    const sum = r.json.scores!.reduce((n, s) => n + s.score, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6, `scores sum to ${sum}`);
    assert.equal(r.json.label, LABELS[e.predictions!.predicted[i]], texts[i]);
    assert.equal(r.json.score, Math.max(...r.json.scores!.map((s) => s.score)));
  });
  assert.ok(new Set(results.map((r) => r.json.label)).size > 1 || results.every((r) => r.json.score! < 0.99), "a degenerate classifier");

  const refused = await client(server.url)
    .chat.completions.create({ model: "classifier", messages })
    .catch((err: unknown) => err);
  assert.equal((refused as { status: number }).status, 400);
  assert.match((refused as Error).message, /sequence classifier.*\/predict/);
});

test("GET /metrics: Prometheus text with requests by route and status, tokens and the latency histogram", async () => {
  await client(server.url).completions.create({ model: "tiny-chat", prompt: "x", max_tokens: 3, temperature: 0, ignore_eos: true } as never);
  await post(`${server.url}/v1/completions`, "{");
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"+.]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
  assert.ok(value('tunelab_requests_total{route="/v1/completions",status="200"}') >= 1);
  assert.equal(value('tunelab_requests_total{route="/v1/completions",status="400"}'), 1);
  assert.ok(value('tunelab_generation_tokens_total{model="tiny-chat"}') >= 3);
  const count = value('tunelab_request_duration_seconds_count{route="/v1/completions"}');
  assert.equal(value('tunelab_request_duration_seconds_bucket{route="/v1/completions",le="+Inf"}'), count);
  assert.ok(count >= 2);
  assert.match(text, /^# TYPE tunelab_request_duration_seconds histogram$/m);
  assert.match(text, /^tunelab_batch_size_count \d+$/m);
});
