/**
 * `Run.open(dir)`: a finished training folder back in the notebook as the same TrainedRun a local fit() returns —
 * loss curve, evaluate(), chat(), merge() — whether tunelab wrote it or LLaMA-Factory did (a job from
 * `tunelab export-recipe`, or any LF LoRA run given its recipe). `Run.logs(dir)` reads only the logs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadDataset } from "../data/load";
import { loadAdapter, loraModules } from "../models/lora";
import type { Device } from "../runtime/device";
import { loadSplits, tokenizeSplits } from "../train/prepare";
import { readRecipeInput, resolveRecipe, type Recipe, type RecipeInput } from "../train/recipe";
import type { StopReason } from "../train/callbacks";
import type { TrainResult } from "../train/trainer";
import { Model } from "./model";
import { TrainedRun } from "./run";
import { RunLogs, readRunLogs, type RunLogData } from "./run-logs";

/** Options of Run.open. */
export interface OpenRunOptions {
  /** The base model folder (default: the recipe's model_name_or_path, else the export's tunelab-recipe.yaml's, else adapter_config.json's). */
  model?: string;
  /**
   * The recipe the run was trained with: a tunelab or LLaMA-Factory YAML (default: output_dir/recipe.yaml for tunelab;
   * for LF, the llamafactory.yaml of the `tunelab export-recipe` folder around output_dir). Its relative paths are read
   * from the working directory, as LLaMA-Factory reads them.
   */
  recipe?: string;
  /** Where evaluation and chat run (default: the recipe's device, cpu for LF recipes). */
  device?: Device;
}

/** The recipe of a run folder, and the folder its relative data paths are read from. */
function findRecipe(logs: RunLogData, options: OpenRunOptions): { file: string; base: string; exportDir: string | null } {
  if (options.recipe) return { file: path.resolve(options.recipe), base: process.cwd(), exportDir: null };
  if (logs.source === "tunelab") {
    const file = path.join(logs.dir, "recipe.yaml");
    if (!fs.existsSync(file)) throw new Error(`Run.open: ${logs.dir} has no recipe.yaml; pass { recipe } (the YAML it was trained with)`);
    return { file, base: process.cwd(), exportDir: null };
  }
  const exportDir = path.dirname(logs.dir);
  const file = path.join(exportDir, "llamafactory.yaml");
  if (!fs.existsSync(file)) {
    throw new Error(
      `Run.open: ${logs.dir} is a LLaMA-Factory output folder without a tunelab export around it; pass { recipe: "the LF YAML it was trained with", model: "base model folder" } ` +
        `(or use Run.logs(dir) for the loss curve alone)`,
    );
  }
  return { file, base: exportDir, exportDir };
}

/** A recipe file read with relative paths from `base`, and output_dir pointing at the opened folder. */
function readRecipeAt(file: string, base: string, outputDir: string, model: string | undefined): Recipe {
  const input = readRecipeInput(file);
  const abs = (p: unknown) => (typeof p === "string" && !path.isAbsolute(p) ? path.resolve(base, p) : p);
  for (const key of ["dataset_dir", "dataset_path", "adapter_name_or_path"]) if (input[key] !== undefined) input[key] = abs(input[key]);
  if (typeof input.dataset_path === "object" && Array.isArray(input.dataset_path)) input.dataset_path = input.dataset_path.map(abs);
  if (input.dataset !== undefined && input.dataset_dir === undefined && input.dataset_path === undefined) input.dataset_dir = path.resolve(base, "data");
  const r: Record<string, unknown> = { ...input, output_dir: outputDir, ...(model ? { model_name_or_path: model } : {}) };
  delete r.resume_from_checkpoint; // the run is over: nothing resumes
  return resolveRecipe(r as RecipeInput, file);
}

