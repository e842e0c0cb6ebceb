/** Tiny models and random adapters for the export tests, in temporary folders removed after each test file. */
import { after } from "node:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RopeScaling } from "../../sdk/io/config";
import { createTinyModel } from "../../sdk/io/tiny";
import { loraModules, makeLoraConfig, type Adapter } from "../../sdk/models/lora";
import { openModel, type BaseModel } from "../../sdk/models/model";
import { Generator } from "../../sdk/infer/generate";
import { Rng } from "../../sdk/util/random";

const made: string[] = [];
after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under os.tmpdir(). */
export function tempDir(prefix = "tunelab-export-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/**
 * A tiny Llama or Qwen2 whose matrices have rows of 64 or 128 values (whole Q8_0/Q4_0 blocks of 32) and weights
 * large enough (std 0.2) that its next-token choices are clear-cut rather than near ties.
 */
export function tinyModel(arch: "llama" | "qwen2", options: { tied?: boolean; seed?: number; ropeScaling?: RopeScaling } = {}): BaseModel {
  const dir = tempDir(`tunelab-export-${arch}-`);
  createTinyModel({
    arch,
    out: dir,
    seed: options.seed ?? 3,
    ropeScaling: options.ropeScaling ?? null,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    initStd: 0.2,
    tieWordEmbeddings: options.tied ?? false,
  });
  return openModel(dir);
}

/** A LoRA adapter on every linear with random A and B (PEFT starts B at zero; here the merge must change the model). */
export function randomAdapter(model: BaseModel, seed = 7, dora = false): Adapter {
  const config = { ...makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear" }), useDora: dora };
  const rng = new Rng(seed);
  const lora: Adapter["lora"] = {};
  for (const m of loraModules(model.config, config)) {
    lora[m.path] = {
      A: Float32Array.from({ length: m.rank * m.inFeatures }, () => rng.normal() * 0.2),
      B: Float32Array.from({ length: m.outFeatures * m.rank }, () => rng.normal() * 0.2),
      rank: m.rank,
      inFeatures: m.inFeatures,
      outFeatures: m.outFeatures,
      // DoRA's magnitudes away from their start (the row norms), so the merge's rescaling shows.
      ...(dora ? { magnitude: Float32Array.from({ length: m.outFeatures }, () => 0.5 + rng.next()) } : {}),
    };
  }
  return { config, lora, modulesToSave: {} };
}

/** tunelab's own greedy continuation of `prompt` (the adapter applied in the graph, not merged), ignoring EOS. */
export async function tunelabGreedy(model: BaseModel, adapter: Adapter | null, prompt: readonly number[], maxNewTokens: number): Promise<number[]> {
  const g = new Generator(model, { lora: adapter });
  try {
    return (await g.generate(prompt, { maxNewTokens, doSample: false, eosTokenIds: [] })).tokens;
  } finally {
    await g.release();
  }
}

/** tunelab's next-token logits after each row of `rows` (equal lengths, no padding), adapter applied in the graph. */
export async function tunelabLastLogits(model: BaseModel, adapter: Adapter | null, rows: readonly (readonly number[])[]): Promise<Float32Array[]> {
  const g = new Generator(model, { lora: adapter });
  try {
    return (await g.forward({ inputIds: rows })).logits;
  } finally {
    await g.release();
  }
}

/** Index of the largest value. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** A real dynamic import (tsc's CommonJS output would turn `import()` into require), for ESM-only packages. */
export const importEsm = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<unknown>;

interface TjsTensor {
  data: BigInt64Array;
}
interface TjsModule {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string };
  Tensor: new (type: string, data: BigInt64Array, dims: number[]) => unknown;
  AutoModelForCausalLM: {
    from_pretrained(
      name: string,
      options: Record<string, unknown>,
    ): Promise<{ generate(o: Record<string, unknown>): Promise<TjsTensor>; dispose(): Promise<unknown> }>;
  };
}

/** transformers.js' greedy continuation of `prompt` from the folder `dir`, loaded from disk only. */
export async function transformersJsGreedy(dir: string, prompt: readonly number[], maxNewTokens: number): Promise<number[]> {
  const tjs = (await importEsm("@huggingface/transformers")) as TjsModule;
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = path.dirname(dir);
  // Optimum's layout keeps model.onnx at the top of the folder; transformers.js looks in onnx/ unless told.
  const model = await tjs.AutoModelForCausalLM.from_pretrained(path.basename(dir), { subfolder: "", dtype: "fp32", device: "cpu" });
  try {
    const ids = new tjs.Tensor("int64", BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
    const mask = new tjs.Tensor("int64", new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    const out = await model.generate({ input_ids: ids, attention_mask: mask, max_new_tokens: maxNewTokens, do_sample: false, eos_token_id: null });
    return Array.from(out.data, Number).slice(prompt.length);
  } finally {
    await model.dispose();
  }
}
