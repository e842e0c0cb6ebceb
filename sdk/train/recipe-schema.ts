/**
 * The recipe schema: every option of a run with its LLaMA-Factory name, SDK name, type, allowed values, default and
 * doc. `Recipe`, `FitOptions`' recipe keys, the defaults, validation (recipe files, CLI flags, fit() options) and the
 * option tables of docs/recipes.md all derive from this one object; change an option here and nowhere else.
 *
 * Keys with defaults are listed in the order a resolved recipe (and so its YAML) has always had them.
 */
import type { DataFormat } from "../data/types";
import type { Device } from "../runtime/device";
import type { RecipeAugment } from "./recipe-augment";
import type { SchedulerType } from "./schedule";

/** Who sets an option in the fluent SDK: fit() options, .lora() options, a data-plan step, or fit()'s model. */
export type OptionSetter = "fit" | "lora" | "load" | "split" | "val" | "augment" | "model";

/** The docs section an option is listed under. */
export type OptionSection = "model" | "lora" | "data" | "optim" | "length";

/** What every option spec says besides its type. */
interface SpecBase {
  section: OptionSection;
  /** Where the name comes from (LF: LLaMA-Factory, HF: transformers' TrainingArguments, tunelab: ours). */
  from: string;
  /** The meaning, one line (the docs table's). */
  doc: string;
  set: OptionSetter;
  /** The SDK's name for it (camelCase of the recipe key for fit() options). */
  sdk: string;
  /** A shorter fit() name kept for existing notebooks. */
  sdkAlias?: string;
  /** A person must write it. */
  required?: true;
  /** A default computed from other options, as docs show it (resolveRecipe computes it). */
  derived?: string;
  /** How docs show the default when it is not a plain value. */
  defaultDoc?: string;
}

/** The value kinds of the schema (and so of validation and CLI parsing). */
export type OptionSpec = SpecBase &
  (
    | { type: "path" } // a non-empty string naming a file or folder
    | { type: "paths" } // a path or a non-empty list of them
    | { type: "name" } // a non-empty string
    | { type: "template" } // a chat template name (io/templates)
    | { type: "modules"; default: string } // "all" or a comma-separated list of linear module names
    | { type: "checkpoint" } // a checkpoint folder, true (the newest) or false
    | { type: "augment" }
    | { type: "boolean"; default?: boolean }
    | { type: "enum"; values: readonly string[]; spellings?: Readonly<Record<string, string>>; default?: string }
    | { type: "number" | "integer"; min: number; minExclusive?: true; max?: number; maxExclusive?: true; default?: number }
  );

export const DEVICES = ["cpu", "webgpu", "cuda", "auto"] as const;
export const STAGES = ["pt", "sft", "cls"] as const;
export const FORMATS = ["classification", "alpaca", "sharegpt", "openai", "pretrain"] as const;
export const SCHEDULERS = ["constant", "constant_with_warmup", "linear", "cosine"] as const;

