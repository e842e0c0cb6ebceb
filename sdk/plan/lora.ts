/** `.lora(...)` and `.fit(model, options)`: a data plan plus LoRA options becomes a recipe, and a run. */
import type { DataStep, Materialized } from "../data/steps";
import type { RecipeData } from "../train/recipe-data";
import { train, type TrainOptions } from "../train/trainer";
import { recipeInputOf, recipeToYaml, resolveRecipe, type Recipe, type RecipeInput } from "../train/recipe";
import type { RecipeFitOptions } from "../train/recipe-schema";
import type { TrainerCallbacks } from "../train/callbacks";
import { htmlEscape, JUPYTER_DISPLAY, type Displayable, type MimeBundle } from "../viz/display";
import { openLiveView } from "../viz/live";
import { TrainingView, type TrainingViewState } from "../train/log/training-view";
import { Model } from "./model";
import { TrainedRun } from "./run";
import { sigintStopsTraining } from "./interrupt";

/** What a LoRA plan needs of its data plan (a DataPlan; named by shape so that this file and data.ts do not import each other). */
export interface PlannedData {
  readonly steps: readonly DataStep[];
  /** Runs the data steps. */
  materialize(): Promise<Materialized>;
  /** The recipe's data keys for these steps. */
  toRecipeData(): RecipeData;
  /** One line per step, for display. */
  describe(): string[];
}

/** LoRA options (PEFT's LoraConfig: r, lora_alpha, lora_dropout, target_modules, use_rslora, use_dora); defaults are the recipe's. */
export interface LoraOptions {
  /** Rank r (recipe lora_rank). */
  rank?: number;
  /** lora_alpha (default 2 x rank). */
  alpha?: number;
  /** lora_dropout. */
  dropout?: number;
  /** Module names such as ["q_proj", "v_proj"], or "all" (the default) for every linear layer. */
  target?: "all" | readonly string[];
  /** rsLoRA scaling alpha / sqrt(r). */
  rslora?: boolean;
  /** DoRA (recipe use_dora): also train a magnitude per output row, as PEFT's use_dora. */
  dora?: boolean;
}

/**
 * Training options: every recipe option that fit() sets, under transformers' / LLaMA-Factory's names in camelCase
 * (lr = learningRate, batchSize, epochs; see the recipe schema), plus the options of a live run.
 */
export interface FitOptions extends RecipeFitOptions {
  /** Extra subscribers to progress events. */
  callbacks?: readonly TrainerCallbacks[];
  /** Stops at the next step boundary when aborted. */
  signal?: AbortSignal;
  /** Stop the same way on SIGINT: Ctrl-C, or a Jupyter interrupt in the tunelab kernel (default true). */
  handleSigint?: boolean;
  /** Live progress display (default true). */
  live?: boolean;
}

/** A data plan with LoRA options: call fit() to train. */
export class LoraPlan implements Displayable {
  constructor(
    readonly data: PlannedData,
    readonly options: LoraOptions,
  ) {}

  /** The full recipe this plan runs with `model` and `fit` options (defaults filled in). */
  toRecipe(model: Model | string, fit: FitOptions = {}, partial = false): Recipe {
    const modelPath = typeof model === "string" ? model : model.dir;
    let data: RecipeData;
    try {
      data = this.data.toRecipeData();
    } catch (err) {
      if (!partial) throw err;
      const load = this.data.steps.find((s) => s.op === "load");
      data = { dataset_path: load && load.op === "load" ? (typeof load.path === "string" ? load.path : [...load.path]) : "<memory>" };
    }
    const { target } = this.options;
    const lora = { ...this.options, target: target === undefined || target === "all" ? target : target.join(",") };
    const { callbacks, signal, handleSigint, live, ...recipeOptions } = fit;
    const input: RecipeInput = {
      model_name_or_path: modelPath,
      output_dir: fit.outputDir ?? defaultOutputDir(modelPath, fit.stage),
      ...data,
      ...recipeInputOf("lora", lora, "lora()"),
      ...recipeInputOf("fit", recipeOptions, "fit()"),
    };
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
    const trainOptions: TrainOptions = {
      callbacks: sigint ? [sigint.callbacks, ...callbacks] : callbacks,
      signal: sigint?.signal ?? options.signal,
      model: base.base,
      data,
    };
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
  const name =
    modelPath
      .replace(/[\\/]+$/, "")
      .split(/[\\/]/)
      .pop() || "model";
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
