/**
 * A training recipe: every option of a run under LLaMA-Factory's (and transformers' TrainingArguments') names.
 * A notebook plan serialises to one, `tunelab train recipe.yaml` reads one, and both run the same trainer.
 * The options themselves (names, types, ranges, defaults, docs) are in recipe-schema.ts.
 */
import * as fs from "node:fs";
import YAML from "yaml";
import { canonicalValue, shown, valueProblem } from "./recipe-check";
import { IGNORED_KEYS, optionSpec, RECIPE_DEFAULTS, RECIPE_SCHEMA, type OptionSetter, type OptionSpec, type Recipe, type RecipeInput } from "./recipe-schema";

export type { RecipeAugment } from "./recipe-augment";
export { RECIPE_DEFAULTS, type Recipe, type RecipeInput } from "./recipe-schema";

/** Fills defaults and checks every key; errors name the key, the value and what is allowed. */
export function resolveRecipe(input: RecipeInput, source = "recipe"): Recipe {
  for (const key of Object.keys(input)) {
    if (!optionSpec(key) && !IGNORED_KEYS.includes(key)) throw new Error(`${source}: unknown option "${key}"`);
  }
  // lora_alpha defaults to twice the rank, as LLaMA-Factory does.
  const r: Record<string, unknown> = { ...RECIPE_DEFAULTS, lora_alpha: 2 * (input.lora_rank ?? RECIPE_DEFAULTS.lora_rank), ...input };
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

/** Reads a YAML (or JSON) recipe file. */
export function readRecipe(file: string): Recipe {
  let parsed: unknown;
  try {
    parsed = YAML.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: not a readable YAML recipe: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error(`${file}: a recipe must be a mapping of option: value`);
  return resolveRecipe(parsed as RecipeInput, file);
}

/** The recipe as YAML, defaults included, so a run says exactly how it was made. */
export function recipeToYaml(recipe: Recipe): string {
  return YAML.stringify(recipe);
}
