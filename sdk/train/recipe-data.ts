/** A recipe's data options and data steps, each way: what a notebook plan writes, and what `tunelab train` runs. */
import type { DataStep } from "../data/steps";
import { augmentOptions, recipeAugmentOf } from "./recipe-augment";
import type { Recipe, RecipeInput } from "./recipe-schema";

/** The data keys of a recipe (seed too, when a split sets it). */
export type RecipeData = Pick<
  RecipeInput,
  "dataset_path" | "dataset" | "eval_dataset" | "max_samples" | "formatting" | "val_size" | "test_size" | "augment"
> & {
  seed?: number;
};

/** A recipe's data options as data steps: load, split, then augment when asked. */
export function recipeDataSteps(recipe: Recipe): [DataStep, ...DataStep[]] {
  const load = { format: recipe.formatting, dataset: recipe.dataset, maxSamples: recipe.max_samples };
  return [
    { op: "load", path: recipe.dataset_path, options: load },
    { op: "split", options: { val: recipe.val_size, test: recipe.test_size, seed: recipe.seed } },
    ...(recipe.eval_dataset ? [{ op: "val", path: recipe.dataset_path, options: { ...load, dataset: recipe.eval_dataset } } as const] : []),
    ...(recipe.augment ? [{ op: "augment", options: augmentOptions(recipe.augment, recipe.seed) } as const] : []),
  ];
}

/** The data keys of a recipe for a plan's steps; throws naming a step a recipe cannot express. */
export function recipeDataOf(steps: readonly DataStep[]): RecipeData {
  const out: RecipeData = { dataset_path: "" };
  steps.forEach((step, i) => {
    const fail = (why: string): never => {
      throw new Error(`step ${i + 1} (${step.op}) cannot be written to a recipe: ${why}`);
    };
    switch (step.op) {
      case "load":
        if (i !== 0) fail("load must come first");
        out.dataset_path = typeof step.path === "string" ? step.path : [...step.path];
        if (step.options.dataset) out.dataset = step.options.dataset;
        if (step.options.format) out.formatting = step.options.format;
        if (step.options.maxSamples !== undefined) out.max_samples = step.options.maxSamples;
        if (step.options.columns || step.options.tags || step.options.fileType || step.options.onInvalid) {
          fail("columns, tags, fileType and onInvalid are not recipe options; describe the file in a dataset_info.json");
        }
        break;
      case "split":
        out.val_size = step.options.val ?? 0;
        out.test_size = step.options.test ?? 0;
        if (step.options.seed !== undefined) out.seed = step.options.seed;
        break;
      case "val": {
        const load = steps[0];
        const samePath = load.op === "load" && JSON.stringify(load.path) === JSON.stringify(step.path);
        if (!samePath || !step.options.dataset) fail("a recipe's eval_dataset names entries of the same dataset_info.json as dataset");
        if (step.options.columns || step.options.tags || step.options.fileType || step.options.onInvalid)
          fail("columns, tags, fileType and onInvalid are not recipe options");
        out.eval_dataset = step.options.dataset;
        break;
      }
      case "augment":
        if (!steps.slice(0, i).some((s) => s.op === "split")) fail("augment after split, so the recipe's order matches");
        out.augment = recipeAugmentOf(step.options, fail);
        break;
      default:
        fail("it runs code (or reorders rows) that a YAML recipe cannot hold; use fit() from the notebook instead");
    }
  });
  if (!out.dataset_path) throw new Error("this data plan has no load step");
  return out;
}