/** Every recipe option. */
export const RECIPE_SCHEMA = {
  model_name_or_path: {
    section: "model",
    from: "LF",
    set: "model",
    sdk: "model",
    type: "path",
    required: true,
    doc: "a local Hugging Face model folder (Llama or Qwen2 architecture)",
  },
  adapter_name_or_path: {
    section: "model",
    from: "LF",
    set: "fit",
    sdk: "adapterNameOrPath",
    type: "path",
    doc: "continue training this PEFT adapter folder: as in LF its `adapter_config.json` decides rank, alpha, dropout, targets and rsLoRA (a `lora_*` key that disagrees is an error naming both values); a classification head is taken too",
  },
  stage: {
    section: "model",
    from: "LF (`cls` is tunelab's)",
    set: "fit",
    sdk: "stage",
    type: "enum",
    values: STAGES,
    default: "sft",
    doc: '`pt`: causal LM on `{"text"}` rows, loss = mean NLL over all predicted tokens of the batch; `sft`: chat data through the model\'s chat template, loss on assistant tokens only (and the EOS after them); `cls`: sequence classification of `{"text","label"}` rows (last real token → linear `score` head)',
  },
  finetuning_type: {
    section: "model",
    from: "LF",
    set: "fit",
    sdk: "finetuningType",
    type: "enum",
    values: ["lora", "full", "freeze"],
    default: "lora",
    doc: "`lora`; for small models also `full` (every weight trained, float32 master copies in the optimizer) and `freeze` (the last `freeze_trainable_layers` decoder layers trained). `full`/`freeze` write a complete Hugging Face model folder to `output_dir/model` instead of an adapter",
  },
  freeze_trainable_layers: {
    section: "model",
    from: "LF",
    set: "fit",
    sdk: "freezeTrainableLayers",
    type: "integer",
    min: 0,
    default: 2,
    doc: "`freeze`: how many of the last decoder layers are trained",
  },
  template: {
    section: "model",
    from: "LF",
    set: "fit",
    sdk: "template",
    type: "template",
    doc: "unset: the tokenizer's own chat template (`tokenizer_config.json` / `chat_template.jinja`); or `qwen` (alias `chatml`), `llama3`, `deepseekr1`. The same template is used for training, evaluation and `run.chat()`. Pick the template of the model's family: its special tokens must be tokens of that tokenizer",
  },
  enable_thinking: {
    section: "model",
    from: "LF",
    set: "fit",
    sdk: "enableThinking",
    type: "boolean",
    doc: "passed to the chat template as `enable_thinking` (templates that read it, such as Qwen3's, keep or drop the `<think>` block)",
  },
  train_on_prompt: {
    section: "model",
    from: "LF",
    set: "fit",
    sdk: "trainOnPrompt",
    type: "boolean",
    default: false,
    doc: "sft: also train on system and user tokens",
  },

  dataset_path: {
    section: "data",
    from: "tunelab (LF names datasets with `dataset` + `dataset_dir`)",
    set: "load",
    sdk: "path",
    type: "paths",
    derived: "`dataset_dir`/dataset_info.json when `dataset` is given",
    doc: "a data file (JSON, JSONL, CSV/TSV, Parquet, TXT), a list of them (concatenated), or a `dataset_info.json` / its folder together with `dataset`; give this or `dataset`",
  },
  dataset: {
    section: "data",
    from: "LF",
    set: "load",
    sdk: "dataset",
    type: "name",
    doc: "entries of `dataset_info.json` to load, comma-separated (concatenated, in order), each with its `file_name` (a file or a folder of files), `formatting`, `columns`, `tags`, as LLaMA-Factory reads them; hub and script entries are refused (tunelab works offline)",
  },
  dataset_dir: {
    section: "data",
    from: "LF",
    set: "load",
    sdk: "path",
    type: "path",
    defaultDoc: "`data` (LF's)",
    doc: "the folder holding `dataset_info.json` for `dataset` (relative paths are from the working directory, as in LF)",
  },
  eval_dataset: {
    section: "data",
    from: "LF",
    set: "val",
    sdk: "dataset",
    type: "name",
    doc: "entries of the same `dataset_info.json` used as the validation split instead of cutting `val_size` off the training data (LF refuses both together, and so does tunelab)",
  },
  max_samples: {
    section: "data",
    from: "LF",
    set: "load",
    sdk: "maxSamples",
    type: "integer",
    min: 1,
    doc: "keep only the first N records of each dataset (each file of a list), as LF does",
  },
  formatting: {
    section: "data",
    from: "LF (a `dataset_info.json` field)",
    set: "load",
    sdk: "format",
    type: "enum",
    values: FORMATS,
    defaultDoc: "detected",
    doc: "`classification`, `alpaca`, `sharegpt`, `openai` or `pretrain`",
  },
  val_size: {
    section: "data",
    from: "LF",
    set: "split",
    sdk: "val",
    type: "number",
    min: 0,
    default: 0,
    doc: "validation share: a fraction in (0, 1) or a row count; stratified by label for classification",
  },
  test_size: {
    section: "data",
    from: "tunelab",
    set: "split",
    sdk: "test",
    type: "number",
    min: 0,
    default: 0,
    doc: "test share, the same way; evaluated once at the end",
  },
  cutoff_len: {
    section: "data",
    from: "LF",
    set: "fit",
    sdk: "cutoffLen",
    type: "integer",
    min: 1,
    default: 1024,
    doc: "examples are truncated to this many tokens (the seed tutorial: 512–2048, 1024 typical)",
  },
  packing: {
    section: "data",
    from: "LF",
    set: "fit",
    sdk: "packing",
    type: "boolean",
    default: false,
    doc: "pt: concatenate all examples and cut into `cutoff_len` blocks; sft: put whole examples into as few `cutoff_len` sequences as fit",
  },
  augment: {
    section: "data",
    from: "tunelab",
    set: "augment",
    sdk: "options",
    type: "augment",
    doc: "augmented copies of train rows: `synonyms`, `swap`, `delete`, `insert` (EDA rates), `per_row`, `fraction`, `templates: { templates, slots }`; seeded by `seed`",
  },

  lora_rank: {
    section: "lora",
    from: "LF",
    set: "lora",
    sdk: "rank",
    type: "integer",
    min: 1,
    default: 16,
    doc: "rank r of each A [r, in] / B [out, r] pair (the seed tutorial's value; LF's default is 8)",
  },
  lora_alpha: {
    section: "lora",
    from: "LF",
    set: "lora",
    sdk: "alpha",
    type: "number",
    min: 0,
    minExclusive: true,
    derived: "2 × lora_rank",
    doc: "scaling numerator: the update is (alpha / r) · B A (alpha / sqrt(r) with `use_rslora`)",
  },
  lora_dropout: {
    section: "lora",
    from: "LF",
    set: "lora",
    sdk: "dropout",
    type: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0,
    doc: "dropout on the LoRA input during training, with masks derived from the seed and step so runs repeat exactly",
  },
  lora_target: {
    section: "lora",
    from: "LF",
    set: "lora",
    sdk: "target",
    type: "modules",
    default: "all",
    doc: "`all` (or PEFT's `all-linear`: every linear layer, `q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj`) or a comma-separated list of those names; another name is an error",
  },
  use_rslora: { section: "lora", from: "LF", set: "lora", sdk: "rslora", type: "boolean", default: false, doc: "rank-stabilised scaling alpha / √r" },
  use_dora: {
    section: "lora",
    from: "LF",
    set: "lora",
    sdk: "dora",
    type: "boolean",
    default: false,
    doc: "DoRA (weight-decomposed LoRA, as PEFT): each adapted linear also trains a magnitude per output row, saved as PEFT's `lora_magnitude_vector`",
  },

  optim: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "optim",
    type: "enum",
    values: ["adamw", "sgd", "lion"],
    default: "adamw",
    spellings: { adamw_torch: "adamw", adamw_hf: "adamw", lion_32bit: "lion" },
    doc: "`adamw`, `sgd` or `lion`; HF's spellings `adamw_torch`, `adamw_hf` and `lion_32bit` are accepted",
  },
  learning_rate: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "learningRate",
    sdkAlias: "lr",
    type: "number",
    min: 0,
    minExclusive: true,
    default: 3e-5,
    doc: "peak learning rate (the seed tutorial's value). Lion wants a 3–10× smaller one",
  },
  weight_decay: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "weightDecay",
    type: "number",
    min: 0,
    default: 0,
    doc: "decoupled for AdamW and Lion; added to the gradient for SGD (as PyTorch)",
  },
  adam_beta1: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "adamBeta1",
    type: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0.9,
    doc: "AdamW β1; also Lion's β1",
  },
  adam_beta2: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "adamBeta2",
    type: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0.999,
    doc: "AdamW β2; Lion uses β2 = 0.99 while this is left at 0.999",
  },
  adam_epsilon: { section: "optim", from: "HF", set: "fit", sdk: "adamEpsilon", type: "number", min: 0, default: 1e-8, doc: "AdamW ε" },
  momentum: { section: "optim", from: "tunelab", set: "fit", sdk: "momentum", type: "number", min: 0, default: 0, doc: "SGD momentum" },
  lr_scheduler_type: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "lrSchedulerType",
    type: "enum",
    values: SCHEDULERS,
    default: "linear",
    doc: "`constant` (no warmup), `constant_with_warmup`, `linear`, `cosine`, with transformers' formulas",
  },
  warmup_steps: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "warmupSteps",
    type: "integer",
    min: 0,
    default: 500,
    doc: "linear warmup from 0 (the seed tutorial's value)",
  },
  warmup_ratio: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "warmupRatio",
    type: "number",
    min: 0,
    max: 1,
    default: 0,
    doc: "warmup as a share of all steps, used when `warmup_steps` is 0 or left out while this is written",
  },
  max_grad_norm: {
    section: "optim",
    from: "HF",
    set: "fit",
    sdk: "maxGradNorm",
    type: "number",
    min: 0,
    default: 1,
    doc: "global-norm gradient clipping; 0 disables it",
  },

  max_steps: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "maxSteps",
    type: "integer",
    min: 0,
    default: 5000,
    doc: "optimizer steps (the seed tutorial's value); 0 (or HF's -1) lets `num_train_epochs` decide, and so does leaving it out while writing `num_train_epochs`",
  },
  num_train_epochs: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "numTrainEpochs",
    sdkAlias: "epochs",
    type: "number",
    min: 0,
    default: 3,
    doc: "used when `max_steps` is 0 or left out while this is written (as in LF recipes)",
  },
  per_device_train_batch_size: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "perDeviceTrainBatchSize",
    sdkAlias: "batchSize",
    type: "integer",
    min: 1,
    default: 16,
    doc: "examples per micro-batch (the seed tutorial's value)",
  },
  per_device_eval_batch_size: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "perDeviceEvalBatchSize",
    sdkAlias: "evalBatchSize",
    type: "integer",
    min: 1,
    default: 16,
    doc: "examples per evaluation batch",
  },
  gradient_accumulation_steps: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "gradientAccumulationSteps",
    type: "integer",
    min: 1,
    default: 1,
    doc: "micro-batches per optimizer step; the loss is averaged over all their tokens (or examples)",
  },
  logging_steps: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "loggingSteps",
    type: "integer",
    min: 1,
    default: 10,
    doc: "a `train.log` line every N steps (and at steps 1 and the last)",
  },
  eval_steps: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "evalSteps",
    type: "integer",
    min: 0,
    default: 0,
    doc: "evaluate on the validation split every N steps; 0: only at the end. Metrics: loss, and for `cls` accuracy, f1_macro, f1_micro; perplexity for text",
  },
  predict_with_generate: {
    section: "length",
    from: "LF",
    set: "fit",
    sdk: "predictWithGenerate",
    type: "boolean",
    defaultDoc: "false",
    doc: "`sft` with LoRA: at each evaluation the model answers the first `eval_generate_samples` validation prompts (greedy, `max_new_tokens`) and bleu, rouge1, rouge2, rougeL and stop_rate join the eval metrics (metrics.jsonl, TensorBoard, live view)",
  },
  eval_generate_samples: {
    section: "length",
    from: "tunelab",
    set: "fit",
    sdk: "evalGenerateSamples",
    type: "integer",
    min: 1,
    defaultDoc: "32",
    doc: "validation prompts answered at each evaluation with `predict_with_generate`",
  },
  max_new_tokens: {
    section: "length",
    from: "LF",
    set: "fit",
    sdk: "maxNewTokens",
    type: "integer",
    min: 1,
    defaultDoc: "128",
    doc: "tokens generated per validation answer with `predict_with_generate`",
  },
  save_steps: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "saveSteps",
    type: "integer",
    min: 0,
    default: 500,
    doc: "a checkpoint every N steps (0: only at the end); a run always ends with one",
  },
  save_total_limit: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "saveTotalLimit",
    type: "integer",
    min: 0,
    default: 3,
    doc: "keep the newest N checkpoints (and always the best one)",
  },
  early_stopping_steps: {
    section: "length",
    from: "LF",
    set: "fit",
    sdk: "earlyStoppingSteps",
    type: "integer",
    min: 0,
    default: 0,
    doc: "patience: stop after this many evaluations without a lower validation loss, and restore the best adapter (the seed tutorial suggests 3); 0 disables",
  },
  resume_from_checkpoint: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "resumeFromCheckpoint",
    type: "checkpoint",
    doc: "a `checkpoint-N` folder, or `true` for the newest in `output_dir`; the resumed run gives the same losses as one that never stopped",
  },
  seed: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "seed",
    type: "integer",
    min: 0,
    default: 42,
    doc: "initialisation, data order, split, augmentation and dropout; the same seed gives the same run on the CPU",
  },
  output_dir: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "outputDir",
    type: "path",
    required: true,
    doc: "where the adapter, logs and checkpoints go ([outputs.md](outputs.md))",
  },
  overwrite_output_dir: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "overwriteOutputDir",
    type: "boolean",
    default: false,
    doc: "allow an `output_dir` that holds files of something other than a tunelab run (without it such a folder is refused, so no user file is overwritten)",
  },
  device: {
    section: "length",
    from: "tunelab",
    set: "fit",
    sdk: "device",
    type: "enum",
    values: DEVICES,
    default: "cpu",
    doc: "`cpu`, `webgpu`, `cuda` or `auto` (CUDA when it works, else CPU)",
  },
  fp16: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "fp16",
    type: "boolean",
    default: false,
    doc: "compute in float16 (meant for GPU providers) with float32 master copies of the trainable tensors and dynamic loss scaling as PyTorch's `GradScaler`: start at 65536, halve and retry the step when gradients overflow, double after 2000 good steps",
  },
  bf16: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "bf16",
    type: "boolean",
    default: false,
    doc: "accepted from bfloat16 recipes; onnxruntime has no bfloat16 matrix kernels on cpu or webgpu, so tunelab says so once and trains in float32 (use `fp16` for 16-bit compute on webgpu and cuda)",
  },
  gradient_checkpointing: {
    section: "length",
    from: "HF",
    set: "fit",
    sdk: "gradientCheckpointing",
    type: "boolean",
    default: false,
    doc: "recompute each decoder layer's activations in the backward pass instead of keeping them: less memory for long sequences, about a third more compute",
  },
} as const satisfies Record<string, OptionSpec>;

