/**
 * PEFT adapter folders at the file level, so PEFT, transformers and LLaMA-Factory load what tunelab saves and the
 * other way round: `adapter_config.json` (read and written as a JSON object; its typed form and meaning live in
 * models/lora) and `adapter_model.safetensors` with PEFT's tensor names. PEFT strips the adapter name when
 * saving, so a LoRA pair is `base_model.model.<module>.lora_A.weight` [r, in] and `...lora_B.weight` [out, r],
 * a DoRA module adds its magnitude `base_model.model.<module>.lora_magnitude_vector` [out] (PEFT drops the
 * ".weight" of its DoraLinearLayer when saving), and a `modules_to_save` parameter (e.g. the classification head)
 * is `base_model.model.score.weight`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "./atomic";
import { readJsonObject } from "./config";
import { SafetensorsFile, toFloat32, writeSafetensors, type TensorInput } from "./safetensors";

/** File names of a PEFT adapter folder. */
export const ADAPTER_CONFIG_NAME = "adapter_config.json";
export const ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors";
/** Prefix PEFT puts before every module path (PeftModel -> LoraModel -> the transformers model). */
export const PEFT_PREFIX = "base_model.model.";

/** One tensor as an adapter file holds it, converted to float32. */
export interface SavedParam {
  shape: number[];
  data: Float32Array;
}

/** The tensors of adapter_model.safetensors with PEFT's names taken apart. */
export interface PeftTensors {
  /** LoRA pairs by module path (e.g. "model.layers.0.self_attn.q_proj"): A [r, in], B [out, r], and DoRA's magnitude [out]. */
  lora: Record<string, { A: SavedParam; B: SavedParam; magnitude?: SavedParam }>;
  /** Every other tensor (modules_to_save parameters) by parameter path, e.g. "score.weight". */
  params: Record<string, SavedParam>;
}

/** Where an adapter folder's two files are. */
export function adapterPaths(dir: string): { config: string; weights: string } {
  return { config: path.join(dir, ADAPTER_CONFIG_NAME), weights: path.join(dir, ADAPTER_WEIGHTS_NAME) };
}

/** Reads a folder's adapter_config.json as a JSON object. */
export function readAdapterConfigJson(dir: string): Record<string, unknown> {
  const configPath = adapterPaths(dir).config;
  if (!fs.existsSync(configPath)) throw new Error(`${dir}: not a PEFT adapter folder (no ${ADAPTER_CONFIG_NAME})`);
  return readJsonObject(configPath);
}

