/**
 * Rewrites the option tables of docs/recipes.md from the recipe schema (sdk/train/recipe-schema.ts). A test fails
 * while the two disagree; run this after changing an option.
 *
 * Run: npx tsc --module commonjs --target es2022 --types node --strict --esModuleInterop --resolveJsonModule --skipLibCheck \
 *        --outDir /tmp/tunelab-recipe-docs scripts/recipe-docs.ts && node /tmp/tunelab-recipe-docs/scripts/recipe-docs.js
 *        (from the repository root)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withRecipeOptions } from "../sdk/train/recipe-docs";

const file = join(process.cwd(), "docs", "recipes.md");
const before = readFileSync(file, "utf8");
const after = withRecipeOptions(before);
if (after === before) console.log(`${file}: up to date`);
else {
  writeFileSync(file, after);
  console.log(`${file}: option tables rewritten`);
}
