/**
 * The one export entry point: a base model plus an optional LoRA adapter, written in a format another program
 * loads. `peft` (the adapter as PEFT saves it), `merged` (a Hugging Face folder), `onnx` (Optimum's KV-cache
 * layout), `quantized` (that ONNX with 4/8-bit MatMulNBits linears), `pytorch` (a torch.save state_dict) and
 * `gguf` (llama.cpp / Ollama).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { saveAdapter, type Adapter, type LoraSource } from "../models/lora";
import { writeMergedModel } from "../models/merge";
import type { BaseModel } from "../models/model";
import { prepareOutDir } from "./files";
import { exportGguf, GGUF_OUTTYPES, type GgufOuttype } from "./gguf";
import { MergedWeights } from "./merged-weights";
import { DEFAULT_ONNX_OPSET, exportOnnx } from "./onnx";
import { exportPytorch, type TorchDtype } from "./pytorch";
import { exportQuantized, type QuantizedExportResult, type QuantMethod } from "./quantized";

/** Export formats, in the order the docs list them. */
export const EXPORT_FORMATS = ["peft", "merged", "onnx", "quantized", "pytorch", "gguf"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Options of exportModel (the format's own options are ignored by the others). */
export interface ExportOptions {
  format: ExportFormat;
  /** Replace a non-empty output folder (default false: it is an error). */
  overwrite?: boolean;
  /** onnx, quantized: default-domain opset, 13..18 (default 17). */
  opset?: number;
  /** quantized: 4 (default) or 8 bits per weight. */
  bits?: 4 | 8;
  /** quantized: "rtn" (default) or "gptq" (needs calibration). */
  method?: QuantMethod;
  /** quantized: inputs per scale (default 32). */
  blockSize?: number;
  /** quantized: texts GPTQ calibrates on. */
  calibration?: readonly string[];
  /** quantized: texts to report perplexity on, float32 against quantised. */
  evaluation?: readonly string[];
  /** gguf: f32, f16, q8_0, q4_0 or q4_k_m (default f16). */
  outtype?: GgufOuttype;
  /** pytorch: stored element type (default float32). */
  dtype?: TorchDtype;
}

/** What exportModel wrote. */
export interface ExportResult {
  format: ExportFormat;
  /** The output folder. */
  dir: string;
  /** Every file in it, sorted. */
  files: string[];
  /** Total bytes of those files. */
  bytes: number;
  /** What a consumer may read differently (empty when nothing). */
  warnings: string[];
  /** quantized: bits, method, sizes and perplexities. */
  quantization?: Omit<QuantizedExportResult, "file">;
}

function isAdapter(source: LoraSource): source is Adapter {
  return (source as Adapter).config !== undefined && (source as Adapter).lora !== undefined;
}

/** Writes `model` (+ `adapter`) to the folder `out` in `options.format`; bad options are errors naming them. */
export async function exportModel(model: BaseModel, adapter: LoraSource | null, out: string, options: ExportOptions): Promise<ExportResult> {
  const format = options.format;
  if (!EXPORT_FORMATS.includes(format)) throw new Error(`export: format must be one of ${EXPORT_FORMATS.join(", ")}, got ${JSON.stringify(format)}`);
  if (options.opset !== undefined && format !== "onnx" && format !== "quantized")
    throw new Error(`export: opset applies to --format onnx or quantized, not ${format}`);
  for (const key of ["bits", "method", "blockSize", "calibration", "evaluation"] as const) {
    if (options[key] !== undefined && format !== "quantized") throw new Error(`export: ${key} applies to --format quantized, not ${format}`);
  }
  if (options.outtype !== undefined && format !== "gguf") throw new Error(`export: outtype applies to --format gguf, not ${format}`);
  if (options.dtype !== undefined && format !== "pytorch") throw new Error(`export: dtype applies to --format pytorch, not ${format}`);
  if (options.outtype !== undefined && !GGUF_OUTTYPES.includes(options.outtype)) {
    throw new Error(`export: outtype must be one of ${GGUF_OUTTYPES.join(", ")}, got ${JSON.stringify(options.outtype)}`);
  }
  if (options.dtype !== undefined && !["float32", "float16", "bfloat16"].includes(options.dtype)) {
    throw new Error(`export: dtype must be float32, float16 or bfloat16, got ${JSON.stringify(options.dtype)}`);
  }
  const warnings: string[] = [];
  let quantization: ExportResult["quantization"];
  let dir: string;
  if (format === "merged") {
    const lora = adapter ?? { modules: [], tensors: new Map<string, Float32Array>() };
    dir = writeMergedModel(model, lora, out, {
      overwrite: options.overwrite,
      modulesToSave: adapter && isAdapter(adapter) ? adapter.modulesToSave : undefined,
    }).dir;
  } else if (format === "peft") {
    if (!adapter || !isAdapter(adapter)) throw new Error("export: --format peft needs a PEFT adapter (--adapter DIR, or a LoRA run)");
    dir = prepareOutDir(out, options.overwrite);
    saveAdapter(dir, adapter);
  } else {
    const weights = new MergedWeights(model, adapter);
    dir = prepareOutDir(out, options.overwrite);
    if (format === "onnx") exportOnnx(weights, dir, { opset: options.opset ?? DEFAULT_ONNX_OPSET });
    else if (format === "quantized") {
      const encode = (texts: readonly string[] | undefined) => texts?.map((t) => model.tokenizer.encode(t));
      const { file: _, ...q } = await exportQuantized(weights, dir, {
        bits: options.bits,
        method: options.method,
        blockSize: options.blockSize,
        calibration: encode(options.calibration),
        evaluation: encode(options.evaluation),
        opset: options.opset,
      });
      quantization = q;
    } else if (format === "pytorch") exportPytorch(weights, dir, { dtype: options.dtype });
    else warnings.push(...exportGguf(weights, dir, { outtype: options.outtype }).warnings);
  }
  const files = fs.readdirSync(dir).sort();
  const bytes = files.reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  return { format, dir, files, bytes, warnings, ...(quantization ? { quantization } : {}) };
}
