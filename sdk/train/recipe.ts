/**
 * A training recipe: every option of a run under LLaMA-Factory's (and transformers' TrainingArguments') names.
 * A notebook plan serialises to one, `tunelab train recipe.yaml` reads one, and both run the same trainer.
 * The options themselves (names, types, ranges, defaults, docs) are in recipe-schema.ts.
 */
import * as fs from "node:fs";
import YAML from "yaml";
import { canonicalValue, shown, valueProblem } from "./recipe-check";
import { continueAdapter, readLfConventions, type NoticeSink } from "./recipe-lf";
import { RECIPE_DEFAULTS, RECIPE_SCHEMA, type OptionSetter, type OptionSpec, type Recipe, type RecipeInput } from "./recipe-schema";

export type { RecipeAugment } from "./recipe-augment";
export { RECIPE_DEFAULTS, type Recipe, type RecipeInput } from "./recipe-schema";
export type { NoticeSink } from "./recipe-lf";

/** Options of resolveRecipe and readRecipe. */
export interface ResolveOptions {
  /** Receives one line per LLaMA-Factory key that is accepted but has no effect here (default: dropped). */
  notice?: NoticeSink;
}

/**
 * Fills defaults and checks every key; errors name the key, the value and what is allowed. LLaMA-Factory's keys and
 * conventions are read as LF reads them first (recipe-lf.ts): a key with no effect here says so through `notice`, one
 * tunelab cannot honour is an error saying what to do instead.
 */
export function resolveRecipe(input: RecipeInput, source = "recipe", options: ResolveOptions = {}): Recipe {
  const given = readLfConventions(input as Record<string, unknown>, source, options.notice ?? (() => {}));
  if (given.dataset_path === undefined) {
    throw new Error(`${source}: no data: give dataset_path (a data file) or dataset (entries of dataset_dir/dataset_info.json, as in LLaMA-Factory)`);
  }
  continueAdapter(given, source);
  // lora_alpha defaults to twice the rank, as LLaMA-Factory does.
  const r: Record<string, unknown> = { ...RECIPE_DEFAULTS, lora_alpha: 2 * ((given.lora_rank as number | undefined) ?? RECIPE_DEFAULTS.lora_rank), ...given };
  const fail = (key: string, allowed: string): never => {
    throw new Error(`${source}: ${key} must be ${allowed}, got ${shown(r[key])}`);
  };
  for (const [key, spec] of Object.entries(RECIPE_SCHEMA as Record<string, OptionSpec>)) {
    if (r[key] === undefined && !spec.required && !("default" in spec) && !spec.derived) continue;
    const problem = valueProblem(spec, r[key]);
    if (problem) fail(key, problem);
    r[key] = canonicalValue(spec, r[key]);
  }
  const recipe = r as Recipe;
  if (recipe.max_steps === 0 && !(recipe.num_train_epochs > 0)) fail("num_train_epochs", "positive when max_steps is 0");
  if (recipe.fp16 && recipe.bf16) fail("bf16", "false when fp16 is true (at most one of fp16 and bf16, as in Hugging Face)");
  return recipe;
}

/**
 * Recipe keys for options under their SDK names (fit() or lora() options): unset ones are left out, and an unknown
 * name is an error listing the known ones.
 */
export function recipeInputOf(setter: OptionSetter, options: object, source: string): Partial<Recipe> {
  const keyOf = new Map<string, string>();
  for (const [key, spec] of Object.entries(RECIPE_SCHEMA as Record<string, OptionSpec>)) {
    if (spec.set !== setter) continue;
    keyOf.set(spec.sdk, key);
    if (spec.sdkAlias) keyOf.set(spec.sdkAlias, key);
  }
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const key = keyOf.get(name);
    if (!key) throw new Error(`${source}: unknown option "${name}"; known options: ${[...keyOf.keys()].join(", ")}`);
    out[key] = value;
  }
  return out as Partial<Recipe>;
}

/** The mapping a YAML (or JSON) recipe file holds, unchecked (readRecipe resolves it). */
export function readRecipeInput(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = YAML.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: not a readable YAML recipe: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error(`${file}: a recipe must be a mapping of option: value`);
  return parsed as Record<string, unknown>;
}

/** Reads a YAML (or JSON) recipe file: a tunelab recipe or a LLaMA-Factory one. */
export function readRecipe(file: string, options: ResolveOptions = {}): Recipe {
  return resolveRecipe(readRecipeInput(file) as RecipeInput, file, options);
}

/** The recipe as YAML, defaults included, so a run says exactly how it was made. */
export function recipeToYaml(recipe: Recipe): string {
  return YAML.stringify(recipe);
}
