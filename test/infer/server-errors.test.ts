import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { serve, type ServerHandle } from "../../sdk/infer/server";
import type { BaseModel } from "../../sdk/models/model";
import { client, post, tempRoot, tinyModel, type ResponseJson } from "./server-helpers";

const tmp = tempRoot("tunelab-serve-errors-");
let model: BaseModel;
let server: ServerHandle;
const messages = [{ role: "user" as const, content: "hi" }];

before(async () => {
  model = tinyModel(tmp.root, "tiny", { maxPositionEmbeddings: 64 });
  server = await serve(model, { port: 0, maxTokens: 50, maxBodyBytes: 4000 });
});
after(async () => {
  await server?.close();
  tmp.remove();
});

/** Asserts an OpenAI-shaped error body with a message (and the param and code when given). */
function assertError(json: ResponseJson, want: { type?: string; param?: string | null; code?: string | null; message?: RegExp }): void {
  const error = json.error;
  assert.ok(error && typeof error.message === "string", JSON.stringify(json));
  assert.ok(error.message.length > 10, error.message);
  assert.deepEqual(Object.keys(error).sort(), ["code", "message", "param", "type"]);
  if (want.type) assert.equal(error.type, want.type);
  if (want.param !== undefined) assert.equal(error.param, want.param);
  if (want.code !== undefined) assert.equal(error.code, want.code);
  if (want.message) assert.match(error.message, want.message);
}

test("malformed and invalid requests get a 4xx with an OpenAI-shaped error naming the problem", async () => {
  const chatUrl = `${server.url}/v1/chat/completions`;
  const cases: [string, string, number, Parameters<typeof assertError>[1]][] = [
    ["bad JSON", "{", 400, { type: "invalid_request_error", code: "invalid_json", message: /not valid JSON/ }],
    ["empty body", "", 400, { code: "invalid_json" }],
    ["not an object", "[1,2]", 400, { message: /JSON object/ }],
    ["missing messages", JSON.stringify({ model: "tiny" }), 400, { param: "messages", message: /messages is required/ }],
    ["messages not an array", JSON.stringify({ messages: "hi" }), 400, { param: "messages", message: /must be an array/ }],
    ["empty messages", JSON.stringify({ messages: [] }), 400, { param: "messages" }],
    ["bad role", JSON.stringify({ messages: [{ role: "wizard", content: "hi" }] }), 400, { param: "messages[0].role", message: /wizard/ }],
    ["content a number", JSON.stringify({ messages: [{ role: "user", content: 5 }] }), 400, { param: "messages[0].content" }],
    ["temperature a string", JSON.stringify({ messages, temperature: "hot" }), 400, { param: "temperature", message: /number/ }],
    ["temperature too high", JSON.stringify({ messages, temperature: 7 }), 400, { param: "temperature", message: /between 0 and 2/ }],
    ["max_tokens fractional", JSON.stringify({ messages, max_tokens: 1.5 }), 400, { param: "max_tokens", message: /integer/ }],
    ["max_tokens zero", JSON.stringify({ messages, max_tokens: 0 }), 400, { param: "max_tokens" }],
    [
      "max_tokens over the limit",
      JSON.stringify({ messages, max_tokens: 51 }),
      400,
      { param: "max_tokens", code: "max_tokens_exceeded", message: /--max-tokens/ },
    ],
    ["stream not a boolean", JSON.stringify({ messages, stream: "yes" }), 400, { param: "stream" }],
    ["n > 1", JSON.stringify({ messages, n: 2 }), 400, { param: "n" }],
    ["stop of numbers", JSON.stringify({ messages, stop: [1] }), 400, { param: "stop" }],
    ["model not a string", JSON.stringify({ messages, model: 3 }), 400, { param: "model" }],
    [
      "unknown model",
      JSON.stringify({ messages, model: "gpt-4" }),
      404,
      { param: "model", code: "model_not_found", message: /"gpt-4" does not exist.*"tiny"/ },
    ],
    [
      "context exceeded",
      JSON.stringify({ messages: [{ role: "user", content: "x".repeat(40) }], max_tokens: 50 }),
      400,
      { code: "context_length_exceeded", message: /context length of 64/ },
    ],
    ["body too large", JSON.stringify({ messages: [{ role: "user", content: "x".repeat(5000) }] }), 413, { code: "request_too_large", message: /4000 bytes/ }],
  ];
  for (const [what, body, status, want] of cases) {
    const r = await post(chatUrl, body);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
    assertError(r.json, want);
  }
  const form = await post(chatUrl, "a=1", { "content-type": "application/x-www-form-urlencoded" });
  assert.equal(form.status, 415);
  assertError(form.json, { message: /Content-Type: application\/json/ });
  const route = await fetch(`${server.url}/v1/nothing`);
  assert.equal(route.status, 404);
  assertError((await route.json()) as ResponseJson, { code: "not_found" });

  const completions = `${server.url}/v1/completions`;
  assertError((await post(completions, JSON.stringify({ max_tokens: 2 }))).json, { param: "prompt", message: /prompt is required/ });
  assertError((await post(completions, JSON.stringify({ prompt: [[1, 2]] }))).json, { param: "prompt", message: /token arrays/ });
  const predict = await post(`${server.url}/predict`, JSON.stringify({ text: 42 }));
  assert.equal(predict.status, 400);
  assertError(predict.json, { param: "text", message: /text must be a string/ });
  assertError((await post(`${server.url}/predict`, JSON.stringify({}))).json, { param: "text", message: /text is required/ });
});

