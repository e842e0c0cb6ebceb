/**
 * A training recipe: every option of a run under LLaMA-Factory's (and transformers' TrainingArguments') names.
 * A notebook plan serialises to one, `tunelab train recipe.yaml` reads one, and both run the same trainer.
 */
import * as fs from "node:fs";
import YAML from "yaml";
import { CHAT_TEMPLATES } from "../io/templates";
import type { DataFormat } from "../data/types";
import type { SchedulerType } from "./schedule";

/** Data augmentation that a recipe can describe (pluggable translators/lexicons are notebook-only). */
export interface RecipeAugment {
  synonyms?: number;
  swap?: number;
  delete?: number;
  insert?: number;
  per_row?: number;
  fraction?: number;
  templates?: { templates: string[] | Record<string, string[]>; slots?: Record<string, string[]> };
}

/** Every recipe option; all but model, data and output_dir have defaults (see RECIPE_DEFAULTS). */
export interface Recipe {
  model_name_or_path: string;
  /** Start from an existing PEFT adapter. */
  adapter_name_or_path?: string;
  /** pt: causal LM on text; sft: chat data, loss on assistant tokens; cls: sequence classification. */
  stage: "pt" | "sft" | "cls";
  /** lora; or, for small models, full (every weight trained) or freeze (the last freeze_trainable_layers layers). */
  finetuning_type: "lora" | "full" | "freeze";
  /** freeze: how many of the last decoder layers are trained. */
  freeze_trainable_layers: number;
  /** Chat template by name (qwen, llama3, deepseekr1); unset uses the tokenizer's own (tokenizer_config.json). */
  template?: string;
  /** Keep <think>...</think> in trained responses (R1-style data); an empty pair when a response has none. */
  enable_thinking?: boolean;
  /** Also train on prompt tokens. */
  train_on_prompt: boolean;

  /** Data file(s) (JSON, JSONL, CSV, Parquet) or a dataset_info.json folder with `dataset`. */
  dataset_path: string | string[];
  /** Name in dataset_info.json, when dataset_path points at one. */
  dataset?: string;
  formatting?: DataFormat;
  /** Validation share: fraction in (0, 1) or a row count. */
  val_size: number;
  test_size: number;
  /** Token length limit of one example (seed tutorial: 512-2048, 1024 typical). */
  cutoff_len: number;
  packing: boolean;
  augment?: RecipeAugment;

  lora_rank: number;
  lora_alpha: number;
  lora_dropout: number;
  /** "all" or a comma-separated list of module names (q_proj,v_proj,...). */
  lora_target: string;
  use_rslora: boolean;

  optim: "adamw" | "sgd" | "lion";
  learning_rate: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  /** SGD momentum. */
  momentum: number;
  lr_scheduler_type: SchedulerType;
  warmup_steps: number;
  warmup_ratio: number;
  /** Global-norm clipping; 0 disables it. */
  max_grad_norm: number;
  /** Optimizer steps; when 0, num_train_epochs decides. */
  max_steps: number;
  num_train_epochs: number;
  per_device_train_batch_size: number;
  per_device_eval_batch_size: number;
  gradient_accumulation_steps: number;
  logging_steps: number;
  /** Evaluate on the validation split every N steps (0: only at the end). */
  eval_steps: number;
  /** Write a checkpoint every N steps (0: only at the end). */
  save_steps: number;
  save_total_limit: number;
  /** Early-stopping patience in evaluations without improvement (0 disables). */
  early_stopping_steps: number;
  /** A checkpoint folder, or true for the latest in output_dir. */
  resume_from_checkpoint?: string | boolean;
  seed: number;
  output_dir: string;
  /** Execution provider: cpu, webgpu, cuda or auto. */
  device: "cpu" | "webgpu" | "cuda" | "auto";
  /** Compute in float16 with float32 master copies of the trainable tensors and dynamic loss scaling (GPU providers). */
  fp16: boolean;
}

/** Defaults: the seed tutorial's table (3.2) where it has a value, else LLaMA-Factory/transformers defaults. */
export const RECIPE_DEFAULTS = {
  stage: "sft",
  finetuning_type: "lora",
  freeze_trainable_layers: 2,
  train_on_prompt: false,
  val_size: 0,
  test_size: 0,
  cutoff_len: 1024,
  packing: false,
  lora_rank: 16,
  lora_dropout: 0,
  lora_target: "all",
  use_rslora: false,
  optim: "adamw",
  learning_rate: 3e-5,
  weight_decay: 0,
  adam_beta1: 0.9,
  adam_beta2: 0.999,
  adam_epsilon: 1e-8,
  momentum: 0,
  lr_scheduler_type: "linear",
  warmup_steps: 500,
  warmup_ratio: 0,
  max_grad_norm: 1,
  max_steps: 5000,
  num_train_epochs: 3,
  per_device_train_batch_size: 16,
  per_device_eval_batch_size: 16,
  gradient_accumulation_steps: 1,
  logging_steps: 10,
  eval_steps: 0,
  save_steps: 500,
  save_total_limit: 3,
  early_stopping_steps: 0,
  seed: 42,
  device: "cpu",
  fp16: false,
} as const satisfies Partial<Recipe>;