/** Keys LLaMA-Factory recipes carry that are accepted and have no effect. */
export const IGNORED_KEYS: readonly string[] = ["do_train"];

type Schema = typeof RECIPE_SCHEMA;
/** A recipe key. */
export type RecipeKey = keyof Schema;

/** The TypeScript type of a value of spec S. */
type ValueOf<S> = S extends { type: "enum"; values: readonly (infer V)[] }
  ? V
  : S extends { type: "number" | "integer" }
    ? number
    : S extends { type: "boolean" }
      ? boolean
      : S extends { type: "paths" }
        ? string | string[]
        : S extends { type: "checkpoint" }
          ? string | boolean
          : S extends { type: "augment" }
            ? RecipeAugment
            : string;

/** Keys a resolved recipe always has: required ones and those with defaults. */
type FilledKey = { [K in RecipeKey]: Schema[K] extends { required: true } | { default: unknown } | { derived: string } ? K : never }[RecipeKey];
type Flatten<T> = { [K in keyof T]: T[K] };

/** A resolved recipe: every option under its LLaMA-Factory name, defaults filled in. */
export type Recipe = Flatten<{ -readonly [K in FilledKey]: ValueOf<Schema[K]> } & { -readonly [K in Exclude<RecipeKey, FilledKey>]?: ValueOf<Schema[K]> }>;