/** The base model: the option, else the recipe's if it is a folder here, else the export's tunelab recipe's, else the adapter's base. */
function findModel(recipe: Recipe, exportDir: string | null, adapterDir: string | null, option: string | undefined): string {
  if (option) return option;
  const tried: string[] = [recipe.model_name_or_path];
  if (fs.existsSync(recipe.model_name_or_path)) return recipe.model_name_or_path;
  const tunelabRecipe = exportDir ? path.join(exportDir, "tunelab-recipe.yaml") : null;
  if (tunelabRecipe && fs.existsSync(tunelabRecipe)) {
    const m = readRecipeInput(tunelabRecipe).model_name_or_path;
    if (typeof m === "string") {
      if (fs.existsSync(m)) return m;
      tried.push(m);
    }
  }
  if (adapterDir) {
    const m = (JSON.parse(fs.readFileSync(path.join(adapterDir, "adapter_config.json"), "utf8")) as { base_model_name_or_path?: unknown })
      .base_model_name_or_path;
    if (typeof m === "string") {
      if (fs.existsSync(m)) return m;
      tried.push(m);
    }
  }
  throw new Error(`Run.open: none of the base model paths is a folder here (${tried.join(", ")}); pass { model: "path/to/base-model" }`);
}

/** Opening finished runs. */
export const Run = {
  /** The logs of a tunelab or LLaMA-Factory output folder: history, evaluations, results; displays the loss curve. */
  logs(dir: string): RunLogs {
    return RunLogs.read(dir);
  },

  /** A tunelab or LLaMA-Factory (LoRA) output folder as a TrainedRun: lossCurve(), evaluate(), chat(), merge(). */
  async open(dir: string, options: OpenRunOptions = {}): Promise<TrainedRun> {
    const logs = readRunLogs(dir);
    if (!logs.adapterDir) {
      throw new Error(`Run.open: ${logs.dir} holds no PEFT adapter (adapter_config.json); a full fine-tune's folder is a model: open it with model(dir)`);
    }
    const found = findRecipe(logs, options);
    const read = readRecipeAt(found.file, found.base, logs.dir, options.model);
    const modelDir = findModel(read, found.exportDir, logs.adapterDir, options.model);
    const recipe: Recipe = { ...read, model_name_or_path: modelDir, ...(options.device ? { device: options.device } : {}) };
    const model = await Model.open(modelDir, { device: recipe.device });
    const splits = await loadSplits(recipe);
    // An export keeps the test rows beside the job's data (the LF job never sees them).
    const info = found.exportDir ? path.join(found.exportDir, "data", "dataset_info.json") : null;
    if (info && splits.test.length === 0 && fs.existsSync(info) && "tunelab_test" in JSON.parse(fs.readFileSync(info, "utf8"))) {
      splits.test = (await loadDataset(info, { dataset: "tunelab_test" })).withRole("test");
    }
    const data = tokenizeSplits(recipe, splits, model.base.tokenizer);
    const adapter = loadAdapter(logs.adapterDir);
    const labelsFile = path.join(logs.dir, "labels.json");
    const labels = fs.existsSync(labelsFile)
      ? Object.entries((JSON.parse(fs.readFileSync(labelsFile, "utf8")) as { id2label: Record<string, string> }).id2label)
          .sort(([a], [b]) => Number(a) - Number(b))
          .map(([, name]) => name)
      : null;
    const runJson = path.join(logs.dir, "run.json");
    const manifest = fs.existsSync(runJson)
      ? (JSON.parse(fs.readFileSync(runJson, "utf8")) as { result?: { stopped_by?: StopReason; best_step?: number | null }; durations?: { total_s?: number } })
      : {};
    const lastEval = logs.evals.at(-1);
    const result: TrainResult = {
      recipe,
      outputDir: logs.dir,
      steps: logs.steps,
      stoppedBy: manifest.result?.stopped_by ?? "max_steps",
      bestStep: manifest.result?.best_step ?? null,
      history: logs.history.map((h) => ({ step: h.step, loss: h.loss, learningRate: h.learningRate })),
      evals: logs.evals.slice(),
      val: lastEval ? { loss: lastEval.loss, metrics: { loss: lastEval.loss, ...lastEval.metrics } } : null,
      test: null,
      adapter,
      modelDir: null,
      modules: loraModules(model.base.config, adapter.config),
      labels,
      data,
      model: model.base,
      seconds: manifest.durations?.total_s ?? logs.results.train_runtime ?? 0,
    };
    return new TrainedRun(result, model);
  },
};