test("the openai client sees the same errors as APIError with status, param and message", async () => {
  const openai = client(server.url);
  const tooMany = await openai.chat.completions.create({ model: "tiny", messages, max_tokens: 1000 }).catch((e: unknown) => e);
  assert.ok(tooMany instanceof OpenAI.BadRequestError);
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.param, "max_tokens");
  assert.match(tooMany.message, /max_tokens is 1000, more than this server allows \(50/);
  const unknown = await openai.chat.completions.create({ model: "nope", messages }).catch((e: unknown) => e);
  assert.ok(unknown instanceof OpenAI.NotFoundError);
  assert.equal(unknown.code, "model_not_found");
  const streamed = await openai.chat.completions.create({ model: "tiny", messages, max_tokens: 1000, stream: true }).catch((e: unknown) => e);
  assert.ok(streamed instanceof OpenAI.BadRequestError, "a bad streaming request fails before the stream starts");
});

test("API key: /v1 and /predict need Authorization: Bearer <key> (401 otherwise); /health stays open", async () => {
  const secured = await serve(model, { port: 0, apiKey: "s3cret" });
  try {
    const none = await post(`${secured.url}/v1/chat/completions`, JSON.stringify({ messages, max_tokens: 2 }));
    assert.equal(none.status, 401);
    assertError(none.json, { code: "invalid_api_key", message: /missing API key.*Bearer/ });
    const wrong = await client(secured.url, "guess")
      .chat.completions.create({ model: "tiny", messages, max_tokens: 2 })
      .catch((e: unknown) => e);
    assert.ok(wrong instanceof OpenAI.AuthenticationError);
    assert.equal(wrong.status, 401);
    assert.match(wrong.message, /incorrect API key/);
    assert.equal((await post(`${secured.url}/predict`, JSON.stringify({ text: "a" }))).status, 401);
    const ok = await client(secured.url, "s3cret").chat.completions.create({ model: "tiny", messages, max_tokens: 2 });
    assert.equal(ok.choices.length, 1);
    assert.equal((await fetch(`${secured.url}/health`)).status, 200);
  } finally {
    await secured.close();
  }
});

test("a full queue answers 429; a client that goes away frees its place in the batch", async () => {
  const small = await serve(tinyModel(tmp.root, "tiny-long"), { port: 0, maxBatchSize: 1, maxQueue: 1, servedModelName: "tiny" });
  try {
    const openai = client(small.url);
    // A runs (a long stream), B waits in the queue, C finds the queue full.
    const abort = new AbortController();
    const a = await openai.chat.completions.create({ model: "tiny", messages, max_tokens: 2000 - 40, stream: true, ignore_eos: true } as never, {
      signal: abort.signal,
    });
    const iterator = (a as unknown as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await iterator.next(); // the first chunk: A is generating
    const b = openai.chat.completions.create({ model: "tiny", messages, max_tokens: 3, temperature: 0 });
    for (let i = 0; i < 200 && !/^tunelab_queue_waiting\{model="tiny"\} 1$/m.test(await (await fetch(`${small.url}/metrics`)).text()); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const c = await openai.chat.completions.create({ model: "tiny", messages, max_tokens: 3 }).catch((e: unknown) => e);
    assert.ok(c instanceof OpenAI.RateLimitError, String(c));
    assert.equal(c.status, 429);
    assert.equal(c.code, "queue_full");
    assert.match(c.message, /busy.*--max-queue/);
    abort.abort(); // A's client leaves: its row ends at the next step and B runs
    assert.equal((await b).choices.length, 1);
    // A stopped when its client left, long before its 1960 tokens (the count includes B's 3 at most).
    const generated = Number(/^tunelab_generation_tokens_total\{model="tiny"\} (\d+)$/m.exec(await (await fetch(`${small.url}/metrics`)).text())?.[1]);
    assert.ok(generated >= 1 && generated < 1000, `generated ${generated} tokens`);
  } finally {
    await small.close();
  }
});

test("a port in use fails start-up with a message naming --port", async () => {
  await assert.rejects(serve(model, { port: server.port }), new RegExp(`port ${server.port} on 127\\.0\\.0\\.1 is in use; pick another with --port`));
});
