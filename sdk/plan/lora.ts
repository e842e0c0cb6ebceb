/** `.lora(...)` and `.fit(model, options)`: a data plan plus LoRA options becomes a recipe, and a run. */
import { train, type TrainOptions } from "../train/trainer";
import { recipeToYaml, resolveRecipe, type Recipe, type RecipeInput } from "../train/recipe";
import type { TrainerCallbacks } from "../train/callbacks";
import { htmlEscape, JUPYTER_DISPLAY, type Displayable, type MimeBundle } from "../viz/display";
import { openLiveView } from "../viz/live";
import { TrainingView, type TrainingViewState } from "../train/log/training-view";
import type { DataPlan } from "./data";
import { Model } from "./model";
import { TrainedRun } from "./run";
import { sigintStopsTraining } from "./interrupt";

/** LoRA options (PEFT's LoraConfig: r, lora_alpha, lora_dropout, target_modules, use_rslora). */
export interface LoraOptions {
  /** Rank r (default 16, the seed tutorial's lora_rank). */
  rank?: number;
  /** lora_alpha (default 2 x rank). */
  alpha?: number;
  /** lora_dropout (default 0). */
  dropout?: number;
  /** Module names such as ["q_proj", "v_proj"], or "all" (default) for every linear layer. */
  target?: "all" | readonly string[];
  /** rsLoRA scaling alpha / sqrt(r). */
  rslora?: boolean;
}

/** Training options: transformers' TrainingArguments / LLaMA-Factory names in camelCase (lr = learningRate). */
export interface FitOptions {
  stage?: Recipe["stage"];
  learningRate?: number;
  /** Short for learningRate. */
  lr?: number;
  batchSize?: number;
  evalBatchSize?: number;
  gradientAccumulationSteps?: number;
  maxSteps?: number;
  /** num_train_epochs, used when maxSteps is 0. */
  epochs?: number;
  warmupSteps?: number;
  warmupRatio?: number;
  lrSchedulerType?: Recipe["lr_scheduler_type"];
  optim?: Recipe["optim"];
  weightDecay?: number;
  maxGradNorm?: number;
  loggingSteps?: number;
  evalSteps?: number;
  saveSteps?: number;
  saveTotalLimit?: number;
  /** Early-stopping patience in evaluations (seed tutorial: 3). */
  earlyStoppingSteps?: number;
  cutoffLen?: number;
  packing?: boolean;
  trainOnPrompt?: boolean;
  enableThinking?: boolean;
  resumeFromCheckpoint?: string | boolean;
  adapterNameOrPath?: string;
  seed?: number;
  /** Where checkpoints, logs and the adapter go (default "runs/<model name>-<stage>"). */
  outputDir?: string;
  device?: Recipe["device"];
  /** Extra subscribers to progress events. */
  callbacks?: readonly TrainerCallbacks[];
  /** Stops at the next step boundary when aborted. */
  signal?: AbortSignal;
  /** Stop the same way on SIGINT: Ctrl-C, or a Jupyter interrupt in the tunelab kernel (default true). */
  handleSigint?: boolean;
  /** Live progress display (default true). */
  live?: boolean;
}

/** Recipe keys of FitOptions. */
const FIT_KEYS: Record<string, keyof Recipe> = {
  stage: "stage",
  learningRate: "learning_rate",
  lr: "learning_rate",
  batchSize: "per_device_train_batch_size",
  evalBatchSize: "per_device_eval_batch_size",
  gradientAccumulationSteps: "gradient_accumulation_steps",
  maxSteps: "max_steps",
  epochs: "num_train_epochs",
  warmupSteps: "warmup_steps",
  warmupRatio: "warmup_ratio",
  lrSchedulerType: "lr_scheduler_type",
  optim: "optim",
  weightDecay: "weight_decay",
  maxGradNorm: "max_grad_norm",
  loggingSteps: "logging_steps",
  evalSteps: "eval_steps",
  saveSteps: "save_steps",
  saveTotalLimit: "save_total_limit",
  earlyStoppingSteps: "early_stopping_steps",
  cutoffLen: "cutoff_len",
  packing: "packing",
  trainOnPrompt: "train_on_prompt",
  enableThinking: "enable_thinking",
  resumeFromCheckpoint: "resume_from_checkpoint",
  adapterNameOrPath: "adapter_name_or_path",
  seed: "seed",
  outputDir: "output_dir",
  device: "device",
};
const NOT_RECIPE = new Set(["callbacks", "signal", "handleSigint", "live"]);

/** A data plan with LoRA options: call fit() to train. */
export class LoraPlan implements Displayable {
  constructor(
    readonly data: DataPlan,
    readonly options: LoraOptions,
  ) {}

