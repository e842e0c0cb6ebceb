import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Generator, type GenerateRow, type GenerationResult } from "../../sdk/infer/generate";
import { BatchQueue } from "../../sdk/infer/server";
import { tempRoot, tinyModel } from "./server-helpers";

const tmp = tempRoot("tunelab-serve-batching-");
after(() => tmp.remove());
const noEos = { eosTokenIds: [] as number[] };

test("continuous batching: rows joining a running batch (longer and shorter prompts) give their lone tokens", async () => {
  const model = tinyModel(tmp.root, "tiny", { arch: "llama" });
  const gen = new Generator(model);
  const enc = (t: string) => model.tokenizer.encode(t);
  const rows: GenerateRow[] = [
    { prompt: enc("Hello there"), options: { doSample: false, maxNewTokens: 12, ...noEos } },
    { prompt: enc("A much longer prompt than the first one, by far"), options: { doSample: false, maxNewTokens: 5, ...noEos } },
    { prompt: enc("Hi"), options: { doSample: false, maxNewTokens: 9, ...noEos } },
    { prompt: enc("Sampled"), options: { doSample: true, temperature: 1.3, topK: 0, topP: 1, seed: 5, maxNewTokens: 7, ...noEos } },
    { prompt: enc("Zero"), options: { maxNewTokens: 0 } },
  ];
  const alone: GenerationResult[] = [];
  for (const r of rows) alone.push(await gen.generate(r.prompt, r.options));

  // Row 0 starts; rows 1 and 2 join before step 3 (a prompt longer than the cache, then a shorter one), 3 and 4 at step 6.
  const done: number[] = [];
  const withDone = (i: number): GenerateRow => ({ ...rows[i], onDone: () => done.push(i) });
  const steps: number[] = [];
  let step = 0;
  const results = await gen.generateRows([withDone(0)], {
    join: (running) => {
      step++;
      if (step === 3) {
        assert.equal(running, 1);
        return [withDone(1), withDone(2)];
      }
      return step === 6 ? [withDone(3), withDone(4)] : [];
    },
    onStep: (n) => steps.push(n),
  });
  results.forEach((r: GenerationResult, i) => {
    assert.deepEqual(r.tokens, alone[i].tokens, `row ${i}`);
    assert.equal(r.finishReason, alone[i].finishReason);
    assert.equal(r.promptTokens, rows[i].prompt.length);
  });
  assert.deepEqual([...done].sort(), [0, 1, 2, 3, 4]);
  assert.equal(done.indexOf(4) < done.indexOf(0), true, "a row is answered when it ends, not with the batch");
  assert.ok(Math.max(...steps) === 4, `forward passes held ${steps.join(",")} rows`); // rows 0-3 together at their peak
  await gen.release();
});

test("BatchQueue: batches start when idle, take waiting items up to the batch size, answer each as it ends", async () => {
  const sizes: number[] = [];
  const queue = new BatchQueue<number, number>(
    async (batch, take) => {
      sizes.push(batch.length);
      await new Promise((r) => setTimeout(r, 20));
      const more = take(batch.length); // none fit beside a full batch
      for (const e of [...batch, ...more]) e.resolve(e.item * 2);
    },
    { maxBatchSize: 3, maxQueue: 5, name: "m" },
  );
  const first = [1, 2, 3, 4].map((i) => queue.submit(i));
  assert.deepEqual(await Promise.all(first), [2, 4, 6, 8]);
  assert.deepEqual(sizes, [3, 1]);
  const many = queue.submitAll([1, 2, 3, 4, 5]);
  assert.throws(() => queue.submit(6), /busy: 5 requests for model "m" are already waiting/);
  await Promise.all(many);
  const failing = new BatchQueue<number, number>(
    async () => {
      throw new Error("session lost");
    },
    { maxBatchSize: 2, maxQueue: 2, name: "m" },
  );
  await assert.rejects(failing.submit(1), /session lost/);
  await queue.drain();
  assert.throws(() => queue.submit(1), /shutting down/);
});