/** A recipe as written by a person: only the required keys, the rest default. */
export type RecipeInput = Partial<Recipe> & Pick<Recipe, "model_name_or_path" | "dataset_path" | "output_dir">;

const OPTIM_ALIASES: Record<string, Recipe["optim"]> = { adamw: "adamw", adamw_torch: "adamw", adamw_hf: "adamw", sgd: "sgd", lion: "lion", lion_32bit: "lion" };

/** Fills defaults and checks every key; errors name the key, the value and what was expected. */
export function resolveRecipe(input: RecipeInput, source = "recipe"): Recipe {
  const known = new Set<string>([...Object.keys(RECIPE_DEFAULTS), "lora_alpha", "model_name_or_path", "adapter_name_or_path", "template", "enable_thinking", "dataset_path", "dataset", "formatting", "augment", "resume_from_checkpoint", "output_dir", "do_train"]);
  for (const key of Object.keys(input)) {
    if (!known.has(key)) throw new Error(`${source}: unknown option "${key}"`);
  }
  // lora_alpha defaults to twice the rank, as LLaMA-Factory does.
  const r = { ...RECIPE_DEFAULTS, lora_alpha: 2 * (input.lora_rank ?? RECIPE_DEFAULTS.lora_rank), ...input } as Recipe;
  const fail = (key: string, expected: string): never => {
    throw new Error(`${source}: ${key} must be ${expected}, got ${JSON.stringify((r as unknown as Record<string, unknown>)[key])}`);
  };
  for (const key of ["model_name_or_path", "output_dir"] as const) if (typeof r[key] !== "string" || !r[key]) fail(key, "a path");
  if (!(typeof r.dataset_path === "string" || (Array.isArray(r.dataset_path) && r.dataset_path.length > 0))) fail("dataset_path", "a data file path or a list of them");
  if (!["pt", "sft", "cls"].includes(r.stage)) fail("stage", "pt, sft or cls");
  if (!["lora", "full", "freeze"].includes(r.finetuning_type)) fail("finetuning_type", "lora, full or freeze");
  const optim = OPTIM_ALIASES[String(r.optim)];
  if (!optim) fail("optim", `one of ${Object.keys(OPTIM_ALIASES).join(", ")}`);
  r.optim = optim;
  if (!["constant", "constant_with_warmup", "linear", "cosine"].includes(r.lr_scheduler_type)) fail("lr_scheduler_type", "constant, constant_with_warmup, linear or cosine");
  if (!["cpu", "webgpu", "cuda", "auto"].includes(r.device)) fail("device", "cpu, webgpu, cuda or auto");
  for (const key of ["fp16", "packing", "train_on_prompt", "use_rslora"] as const) if (typeof r[key] !== "boolean") fail(key, "true or false");
  const positive = ["learning_rate", "lora_rank", "lora_alpha", "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "cutoff_len", "logging_steps"] as const;
  for (const key of positive) if (typeof r[key] !== "number" || !(r[key] > 0)) fail(key, "a positive number");
  const integers = ["lora_rank", "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "cutoff_len", "max_steps", "freeze_trainable_layers", "warmup_steps", "eval_steps", "save_steps", "save_total_limit", "early_stopping_steps", "seed", "logging_steps"] as const;
  for (const key of integers) if (!Number.isInteger(r[key]) || r[key] < 0) fail(key, "a whole number >= 0");
  const nonNegative = ["weight_decay", "max_grad_norm", "warmup_ratio", "num_train_epochs", "val_size", "test_size", "momentum"] as const;
  for (const key of nonNegative) if (typeof r[key] !== "number" || !(r[key] >= 0)) fail(key, "a number >= 0");
  if (!(r.lora_dropout >= 0 && r.lora_dropout < 1)) fail("lora_dropout", "a number in [0, 1)");
  if (r.max_steps === 0 && !(r.num_train_epochs > 0)) fail("num_train_epochs", "positive when max_steps is 0");
  if (r.template !== undefined && !(r.template in CHAT_TEMPLATES)) fail("template", `unset (the tokenizer's own) or one of ${Object.keys(CHAT_TEMPLATES).join(", ")}`);
  return r;
}

/** Reads a YAML (or JSON) recipe file. */
export function readRecipe(file: string): Recipe {
  let parsed: unknown;
  try {
    parsed = YAML.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: not a readable YAML recipe: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error(`${file}: a recipe must be a mapping of option: value`);
  return resolveRecipe(parsed as RecipeInput, file);
}

/** The recipe as YAML, defaults included, so a run says exactly how it was made. */
export function recipeToYaml(recipe: Recipe): string {
  return YAML.stringify(recipe);
}
