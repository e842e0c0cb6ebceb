/**
 * `tunelab export --model DIR [--adapter DIR] --format peft|merged|onnx|pytorch|gguf --out DIR [--opset N]
 * [--outtype f16|q8_0|q4_0|f32] [--dtype float32|float16|bfloat16] [--overwrite] [--json]`: writes the model, with the
 * adapter merged (or, for peft, the adapter alone), in a format another program loads; see docs/export.md.
 */
import { parseFlags, rejectUnknownFlags, type CliCommand } from "../command";
import { EXPORT_FORMATS, exportModel, type ExportFormat } from "../../export/export";
import type { GgufOuttype } from "../../export/gguf";
import type { TorchDtype } from "../../export/pytorch";
import { loadAdapter } from "../../models/lora";
import { openModel } from "../../models/model";

const USAGE =
  "usage: tunelab export --model DIR [--adapter DIR] --format " +
  EXPORT_FORMATS.join("|") +
  " --out DIR [--opset 17] [--outtype f16|q8_0|q4_0|f32] [--dtype float32|float16|bfloat16] [--overwrite] [--json]";
const FLAGS = new Set(["model", "adapter", "format", "out", "opset", "outtype", "dtype", "overwrite", "json", "help"]);

/** A flag's string value, or an error naming it. */
function text(flags: ReturnType<typeof parseFlags>, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new Error(`--${name} needs a value\n${USAGE}`);
  return v;
}

export const command: CliCommand = {
  name: "export",
  summary: "write a model (+ adapter) as PEFT, merged HF, ONNX, PyTorch or GGUF",
  async run(argv) {
    const flags = parseFlags(argv);
    rejectUnknownFlags(flags, FLAGS, USAGE);
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    const modelDir = text(flags, "model");
    const format = text(flags, "format");
    const out = text(flags, "out");
    if (!modelDir || !format || !out) {
      console.error(USAGE);
      return 2;
    }
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new Error(`--format must be one of ${EXPORT_FORMATS.join(", ")}, got "${format}"`);
    const opsetText = text(flags, "opset");
    const opset = opsetText === undefined ? undefined : Number(opsetText);
    if (opset !== undefined && !Number.isInteger(opset)) throw new Error(`--opset must be an integer such as 17, got "${opsetText}"`);
    const adapterDir = text(flags, "adapter");
    const result = exportModel(openModel(modelDir), adapterDir ? loadAdapter(adapterDir) : null, out, {
      format: format as ExportFormat,
      opset,
      outtype: text(flags, "outtype") as GgufOuttype | undefined,
      dtype: text(flags, "dtype") as TorchDtype | undefined,
      overwrite: flags.overwrite === true,
    });
    for (const w of result.warnings) console.error(`warning: ${w}`);
    if (flags.json) console.log(JSON.stringify(result));
    else console.log(`wrote ${result.format} to ${result.dir}: ${result.files.join(", ")} (${(result.bytes / 1e6).toFixed(2)} MB)`);
    return 0;
  },
};
