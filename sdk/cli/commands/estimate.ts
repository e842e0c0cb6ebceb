/**
 * `tunelab estimate --model DIR | --preset NAME [--rank R] [--batch B] [--seq T] [--fp16] [--gradient_checkpointing] [--quantization_bit 4|8] [--memory 24GiB]`: the
 * predicted peak memory of a LoRA training step by part, and whether it fits, before anything is loaded.
 */
import * as os from "node:os";
import * as path from "node:path";
import { commandFlags, type CliCommand } from "../command";
import { readModelConfig } from "../../io/config";
import { isPresetName, presetConfig, PRESET_NAMES } from "../../io/presets";
import { estimateTrainingMemory, MemoryEstimateView } from "../../train/estimate";
import { parseOption } from "../../train/recipe-check";

const USAGE = `usage: tunelab estimate (--model DIR | --preset ${PRESET_NAMES.join("|")}) [--rank 16] [--batch 1] [--seq 512] [--fp16 | --bf16] [--gradient_checkpointing] [--quantization_bit 4|8] [--memory SIZE] [--json]`;
const FLAGS = new Set([
  "model",
  "preset",
  "rank",
  "batch",
  "seq",
  "fp16",
  "bf16",
  "memory",
  "gpu-memory",
  "json",
  "help",
  "quantization_bit",
  "gradient_checkpointing",
]);

export const command: CliCommand = {
  name: "estimate",
  summary: "will it fit? predicted peak memory of a LoRA training step, by part",
  async run(argv) {
    const flags = commandFlags(argv, FLAGS, USAGE);
    if (!flags) return 0;
    const { model, preset } = flags;
    if ((typeof model === "string") === (typeof preset === "string")) throw new Error(`give exactly one of --model and --preset\n${USAGE}`);
    if (typeof preset === "string" && !isPresetName(preset)) throw new Error(`--preset must be one of ${PRESET_NAMES.join(", ")}, got "${preset}"`);
    const config = typeof model === "string" ? readModelConfig(path.resolve(model)) : presetConfig(preset as (typeof PRESET_NAMES)[number]);
    const memoryFlag = flags.memory ?? flags["gpu-memory"];
    const budgetBytes = memoryFlag === undefined ? os.totalmem() : parseSize(String(memoryFlag));
    const options = {
      rank: flags.rank === undefined ? 16 : parseOption("lora_rank", flags.rank, "--rank"),
      batch: flags.batch === undefined ? 1 : parseOption("per_device_train_batch_size", flags.batch, "--batch"),
      seq: flags.seq === undefined ? 512 : parseOption("cutoff_len", flags.seq, "--seq"),
      // bf16 recipes train in float32 (no bfloat16 matrix kernels in onnxruntime), so they are estimated as such.
      halfPrecision: flags.fp16 === true,
      gradientCheckpointing: flags.gradient_checkpointing === true,
      quantizationBit: quantizationBitFlag(flags.quantization_bit),
      budgetBytes,
    };
    if (flags.bf16 === true && flags.fp16 === true) throw new Error("give at most one of --fp16 and --bf16");
    const estimate = estimateTrainingMemory(config, options);
    if (flags.json) {
      console.log(JSON.stringify({ ...options, ...estimate }));
      return 0;
    }
    const budgetName = memoryFlag === undefined ? "this machine's memory" : String(memoryFlag);
    const title = `${typeof model === "string" ? model : preset}: LoRA r${options.rank} on every linear, AdamW, batch ${options.batch} x ${options.seq}, ${options.halfPrecision ? "16-bit" : "float32"}${options.gradientCheckpointing ? ", gradient checkpointing" : ""}${options.quantizationBit ? `, ${options.quantizationBit}-bit base (${options.quantizationBit === 4 ? "NF4" : "int8"})` : ""} (budget: ${budgetName})`;
    if (flags.bf16 === true)
      console.log("bf16: onnxruntime has no bfloat16 matrix kernels on cpu or webgpu, so tunelab trains bf16 recipes in float32; estimated as float32");
    console.log(new MemoryEstimateView(estimate, title).text());
    return estimate.fits ? 0 : 3;
  },
};

/** --quantization_bit: absent, 4 or 8. */
function quantizationBitFlag(value: string | boolean | string[] | undefined): 4 | 8 | undefined {
  if (value === undefined) return undefined;
  if (value === "4" || value === "8") return Number(value) as 4 | 8;
  throw new Error(`--quantization_bit must be 4 or 8 (tunelab's bnb-style NF4 / int8 bases), got "${value}"`);
}

/** "24GiB", "24GB", "512MiB" or a number of bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?$/i.exec(text.trim());
  if (!m) throw new Error(`--memory must be a size such as 24GiB, 16GB or 8000000000, got "${text}"`);
  const unit = (m[2] ?? "B").toLowerCase();
  const scale: Record<string, number> = { b: 1, kb: 1e3, kib: 2 ** 10, mb: 1e6, mib: 2 ** 20, gb: 1e9, gib: 2 ** 30, tb: 1e12, tib: 2 ** 40 };
  return Math.round(Number(m[1]) * scale[unit]);
}
