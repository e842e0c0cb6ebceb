/** The recipe schema: docs/recipes.md agrees with it, types derive from it, and one data pipeline serves plans and recipes. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ds } from "../../sdk/plan/data";
import type { FitOptions } from "../../sdk/plan/lora";
import { isSplit } from "../../sdk/data/steps";
import { loadSplits } from "../../sdk/train/prepare";
import { resolveRecipe } from "../../sdk/train/recipe";
import { DOCS_BEGIN, DOCS_END, recipeOptionsMarkdown, withRecipeOptions } from "../../sdk/train/recipe-docs";
import { RECIPE_DEFAULTS, RECIPE_SCHEMA, type Recipe, type RecipeInput } from "../../sdk/train/recipe-schema";

const root = path.resolve(__dirname, "..", "..", "..");
const required: RecipeInput = { model_name_or_path: "models/tiny", dataset_path: "data/t.jsonl", output_dir: "runs/t" };

test("docs/recipes.md's option tables are the schema's (rewrite them with scripts/recipe-docs.ts)", () => {
  const doc = fs.readFileSync(path.join(root, "docs", "recipes.md"), "utf8");
  const begin = doc.indexOf(DOCS_BEGIN);
  const end = doc.indexOf(DOCS_END);
  assert.ok(begin >= 0 && end > begin, "docs/recipes.md has the generated-tables markers");
  assert.equal(
    doc.slice(begin + DOCS_BEGIN.length, end).trim(),
    recipeOptionsMarkdown(),
    "docs/recipes.md differs from the schema: run scripts/recipe-docs.ts",
  );
  assert.equal(withRecipeOptions(doc), doc);
  // Every option has a row, and the rows show the schema's defaults.
  for (const key of Object.keys(RECIPE_SCHEMA)) assert.match(doc, new RegExp(`^\\| \`${key}\` \\|`, "m"), `${key} is documented`);
  assert.match(doc, /^\| `learning_rate` \| 3e-5 \| `learningRate`, `lr` \|/m);
});

test("types derive from the schema: enums are literal unions, FitOptions has every fit() name", () => {
  type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
  const checks: [
    Same<Recipe["stage"], "pt" | "sft" | "cls">,
    Same<Recipe["optim"], "adamw" | "sgd" | "lion">,
    Same<Recipe["device"], "cpu" | "webgpu" | "cuda" | "auto">,
    Same<Recipe["resume_from_checkpoint"], string | boolean | undefined>,
    Same<Recipe["dataset_path"], string | string[]>,
    Same<FitOptions["lr"], number | undefined>,
    Same<FitOptions["stage"], "pt" | "sft" | "cls" | undefined>,
    Same<
      Extract<
        keyof FitOptions,
        "batchSize" | "epochs" | "evalBatchSize" | "maxSteps" | "warmupSteps" | "evalSteps" | "outputDir" | "callbacks" | "signal" | "live"
      >,
      "batchSize" | "epochs" | "evalBatchSize" | "maxSteps" | "warmupSteps" | "evalSteps" | "outputDir" | "callbacks" | "signal" | "live"
    >,
    Same<Extract<keyof FitOptions, "lora_rank" | "rank" | "val">, never>,
  ] = [true, true, true, true, true, true, true, true, true];
  assert.ok(checks.every(Boolean));
  // sdk names of fit() options are the recipe keys in camelCase.
  for (const [key, spec] of Object.entries(RECIPE_SCHEMA)) {
    if (spec.set === "fit")
      assert.equal(
        spec.sdk,
        key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
        key,
      );
  }
});

test("one default per option: LoRA defaults, recipe defaults and docs all read the schema", () => {
  const r = ds.load("data/t.jsonl").lora().toRecipe("models/tiny");
  assert.equal(r.lora_rank, RECIPE_SCHEMA.lora_rank.default);
  assert.equal(r.lora_alpha, 2 * RECIPE_SCHEMA.lora_rank.default);
  assert.equal(r.lora_dropout, RECIPE_SCHEMA.lora_dropout.default);
  assert.equal(r.lora_target, "all");
  assert.equal(r.use_rslora, false);
  assert.equal(resolveRecipe(required).learning_rate, RECIPE_DEFAULTS.learning_rate);
  assert.equal(RECIPE_DEFAULTS.lora_rank, 16);
});

test("a plan and a recipe load, split and augment through the same steps, with the same seeded rows", async () => {
  const file = path.join(root, "data", "support_tickets.jsonl");
  const plan = ds.load(file).split({ val: 0.1, test: 0.1, seed: 7 }).augment({ synonyms: 0.1, swap: 0.1, seed: 7 });
  const fromPlan = await plan.materialize();
  assert.ok(isSplit(fromPlan));
  const recipe = resolveRecipe({ ...required, stage: "cls", ...plan.toRecipeData() });
  const fromRecipe = await loadSplits(recipe);
  for (const part of ["train", "val", "test"] as const) {
    assert.deepEqual(fromRecipe[part].rows, fromPlan[part].rows, part);
  }
  assert.ok(
    fromRecipe.train.rows.some((r) => r.provenance.augmented),
    "augmented rows were made",
  );
});
