/**
 * `npm run bench:serve -- [--model DIR] [--requests 96] [--concurrency 16] [--max-tokens 32] [--device cpu]`:
 * throughput of `tunelab serve` under concurrent load, with batching (--max-batch-size = concurrency) and one
 * request at a time (--max-batch-size 1, same load), through HTTP with the openai client. Every request asks for
 * exactly max_tokens tokens (ignore_eos), greedy. Without --model a small random Qwen2 (hidden 256, 4 layers) is
 * written to a temporary folder. Prints both rates, their ratio and a JSON line.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import OpenAI from "openai";
import { serve } from "../sdk/infer/server";
import { createTinyModel } from "../sdk/io/tiny";
import { openModel } from "../sdk/models/model";
import type { Device } from "../sdk/runtime/device";

function args(): { model?: string; requests: number; concurrency: number; maxTokens: number; device: Device } {
  const a = process.argv.slice(2);
  const get = (k: string) => {
    const i = a.indexOf(`--${k}`);
    return i >= 0 ? a[i + 1] : undefined;
  };
  return {
    model: get("model"),
    requests: Number(get("requests") ?? 96),
    concurrency: Number(get("concurrency") ?? 16),
    maxTokens: Number(get("max-tokens") ?? 32),
    device: (get("device") ?? "cpu") as Device,
  };
}

/** Runs `requests` completions, `concurrency` at a time; returns seconds and generated tokens. */
async function load(url: string, model: string, o: ReturnType<typeof args>): Promise<{ seconds: number; tokens: number }> {
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "bench", maxRetries: 0 });
  let next = 0;
  let tokens = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < o.requests) {
      const i = next++;
      const r = await openai.completions.create({
        model,
        prompt: `Request number ${i} says`,
        max_tokens: o.maxTokens,
        temperature: 0,
        ignore_eos: true,
      } as never);
      tokens += (r as unknown as OpenAI.Completion).usage!.completion_tokens;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { seconds: (performance.now() - start) / 1000, tokens };
}

async function main(): Promise<void> {
  const o = args();
  const tmp = o.model ? null : fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-bench-serve-"));
  try {
    const dir = o.model ?? path.join(tmp!, "model");
    if (tmp) createTinyModel({ arch: "qwen2", out: dir, seed: 1, hiddenSize: 256, numLayers: 4, numHeads: 8, numKvHeads: 2 });
    const model = openModel(dir);
    const rows: { mode: string; maxBatchSize: number; seconds: number; tokens: number; tokensPerSecond: number; requestsPerSecond: number }[] = [];
    for (const [mode, maxBatchSize] of [
      ["batched", o.concurrency],
      ["one at a time", 1],
    ] as const) {
      const server = await serve(model, { port: 0, maxBatchSize, device: o.device, servedModelName: "bench" });
      await load(server.url, "bench", { ...o, requests: o.concurrency }); // warm-up
      const r = await load(server.url, "bench", o);
      await server.close();
      rows.push({ mode, maxBatchSize, ...r, tokensPerSecond: r.tokens / r.seconds, requestsPerSecond: o.requests / r.seconds });
      console.log(
        `${mode.padEnd(14)} max_batch_size ${String(maxBatchSize).padStart(3)}: ${r.tokens} tokens in ${r.seconds.toFixed(2)} s = ${(r.tokens / r.seconds).toFixed(1)} tokens/s, ${(o.requests / r.seconds).toFixed(2)} requests/s`,
      );
    }
    const ratio = rows[0].tokensPerSecond / rows[1].tokensPerSecond;
    console.log(
      `batched / one at a time: ${ratio.toFixed(2)}x (${o.requests} requests, ${o.concurrency} concurrent, ${o.maxTokens} tokens each, ${model.config.architecture} hidden ${model.config.hiddenSize} x ${model.config.numHiddenLayers} layers, ${o.device})`,
    );
    console.log(JSON.stringify({ bench: "serve", ratio, ...o, rows }));
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