/** Reads adapter_model.safetensors, every tensor as float32, checking what the file format itself requires. */
export function readAdapterTensors(dir: string): PeftTensors {
  const weightsPath = adapterPaths(dir).weights;
  if (!fs.existsSync(weightsPath)) {
    const bin = fs.existsSync(path.join(dir, "adapter_model.bin"));
    throw new Error(
      `${dir}: no ${ADAPTER_WEIGHTS_NAME}` +
        (bin ? " (only adapter_model.bin, a pickle file tunelab does not read; re-save it with safe_serialization=True)" : ""),
    );
  }
  const file = SafetensorsFile.open(weightsPath);
  try {
    const halves = new Map<string, { A?: SavedParam; B?: SavedParam; magnitude?: SavedParam }>();
    const params: Record<string, SavedParam> = {};
    for (const name of file.names()) {
      const where = `${weightsPath}: tensor "${name}"`;
      if (!name.startsWith(PEFT_PREFIX)) throw new Error(`${where}: PEFT tensor names start with "${PEFT_PREFIX}"`);
      const rest = name.slice(PEFT_PREFIX.length);
      const t = file.read(name);
      if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") {
        throw new Error(`${where}: dtype ${t.dtype}; adapter tensors must be floating point`);
      }
      const m = /^(.+)\.lora_([AB])\.weight$/.exec(rest);
      if (m) {
        if (t.shape.length !== 2) throw new Error(`${where}: LoRA weights must be 2-D, got shape [${t.shape.join(", ")}]`);
        const entry = halves.get(m[1]) ?? {};
        entry[m[2] as "A" | "B"] = { shape: t.shape, data: toFloat32(t) };
        halves.set(m[1], entry);
        continue;
      }
      const dora = /^(.+)\.lora_magnitude_vector$/.exec(rest);
      if (dora) {
        if (t.shape.length !== 1) throw new Error(`${where}: a DoRA magnitude must be 1-D [out_features], got shape [${t.shape.join(", ")}]`);
        const entry = halves.get(dora[1]) ?? {};
        entry.magnitude = { shape: t.shape, data: toFloat32(t) };
        halves.set(dora[1], entry);
        continue;
      }
      if (/\.lora_(embedding_[AB]|magnitude_vector)\b/.test(rest)) {
        throw new Error(`${where}: embedding LoRA and DoRA embedding/convolution tensors are not supported`);
      }
      params[rest] = { shape: t.shape, data: toFloat32(t) };
    }
    const lora: PeftTensors["lora"] = {};
    for (const [modulePath, { A, B, magnitude }] of halves) {
      const where = `${weightsPath}: LoRA module "${modulePath}"`;
      if (!A && !B) throw new Error(`${where}: has a lora_magnitude_vector but no lora_A and lora_B`);
      if (!A || !B) throw new Error(`${where}: has lora_${A ? "A" : "B"} but no lora_${A ? "B" : "A"}`);
      if (B.shape[1] !== A.shape[0]) {
        throw new Error(`${where}: lora_A is [${A.shape.join(", ")}] and lora_B is [${B.shape.join(", ")}]; B's columns must equal A's rows`);
      }
      if (magnitude && magnitude.shape[0] !== B.shape[0]) {
        throw new Error(`${where}: lora_magnitude_vector has ${magnitude.shape[0]} values but lora_B has ${B.shape[0]} rows (out_features)`);
      }
      lora[modulePath] = magnitude ? { A, B, magnitude } : { A, B };
    }
    return { lora, params };
  } finally {
    file.close();
  }
}

/** Options of writeAdapterFiles. */
export interface WriteAdapterOptions {
  /** Element type of the saved tensors (default F32). */
  dtype?: "F32" | "F16" | "BF16";
}

/**
 * Writes an adapter folder (created if missing): adapter_model.safetensors with PEFT's tensor names, then
 * adapter_config.json, each written atomically.
 */
export function writeAdapterFiles(dir: string, configJson: Record<string, unknown>, tensors: PeftTensors, options: WriteAdapterOptions = {}): void {
  const paths = adapterPaths(dir);
  const dtype = options.dtype ?? "F32";
  const named: Record<string, TensorInput> = {};
  for (const [modulePath, { A, B, magnitude }] of Object.entries(tensors.lora)) {
    named[`${PEFT_PREFIX}${modulePath}.lora_A.weight`] = { dtype, shape: A.shape, data: A.data };
    named[`${PEFT_PREFIX}${modulePath}.lora_B.weight`] = { dtype, shape: B.shape, data: B.data };
    if (magnitude) named[`${PEFT_PREFIX}${modulePath}.lora_magnitude_vector`] = { dtype, shape: magnitude.shape, data: magnitude.data };
  }
  for (const [paramPath, p] of Object.entries(tensors.params)) named[`${PEFT_PREFIX}${paramPath}`] = { dtype, shape: p.shape, data: p.data };
  if (Object.keys(named).length === 0) throw new Error(`${paths.weights}: the adapter has no tensors to save`);
  fs.mkdirSync(dir, { recursive: true });
  // transformers refuses safetensors files without format metadata in some load paths; PEFT writes "pt".
  writeSafetensors(paths.weights, named, { format: "pt" });
  writeJsonAtomic(paths.config, configJson);
}
