/** `tunelab model create|info`: write a random HF model folder (tiny, or a real model's preset), or describe one. */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseFlags, rejectUnknownFlags, type CliCommand, type CliFlags } from "../command";
import { createTinyModel, type TinyModelOptions } from "../../io/tiny";
import { readModelConfig } from "../../io/config";
import { assertModelOutput, readModelMarker, writeModelMarker } from "../../io/model-marker";
import { createPresetModel, isPresetName, PRESET_NAMES, PRESETS } from "../../io/presets";
import { openWeights, SHARD_INDEX_NAME } from "../../io/safetensors";
import { Tokenizer } from "../../io/tokenizer";

const USAGE = `usage:
  tunelab model create --arch llama|qwen2 --out DIR --seed N [--hidden-size N] [--intermediate-size N]
                       [--layers N] [--heads N] [--kv-heads N] [--tokenizer byte|qwen3|deepseek_v3] [--tie]
                       [--dtype float32|float16|bfloat16] [--overwrite]
  tunelab model create --preset NAME --out DIR --seed N [--overwrite]
  tunelab model info DIR

presets (published config.json, random bf16 weights in the published shard layout):
${PRESET_NAMES.map((n) => `  ${n.padEnd(30)} ${PRESETS[n].summary}`).join("\n")}

A folder that is not empty and was not written by tunelab is refused unless --overwrite is given.`;

const CREATE_FLAGS = new Set([
  "arch",
  "out",
  "seed",
  "hidden-size",
  "intermediate-size",
  "layers",
  "heads",
  "kv-heads",
  "tokenizer",
  "tie",
  "dtype",
  "preset",
  "overwrite",
]);

const PRESET_FLAGS = new Set(["preset", "out", "seed", "overwrite"]);

/** An integer flag, or undefined when absent; throws naming the flag otherwise. */
function intFlag(flags: CliFlags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^-?\d+$/.test(v)) throw new Error(`--${name} needs an integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

function stringFlag(flags: CliFlags, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new Error(`--${name} needs a value`);
  return v;
}

function create(argv: string[]): number {
  const flags = parseFlags(argv);
  rejectUnknownFlags(flags, CREATE_FLAGS, USAGE);
  if (flags._.length > 0) throw new Error(`unexpected argument ${flags._[0]}\n${USAGE}`);
  if (flags.overwrite !== undefined && flags.overwrite !== true) throw new Error("--overwrite takes no value");
  const overwrite = flags.overwrite === true;
  if (flags.preset !== undefined) return createPreset(flags, overwrite);
  const arch = stringFlag(flags, "arch");
  const out = stringFlag(flags, "out");
  const seed = intFlag(flags, "seed");
  if (arch !== "llama" && arch !== "qwen2") throw new Error(`--arch must be llama or qwen2\n${USAGE}`);
  if (!out) throw new Error(`--out DIR is required\n${USAGE}`);
  if (seed === undefined) throw new Error(`--seed N is required\n${USAGE}`);
  const tokenizer = stringFlag(flags, "tokenizer") ?? "byte";
  if (tokenizer !== "byte" && tokenizer !== "qwen3" && tokenizer !== "deepseek_v3") {
    throw new Error(`--tokenizer must be byte, qwen3 or deepseek_v3, got ${tokenizer}`);
  }
  const dtype = stringFlag(flags, "dtype") ?? "float32";
  if (dtype !== "float32" && dtype !== "float16" && dtype !== "bfloat16") {
    throw new Error(`--dtype must be float32, float16 or bfloat16, got ${dtype}`);
  }
  if (flags.tie !== undefined && flags.tie !== true) throw new Error("--tie takes no value");
  const options: TinyModelOptions = {
    arch,
    out,
    seed,
    hiddenSize: intFlag(flags, "hidden-size"),
    intermediateSize: intFlag(flags, "intermediate-size"),
    numLayers: intFlag(flags, "layers"),
    numHeads: intFlag(flags, "heads"),
    numKvHeads: intFlag(flags, "kv-heads"),
    tieWordEmbeddings: flags.tie === true,
    tokenizer,
    dtype,
  };
  assertModelOutput(out, overwrite);
  const info = createTinyModel(options);
  // Marks the folder as tunelab's, so a later `model create` may replace it without --overwrite.
  writeModelMarker(out, { arch, seed });
  const c = info.config;
  let params = 0;
  for (const shape of info.tensors.values()) params += shape.reduce((a, b) => a * b, 1);
  console.log(
    `wrote ${info.dir}: ${c.architecture}, ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ` +
      `heads ${c.numAttentionHeads}/${c.numKeyValueHeads}, vocab ${c.vocabSize}, ${params} parameters, tokenizer ${tokenizer}`,
  );
  return 0;
}

function createPreset(flags: CliFlags, overwrite: boolean): number {
  for (const key of Object.keys(flags)) {
    if (key !== "_" && !PRESET_FLAGS.has(key)) throw new Error(`--${key} cannot be combined with --preset (a preset fixes the model's shape)`);
  }
  const preset = stringFlag(flags, "preset");
  const out = stringFlag(flags, "out");
  const seed = intFlag(flags, "seed");
  if (!preset || !isPresetName(preset)) throw new Error(`--preset must be one of ${PRESET_NAMES.join(", ")}; got ${preset}`);
  if (!out) throw new Error(`--out DIR is required\n${USAGE}`);
  if (seed === undefined) throw new Error(`--seed N is required\n${USAGE}`);
  const start = performance.now();
  const info = createPresetModel({ preset, out, seed, overwrite });
  const c = info.config;
  console.log(
    `wrote ${info.dir}: preset ${preset} (${PRESETS[preset].repo}), ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ` +
      `${info.parameters} parameters, ${(info.totalSize / 1e9).toFixed(2)} GB bf16 in ${info.files.join(", ")} ` +
      `(${((performance.now() - start) / 1000).toFixed(1)} s)`,
  );
  return 0;
}

