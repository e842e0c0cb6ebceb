import { test, after } from "node:test";
import assert from "node:assert/strict";
import { serve } from "../../sdk/infer/server";
import { Generator } from "../../sdk/infer/generate";
import { client, tempRoot, tinyModel } from "./server-helpers";

const tmp = tempRoot("tunelab-serve-load-");
after(() => tmp.remove());

test("load: 200 requests, 16 at a time, through the openai client: no failures, batched, each equal to its lone greedy run", async () => {
  const model = tinyModel(tmp.root, "tiny");
  const server = await serve(model, { port: 0, maxBatchSize: 16 });
  const openai = client(server.url);
  const prompts = Array.from({ length: 200 }, (_, i) => `Request ${i}: ${"abc".repeat(i % 7)}`);
  const gen = new Generator(model);
  const sample = [0, 1, 57, 199];
  const want = new Map<number, string>();
  for (const i of sample) want.set(i, (await gen.generate(model.tokenizer.encode(prompts[i]), { doSample: false, maxNewTokens: 6 + (i % 5) })).text);
  await gen.release();

  const texts: string[] = new Array(prompts.length);
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < prompts.length) {
      const i = next++;
      try {
        const opts = { model: "tiny", prompt: prompts[i], temperature: 0, max_tokens: 6 + (i % 5) };
        if (i % 3 === 0) {
          let text = "";
          for await (const c of await openai.completions.create({ ...opts, stream: true })) text += c.choices[0]?.text ?? "";
          texts[i] = text;
        } else {
          texts[i] = (await openai.completions.create(opts)).choices[0].text;
        }
      } catch (e) {
        failures.push(`${i}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  assert.deepEqual(failures, []);
  for (const i of sample) assert.equal(texts[i], want.get(i), `request ${i}`);

  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
  assert.equal(value('tunelab_requests_total\\{route="/v1/completions",status="200"\\}'), 200);
  // Rows per forward pass: requests shared them (continuous batching keeps the batch near the 16 in flight).
  const rowsPerPass = value("tunelab_batch_size_sum") / value("tunelab_batch_size_count");
  assert.ok(rowsPerPass >= 4, `${rowsPerPass.toFixed(2)} rows per forward pass`);
  await server.close();
});

test("graceful shutdown: close() lets an in-flight stream finish, answers 503 meanwhile, then stops listening", async () => {
  const server = await serve(tinyModel(tmp.root, "tiny-close"), { port: 0, servedModelName: "tiny" });
  const openai = client(server.url);
  const stream = await openai.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 300,
    stream: true,
    stream_options: { include_usage: true },
    ignore_eos: true,
  } as never);
  const iterator = (stream as unknown as AsyncIterable<{ choices: { finish_reason: string | null }[]; usage?: { completion_tokens: number } }>)[
    Symbol.asyncIterator
  ]();
  await iterator.next();
  const closing = server.close();
  const during = await fetch(`${server.url}/health`);
  assert.equal(during.status, 503);
  assert.equal(((await during.json()) as { error: { code: string } }).error.code, "shutting_down");
  let finish: string | null = null;
  let tokens = 0;
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
    finish = r.value.choices[0]?.finish_reason ?? finish;
    tokens = r.value.usage?.completion_tokens ?? tokens;
  }
  assert.equal(finish, "length");
  assert.equal(tokens, 300);
  await closing;
  await assert.rejects(fetch(`${server.url}/health`), /fetch failed/);
});
