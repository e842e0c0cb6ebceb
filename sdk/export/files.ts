/** The export folder: creating it (refusing to mix into an existing one) and copying a model's non-weight files. */
import * as fs from "node:fs";
import * as path from "node:path";

/** Files of a model folder that hold weights (never copied beside an export, which writes its own). */
export function isWeightFile(name: string): boolean {
  return /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|onnx|onnx_data)$/.test(name) || /\.index\.json$/.test(name);
}

/** Creates `out` (and parents); an existing non-empty folder is an error unless `overwrite`. Returns its absolute path. */
export function prepareOutDir(out: string, overwrite = false): string {
  const abs = path.resolve(out);
  if (fs.existsSync(abs)) {
    if (!fs.statSync(abs).isDirectory()) throw new Error(`export: --out ${abs} is a file, not a folder`);
    if (fs.readdirSync(abs).length > 0) {
      if (!overwrite)
        throw new Error(`export: --out ${abs} already exists and is not empty; choose another folder, or pass --overwrite (SDK: overwrite: true)`);
      fs.rmSync(abs, { recursive: true, force: true });
    }
  }
  fs.mkdirSync(abs, { recursive: true });
  return abs;
}

/** Copies config.json, generation_config.json, tokenizer and chat-template files of `modelDir` into `out`; returns their names. */
export function copyModelFiles(modelDir: string, out: string): string[] {
  const copied: string[] = [];
  for (const entry of fs.readdirSync(modelDir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith(".") || isWeightFile(entry.name) || entry.name === "Modelfile") continue;
    fs.copyFileSync(path.join(modelDir, entry.name), path.join(out, entry.name));
    copied.push(entry.name);
  }
  if (!copied.includes("config.json")) throw new Error(`${modelDir}: no config.json to copy beside the export`);
  return copied.sort();
}