  /** The full recipe this plan runs with `model` and `fit` options (defaults filled in). */
  toRecipe(model: Model | string, fit: FitOptions = {}, partial = false): Recipe {
    const modelPath = typeof model === "string" ? model : model.dir;
    let data: ReturnType<DataPlan["toRecipeData"]>;
    try {
      data = this.data.toRecipeData();
    } catch (err) {
      if (!partial) throw err;
      const load = this.data.steps.find((s) => s.op === "load");
      data = { dataset_path: load && load.op === "load" ? (typeof load.path === "string" ? load.path : [...load.path]) : "<memory>" };
    }
    const input: RecipeInput = {
      model_name_or_path: modelPath,
      output_dir: fit.outputDir ?? defaultOutputDir(modelPath, fit.stage),
      ...data,
      lora_rank: this.options.rank ?? 16,
      lora_alpha: this.options.alpha ?? 2 * (this.options.rank ?? 16),
      lora_dropout: this.options.dropout ?? 0,
      lora_target: this.options.target === undefined || this.options.target === "all" ? "all" : this.options.target.join(","),
      use_rslora: this.options.rslora ?? false,
    };
    const inputRecord = input as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(fit)) {
      if (value === undefined || NOT_RECIPE.has(key)) continue;
      const recipeKey = FIT_KEYS[key];
      if (!recipeKey) throw new Error(`fit(): unknown option "${key}"; known options: ${Object.keys(FIT_KEYS).join(", ")}`);
      inputRecord[recipeKey] = value;
    }
    return resolveRecipe(input, "fit() options");
  }

  /** The recipe as YAML, for `tunelab train recipe.yaml`. */
  toYaml(model: Model | string, fit: FitOptions = {}): string {
    return recipeToYaml(this.toRecipe(model, fit));
  }

  /** Trains: shows live progress in a notebook (or a progress line in a terminal) and resolves to the run. */
  async fit(model: Model | string, options: FitOptions = {}): Promise<TrainedRun> {
    const base = typeof model === "string" ? await Model.open(model, { device: options.device }) : model;
    const recipe = this.toRecipe(base, options, true);
    const data = await this.data.materialize();
    const callbacks: TrainerCallbacks[] = [...(options.callbacks ?? [])];
    if (options.live ?? true) callbacks.push(liveProgress());
    const sigint = (options.handleSigint ?? true) ? sigintStopsTraining(options.signal) : null;
    const trainOptions: TrainOptions = { callbacks: sigint ? [sigint.callbacks, ...callbacks] : callbacks, signal: sigint?.signal ?? options.signal, model: base.base, data };
    try {
      return new TrainedRun(await train(recipe, trainOptions), base);
    } finally {
      sigint?.dispose();
    }
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const steps = [...this.data.describe(), `lora ${JSON.stringify(this.options)}`];
    return {
      "text/plain": steps.join(" -> ") + " -> fit(model, options)",
      "text/html": `<ol>${steps.map((s) => `<li>${htmlEscape(s)}</li>`).join("")}<li>fit(model, options)</li></ol>`,
    };
  }
}

function defaultOutputDir(modelPath: string, stage?: string): string {
  const name = modelPath.replace(/[\\/]+$/, "").split(/[\\/]/).pop() || "model";
  return `runs/${name}-${stage ?? "sft"}`;
}

/** Callbacks that drive the live training view. */
export function liveProgress(): TrainerCallbacks {
  const view = openLiveView();
  const state: TrainingViewState = { step: 0, maxSteps: 0, elapsedSec: 0, startStep: 0, losses: [], lr: [], diagnostics: [] };
  const show = (force = false) => {
    const v = new TrainingView(state);
    view.update(v, v.line(), force);
  };
  let first = true;
  return {
    onStart(info) {
      state.maxSteps = info.maxSteps;
      show(true);
    },
    onStep(e) {
      if (first) {
        state.startStep = e.step - 1;
        first = false;
      }
      Object.assign(state, { step: e.step, elapsedSec: e.elapsedSeconds, epoch: Math.ceil(e.epoch), numEpochs: e.numEpochs, tokensPerSec: e.tokensPerSecond });
      state.losses.push({ step: e.step, loss: e.loss, split: "train" });
      state.lr.push({ step: e.step, lr: e.learningRate });
      show();
    },
    onEval(e) {
      state.losses.push({ step: e.step, loss: e.loss, split: "val" });
      state.lastEval = { step: e.step, metrics: e.metrics };
      show(true);
    },
    onDiagnostic(d) {
      state.diagnostics.push(d);
      show(true);
    },
    onEnd(s) {
      state.finished = `${s.stoppedBy} at step ${s.step}`;
      show(true);
      view.close();
    },
  };
}
