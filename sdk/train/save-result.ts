/** The final save of a run: what it hands over in output_dir besides logs and checkpoints. */
import * as path from "node:path";
import { writeJsonAtomic } from "../io/atomic";
import { saveAdapter, type Adapter } from "../models/lora";
import type { BaseModel } from "../models/model";
import type { StepEngine } from "./engine";
import type { Recipe } from "./recipe";
import type { TrainableSpec } from "../models/forward";
import { saveTrainedModel } from "./tuning";

/**
 * Writes the PEFT adapter (LoRA) or the trained model folder `output_dir/model` (full/freeze), and labels.json for
 * classifiers; returns the model folder, or null for LoRA.
 */
export function saveTrainedResult(
  recipe: Recipe,
  outputDir: string,
  trained: { model: BaseModel; engine: StepEngine; trainable: readonly TrainableSpec[]; adapter: Adapter },
  labels: readonly string[] | null,
): string | null {
  let modelDir: string | null = null;
  if (recipe.finetuning_type === "lora") saveAdapter(outputDir, trained.adapter);
  else modelDir = saveTrainedModel(trained.model, trained.engine, trained.trainable, trained.adapter, path.join(outputDir, "model"));
  if (labels) writeJsonAtomic(path.join(outputDir, "labels.json"), { id2label: Object.fromEntries(labels.map((l, i) => [i, l])) });
  return modelDir;
}
