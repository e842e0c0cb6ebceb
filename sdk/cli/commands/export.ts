/**
 * `tunelab export --model DIR [--adapter DIR] --format peft|merged|onnx|quantized|pytorch|gguf --out DIR [--opset N]
 * [--bits 4|8] [--method rtn|gptq] [--block-size 32] [--calibration FILE] [--eval-data FILE]
 * [--outtype f16|q8_0|q4_0|q4_k_m|f32] [--dtype float32|float16|bfloat16] [--overwrite] [--json]`: writes the model, with the
 * adapter merged (or, for peft, the adapter alone), in a format another program loads; see docs/export.md.
 */
import { commandFlags, stringFlag, type CliCommand, type CliFlags } from "../command";
import { EXPORT_FORMATS, exportModel, type ExportFormat } from "../../export/export";
import type { GgufOuttype } from "../../export/gguf";
import type { TorchDtype } from "../../export/pytorch";
import { loadDataset } from "../../data/load";
import type { QuantMethod } from "../../export/quantized";
import { loadAdapter } from "../../models/lora";
import { openModel } from "../../models/model";

const USAGE =
  "usage: tunelab export --model DIR [--adapter DIR] --format " +
  EXPORT_FORMATS.join("|") +
  " --out DIR [--opset 17] [--bits 4|8] [--method rtn|gptq] [--block-size 32] [--calibration FILE] [--eval-data FILE]" +
  " [--outtype f16|q8_0|q4_0|q4_k_m|f32] [--dtype float32|float16|bfloat16] [--overwrite] [--json]";
const FLAGS = new Set([
  "model",
  "adapter",
  "format",
  "out",
  "opset",
  "bits",
  "method",
  "block-size",
  "calibration",
  "eval-data",
  "outtype",
  "dtype",
  "overwrite",
  "json",
  "help",
]);

/** The "text" of every row of a pretraining-format file (.jsonl/.json with {"text"}, .txt, ...). */
async function texts(file: string | undefined): Promise<string[] | undefined> {
  if (file === undefined) return undefined;
  const ds = await loadDataset(file, { format: "pretrain" });
  return ds.rows.map((row) => {
    if (row.kind !== "pretrain") throw new Error(`${file}: expected {"text": ...} rows`);
    return row.text;
  });
}

/** An integer flag, or an error naming it. */
function integer(flags: CliFlags, name: string): number | undefined {
  const v = stringFlag(flags, name, USAGE);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got "${v}"`);
  return n;
}

export const command: CliCommand = {
  name: "export",
  summary: "write a model (+ adapter) as PEFT, merged HF, ONNX (float or 4/8-bit), PyTorch or GGUF",
  async run(argv) {
    const flags = commandFlags(argv, FLAGS, USAGE);
    if (!flags) return 0;
    const modelDir = stringFlag(flags, "model", USAGE);
    const format = stringFlag(flags, "format", USAGE);
    const out = stringFlag(flags, "out", USAGE);
    if (!modelDir || !format || !out) {
      console.error(USAGE);
      return 2;
    }
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new Error(`--format must be one of ${EXPORT_FORMATS.join(", ")}, got "${format}"`);
    const bits = integer(flags, "bits");
    if (bits !== undefined && bits !== 4 && bits !== 8) throw new Error(`--bits must be 4 or 8, got ${bits}`);
    const method = stringFlag(flags, "method", USAGE);
    if (method !== undefined && method !== "rtn" && method !== "gptq") throw new Error(`--method must be rtn or gptq, got "${method}"`);
    const adapterDir = stringFlag(flags, "adapter", USAGE);
    const result = await exportModel(openModel(modelDir), adapterDir ? loadAdapter(adapterDir) : null, out, {
      format: format as ExportFormat,
      opset: integer(flags, "opset"),
      bits,
      method: method as QuantMethod | undefined,
      blockSize: integer(flags, "block-size"),
      calibration: await texts(stringFlag(flags, "calibration", USAGE)),
      evaluation: await texts(stringFlag(flags, "eval-data", USAGE)),
      outtype: stringFlag(flags, "outtype", USAGE) as GgufOuttype | undefined,
      dtype: stringFlag(flags, "dtype", USAGE) as TorchDtype | undefined,
      overwrite: flags.overwrite === true,
    });
    for (const w of result.warnings) console.error(`warning: ${w}`);
    if (flags.json) console.log(JSON.stringify(result));
    else {
      console.log(`wrote ${result.format} to ${result.dir}: ${result.files.join(", ")} (${(result.bytes / 1e6).toFixed(2)} MB)`);
      const q = result.quantization;
      if (q) {
        const ppl = q.perplexity ? `; perplexity ${q.perplexity.float32.toFixed(3)} -> ${q.perplexity.quantized.toFixed(3)}` : "";
        console.log(
          `${q.bits}-bit ${q.method}, blocks of ${q.blockSize}: model.onnx is ${((100 * q.bytes) / q.float32Bytes).toFixed(1)}% of the float32 weights${ppl}`,
        );
      }
    }
    return 0;
  },
};
