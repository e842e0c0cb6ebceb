/**
 * A tunelab recipe as a LLaMA-Factory training YAML with the same meaning: the same method, LoRA shape, optimizer,
 * schedule, length and global batch, on the data tunelab split (written beside it by data.ts). tunelab reads the YAML
 * back to the same resolved recipe (test/lf/export.test.ts), apart from what only says where things are.
 */
import YAML from "yaml";
import type { Recipe } from "../../train/recipe";

/** Where the exported data and output live, relative to the export folder. */
export interface LfLayout {
  /** dataset_info.json's folder. */
  datasetDir: string;
  train: string;
  /** The validation entry, when the split has one. */
  val?: string;
  outputDir: string;
}

/** How the job is spread out. */
export interface LfScale {
  nodes: number;
  gpusPerNode: number;
}

/** The global batch as per-device batch × accumulation on `world` processes; `exact` false when it cannot be kept. */
export function scaleBatch(perDevice: number, accumulation: number, world: number): { perDevice: number; accumulation: number; exact: boolean } {
  const total = perDevice * accumulation;
  if (total % world !== 0) return { perDevice, accumulation, exact: false };
  const perProcess = total / world;
  let d = Math.min(perDevice, perProcess);
  while (perProcess % d !== 0) d--;
  return { perDevice: d, accumulation: perProcess / d, exact: true };
}

/** HF's names of tunelab's optimizers. */
const OPTIM: Record<Recipe["optim"], string> = { adamw: "adamw_torch", sgd: "sgd", lion: "lion_32bit" };

/** Keys other recipe rows add under LF's own names, passed through when set (bit widths, quantisation, DoRA). */
const PASS_THROUGH = ["bf16", "quantization_bit", "quantization_method", "quantization_type", "double_quantization", "use_dora"];

/** The LF YAML's keys, grouped as LF's examples group them; throws naming what LF cannot run the same way. */
export function lfRecipeOf(recipe: Recipe, layout: LfLayout, scale: LfScale, modelPath = recipe.model_name_or_path): Record<string, Record<string, unknown>> {
  if (recipe.stage === "cls") throw new Error("export-recipe: stage cls (sequence classification) has no LLaMA-Factory stage; export pt or sft recipes");
  if (recipe.optim === "sgd" && recipe.momentum > 0) {
    throw new Error("export-recipe: optim sgd with momentum has no transformers equivalent (its sgd takes no momentum); use momentum: 0 or adamw");
  }
  if (recipe.early_stopping_steps > 0 && recipe.eval_steps > 0 && (recipe.save_steps === 0 || recipe.save_steps % recipe.eval_steps !== 0)) {
    throw new Error(
      `export-recipe: early stopping in LLaMA-Factory (load_best_model_at_end) needs save_steps to be a multiple of eval_steps (${recipe.eval_steps}), ` +
        `got save_steps ${recipe.save_steps}; set save_steps: ${recipe.eval_steps * Math.max(1, Math.ceil(recipe.save_steps / recipe.eval_steps))}`,
    );
  }
  const batch = scaleBatch(recipe.per_device_train_batch_size, recipe.gradient_accumulation_steps, scale.nodes * scale.gpusPerNode);
  const r = recipe as Recipe & Record<string, unknown>;
  const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const lora =
    recipe.finetuning_type === "lora"
      ? {
          lora_rank: recipe.lora_rank,
          lora_alpha: recipe.lora_alpha,
          lora_dropout: recipe.lora_dropout,
          lora_target: recipe.lora_target,
          use_rslora: recipe.use_rslora,
        }
      : {};
  const hasVal = layout.val !== undefined;
  return {
    model: defined({ model_name_or_path: modelPath, adapter_name_or_path: recipe.adapter_name_or_path }),
    method: defined({
      stage: recipe.stage,
      do_train: true,
      finetuning_type: recipe.finetuning_type,
      ...(recipe.finetuning_type === "freeze" ? { freeze_trainable_layers: recipe.freeze_trainable_layers } : {}),
      ...lora,
      ...Object.fromEntries(PASS_THROUGH.filter((k) => r[k] !== undefined).map((k) => [k, r[k]])),
    }),
    dataset: defined({
      dataset: layout.train,
      eval_dataset: layout.val,
      dataset_dir: layout.datasetDir,
      template: recipe.template,
      enable_thinking: recipe.enable_thinking,
      train_on_prompt: recipe.train_on_prompt,
      cutoff_len: recipe.cutoff_len,
      packing: recipe.packing, // explicit: LF's default depends on the stage
    }),
    output: {
      output_dir: layout.outputDir,
      logging_steps: recipe.logging_steps,
      save_steps: recipe.save_steps > 0 ? recipe.save_steps : undefined,
      save_strategy: recipe.save_steps > 0 ? "steps" : "no",
      save_total_limit: recipe.save_total_limit,
      overwrite_output_dir: recipe.overwrite_output_dir,
      plot_loss: true,
      report_to: "none",
    },
    train: defined({
      per_device_train_batch_size: batch.perDevice,
      gradient_accumulation_steps: batch.accumulation,
      optim: OPTIM[recipe.optim],
      learning_rate: recipe.learning_rate,
      weight_decay: recipe.weight_decay,
      adam_beta1: recipe.adam_beta1,
      adam_beta2: recipe.adam_beta2,
      adam_epsilon: recipe.adam_epsilon,
      max_grad_norm: recipe.max_grad_norm,
      lr_scheduler_type: recipe.lr_scheduler_type,
      warmup_steps: recipe.warmup_steps,
      warmup_ratio: recipe.warmup_ratio,
      num_train_epochs: recipe.num_train_epochs,
      max_steps: recipe.max_steps > 0 ? recipe.max_steps : undefined,
      seed: recipe.seed,
      fp16: recipe.fp16,
      gradient_checkpointing: recipe.gradient_checkpointing,
    }),
    eval: hasVal
      ? defined({
          per_device_eval_batch_size: recipe.per_device_eval_batch_size,
          eval_strategy: recipe.eval_steps > 0 ? "steps" : "no",
          eval_steps: recipe.eval_steps > 0 ? recipe.eval_steps : undefined,
          ...(recipe.early_stopping_steps > 0
            ? { early_stopping_steps: recipe.early_stopping_steps, load_best_model_at_end: true, metric_for_best_model: "eval_loss" }
            : {}),
        })
      : {},
  };
}

/** True when the batch of `recipe` is kept exactly on `scale` (else the README says what the global batch becomes). */
export function batchKept(recipe: Recipe, scale: LfScale): boolean {
  return scaleBatch(recipe.per_device_train_batch_size, recipe.gradient_accumulation_steps, scale.nodes * scale.gpusPerNode).exact;
}

/** The LF YAML text, in sections as LF's examples write them. */
export function lfRecipeYaml(groups: Record<string, Record<string, unknown>>, header: string): string {
  const parts = Object.entries(groups)
    .map(([name, keys]) => [name, Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined))] as const)
    .filter(([, keys]) => Object.keys(keys).length > 0)
    .map(([name, keys]) => `### ${name}\n${YAML.stringify(keys)}`);
  // PyYAML (LF) reads 1e-4 as a string; "1.0e-4" is a float in both YAML 1.1 and 1.2.
  return `${header}\n${parts.join("\n")}`.replace(/^(\w+): (-?\d)e(-?\d+)$/gm, "$1: $2.0e$3");
}
