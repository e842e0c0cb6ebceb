/**
 * A LoRA adapter merged into its base model and written as a plain Hugging Face model folder (what PEFT's
 * merge_and_unload + save_pretrained gives): every adapted linear becomes W + scaling * B @ A (for DoRA,
 * m / ||W + scaling * B @ A|| * (W + scaling * B @ A) row by row), stored in the checkpoint's own dtype; every other
 * tensor and file is copied unchanged.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { openWeights, SHARD_INDEX_NAME, Tensor, TensorInput, toFloat32, toFloat64, writeModelWeights } from "../io/safetensors";
import { LoraSource, mergeModuleInto, resolveLora, type SavedParam } from "./lora";
import type { BaseModel } from "./model";

/** Options of writeMergedModel. */
export interface MergeOptions {
  /** Replace an existing folder at outDir (default false: an existing folder is an error). */
  overwrite?: boolean;
  /** Fully trained parameters to store as they are, e.g. a classifier's "score.weight" (PEFT modules_to_save). */
  modulesToSave?: Readonly<Record<string, SavedParam>>;
  /** Shard the weights above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
}

/** What writeMergedModel wrote. */
export interface MergeResult {
  dir: string;
  /** The weight names that were changed by a LoRA merge. */
  merged: string[];
  /** Files copied from the base folder. */
  copied: string[];
}

/** Files of a model folder that are weights (rewritten, never copied). */
function isWeightFile(name: string): boolean {
  return /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf)$/.test(name) || name === SHARD_INDEX_NAME || name === "pytorch_model.bin.index.json";
}

/**
 * Writes base + LoRA as a HF model folder at `outDir`: config.json, model.safetensors (sharded when large) and
 * the base folder's other files (tokenizer, generation_config, chat template, ...). The folder is assembled
 * beside `outDir` and renamed into place, so `outDir` is never left half-written.
 */
export function writeMergedModel(base: BaseModel, lora: LoraSource, outDir: string, options: MergeOptions = {}): MergeResult {
  const out = path.resolve(outDir);
  if (out === base.dir) throw new Error(`writeMergedModel: outDir ${out} is the base model's own folder; choose another`);
  if (fs.existsSync(out) && !options.overwrite) throw new Error(`writeMergedModel: ${out} already exists; pass overwrite: true to replace it`);
  const state = resolveLora(base.config, lora);
  const byWeight = new Map(state.modules.map((m) => [`${m.path}.weight`, m]));

  const source = openWeights(base.dir);
  const tensors: Record<string, TensorInput> = {};
  const merged: string[] = [];
  try {
    for (const name of byWeight.keys()) {
      if (!source.has(name)) throw new Error(`${source.path}: no tensor "${name}" to merge the LoRA module into`);
    }
    for (const name of source.names()) {
      const t: Tensor = source.read(name);
      const m = byWeight.get(name);
      if (!m) {
        tensors[name] = { dtype: t.dtype, shape: t.shape, data: t.data };
        continue;
      }
      if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") {
        throw new Error(`${source.path}: "${name}" has dtype ${t.dtype}; only float weights can take a LoRA merge`);
      }
      if (t.shape.length !== 2 || t.shape[0] !== m.outFeatures || t.shape[1] !== m.inFeatures) {
        throw new Error(`${source.path}: "${name}" is [${t.shape}] but the LoRA module is ${m.inFeatures} -> ${m.outFeatures}`);
      }
      // Sum in float32 (float64 for F64) and round once to the stored dtype; the writer converts F16/BF16.
      const w = t.dtype === "F64" ? toFloat64(t) : Float32Array.from(toFloat32(t));
      mergeModuleInto(w, m, state);
      tensors[name] = { dtype: t.dtype, shape: t.shape, data: w };
      merged.push(name);
    }
  } finally {
    source.close();
  }
  for (const [name, p] of Object.entries(options.modulesToSave ?? {})) {
    const existing = tensors[name];
    tensors[name] = { dtype: existing && existing.dtype !== "F64" ? existing.dtype : "F32", shape: p.shape, data: p.data };
  }

  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.merging-${process.pid}-${Date.now().toString(36)}`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.mkdirSync(tmp);
  const copied: string[] = [];
  try {
    writeModelWeights(tmp, tensors, { maxShardBytes: options.maxShardBytes });
    for (const entry of fs.readdirSync(base.dir, { withFileTypes: true })) {
      if (!entry.isFile() || entry.name.startsWith(".") || isWeightFile(entry.name)) continue;
      fs.copyFileSync(path.join(base.dir, entry.name), path.join(tmp, entry.name));
      copied.push(entry.name);
    }
    if (!copied.includes("config.json")) throw new Error(`${base.dir}: no config.json to copy`);
    if (fs.existsSync(out)) {
      const old = `${tmp}.old`;
      fs.renameSync(out, old);
      fs.renameSync(tmp, out);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, out);
    }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { dir: out, merged, copied: copied.sort() };
}
