/** Tiny models and adapters for the server tests, written by tunelab itself into a temporary folder. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import OpenAI from "openai";
import { createTinyModel, type TinyModelOptions } from "../../sdk/io/tiny";
import { loraModules, makeLoraConfig, saveAdapter, type Adapter } from "../../sdk/models/lora";
import { openModel, type BaseModel } from "../../sdk/models/model";
import { Rng } from "../../sdk/util/random";

/** A temporary folder and its removal. */
export function tempRoot(prefix: string): { root: string; remove: () => void } {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** A tiny random model folder, opened. */
export function tinyModel(root: string, name: string, options: Partial<Omit<TinyModelOptions, "out">> = {}): BaseModel {
  const dir = path.join(root, name);
  createTinyModel({ arch: "qwen2", seed: 21, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.2, ...options, out: dir });
  return openModel(dir);
}

/** A PEFT adapter with random A and B on q/v (B random, so that it changes the output), saved to `dir`; SEQ_CLS with a score head when `labels` are given. */
export function randomAdapter(model: BaseModel, dir: string, seed: number, labels?: string[]): Adapter {
  const config = makeLoraConfig({
    r: 4,
    loraAlpha: 8,
    targetModules: ["q_proj", "v_proj"],
    ...(labels ? { taskType: "SEQ_CLS", modulesToSave: ["score"] } : {}),
  });
  const rng = new Rng(seed);
  const random = (n: number, std: number) => Float32Array.from({ length: n }, () => rng.normal() * std);
  const lora: Adapter["lora"] = {};
  for (const m of loraModules(model.config, config)) {
    lora[m.path] = {
      rank: m.rank,
      inFeatures: m.inFeatures,
      outFeatures: m.outFeatures,
      A: random(m.rank * m.inFeatures, 0.3),
      B: random(m.outFeatures * m.rank, 0.3),
    };
  }
  const hidden = model.config.hiddenSize;
  const adapter: Adapter = {
    config,
    lora,
    modulesToSave: labels ? { "score.weight": { shape: [labels.length, hidden], data: random(labels.length * hidden, 0.5) } } : {},
  };
  saveAdapter(dir, adapter);
  if (labels) writeFileSync(path.join(dir, "labels.json"), JSON.stringify({ id2label: Object.fromEntries(labels.map((l, i) => [i, l])) }));
  return adapter;
}

/** The official OpenAI client pointed at a tunelab server. */
export function client(url: string, apiKey = "unused", maxRetries = 0): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries });
}

/** The fields of a server response the tests read (an error, a /predict answer). */
export interface ResponseJson {
  error?: { message: string; type: string; param: string | null; code: string | null };
  model?: string;
  text?: string;
  finish_reason?: string;
  label?: string;
  score?: number;
  scores?: { label: string; score: number }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** POSTs a raw body (for requests the client would not send) and returns status and parsed JSON. */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<{ status: number; json: ResponseJson }> {
  const res = await fetch(url, { method: "POST", body, headers });
  const text = await res.text();
  let json: ResponseJson;
  try {
    json = JSON.parse(text) as ResponseJson;
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}