/** Keys a person must write (no default exists). */
export type RequiredKey = { [K in RecipeKey]: Schema[K] extends { required: true } ? K : never }[RecipeKey];

/** A recipe as written by a person: only the required keys, the rest default. */
export type RecipeInput = Partial<Recipe> & Pick<Recipe, RequiredKey>;

/** The SDK names of the options that `setter` sets, each typed as its recipe value. */
export type SdkOptionsOf<Setter extends OptionSetter> = Flatten<
  { [K in RecipeKey as Schema[K] extends { set: Setter; sdk: infer N extends string } ? N : never]?: ValueOf<Schema[K]> } & {
    [K in RecipeKey as Schema[K] extends { set: Setter; sdkAlias: infer N extends string } ? N : never]?: ValueOf<Schema[K]>;
  }
>;

/** The recipe options of fit(), under their camelCase names (and short aliases such as lr, batchSize, epochs). */
export type RecipeFitOptions = SdkOptionsOf<"fit">;

/** Defaults of the options that have one, in recipe order. */
export const RECIPE_DEFAULTS = Object.fromEntries(
  Object.entries(RECIPE_SCHEMA as Record<string, OptionSpec>).flatMap(([key, spec]) =>
    "default" in spec && spec.default !== undefined ? [[key, spec.default]] : [],
  ),
) as { readonly [K in RecipeKey as Schema[K] extends { default: unknown } ? K : never]: Schema[K] extends { default: infer D } ? D : never };

/** The spec of a recipe key (or undefined for an unknown one). */
export function optionSpec(key: string): OptionSpec | undefined {
  return Object.prototype.hasOwnProperty.call(RECIPE_SCHEMA, key) ? (RECIPE_SCHEMA as Record<string, OptionSpec>)[key] : undefined;
}

// The schema's value lists must be exactly the lower layers' types.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameTypes: [Same<(typeof DEVICES)[number], Device>, Same<(typeof FORMATS)[number], DataFormat>, Same<(typeof SCHEDULERS)[number], SchedulerType>] = [
  true,
  true,
  true,
];
void sameTypes;