function info(argv: string[]): number {
  const flags = parseFlags(argv);
  const dir = flags._[0];
  if (!dir || flags._.length > 1) throw new Error(USAGE);
  const c = readModelConfig(dir);
  const weights = openWeights(dir);
  let params = 0;
  const dtypes = new Set<string>();
  try {
    for (const name of weights.names()) {
      const t = weights.info(name);
      params += t.shape.reduce((a, b) => a * b, 1);
      dtypes.add(t.dtype);
    }
  } finally {
    weights.close();
  }
  const tok = Tokenizer.fromDir(dir);
  const marker = readModelMarker(dir);
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".safetensors") || f === SHARD_INDEX_NAME)
    .sort();
  const bytes = files.reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
  console.log(
    JSON.stringify(
      {
        ...(marker?.preset ? { preset: marker.preset, presetOf: isPresetName(marker.preset) ? PRESETS[marker.preset].repo : null } : {}),
        architecture: c.architecture,
        layers: c.numHiddenLayers,
        hiddenSize: c.hiddenSize,
        intermediateSize: c.intermediateSize,
        heads: c.numAttentionHeads,
        kvHeads: c.numKeyValueHeads,
        headDim: c.headDim,
        vocabSize: c.vocabSize,
        tokenizerVocabSize: tok.vocabSize,
        tieWordEmbeddings: c.tieWordEmbeddings,
        parameters: params,
        dtypes: [...dtypes],
        torchDtype: c.torchDtype,
        maxPositionEmbeddings: c.maxPositionEmbeddings,
        weightFiles: files,
        weightBytes: bytes,
        chatTemplate: tok.hasChatTemplate,
      },
      null,
      2,
    ),
  );
  return 0;
}

/** The `tunelab model` command. */
export const command: CliCommand = {
  name: "model",
  summary: "create a random HF model folder, tiny or a real model's preset (model create), or describe one (model info DIR)",
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    try {
      if (sub === "create") return create(rest);
      if (sub === "info") return info(rest);
      console.error(sub === undefined || sub === "--help" || sub === "-h" ? USAGE : `unknown subcommand "${sub}"\n${USAGE}`);
      return sub === "--help" || sub === "-h" ? 0 : 2;
    } catch (err) {
      console.error(`tunelab model ${sub}: ${(err as Error).message}`);
      return 1;
    }
  },
};
