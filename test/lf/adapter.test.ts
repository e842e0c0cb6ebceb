/** Continuing a PEFT adapter follows LLaMA-Factory: its adapter_config.json decides the LoRA shape; recipe keys that disagree are errors. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { loadAdapter } from "../../sdk/models/lora";
import { resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";
import { tempDir } from "./helpers";

const root = path.resolve(__dirname, "..", "..", "..");
const tmp = tempDir();
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const model = path.join(tmp, "tiny-llama");
createTinyModel({ arch: "llama", out: model, seed: 0, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2 });

const base = {
  model_name_or_path: model,
  dataset_path: path.join(root, "data/arithmetic.txt"),
  stage: "pt",
  max_steps: 3,
  warmup_steps: 0,
  per_device_train_batch_size: 4,
  save_steps: 0,
  logging_steps: 1,
} as const;

test("an adapter (r 8, o_proj and v_proj) continues without lora_* keys: its config decides, as the issue's recipe wanted", async () => {
  const first = path.join(tmp, "first");
  await train(
    resolveRecipe({ ...base, output_dir: first, lora_rank: 8, lora_alpha: 12, lora_dropout: 0.05, lora_target: "o_proj,v_proj", learning_rate: 1e-2 }),
  );
  const before = loadAdapter(first);
  // The recipe of the issue: adapter_name_or_path, no lora_target (whose default, all, once made this fail).
  const input: RecipeInput = { ...base, output_dir: path.join(tmp, "second"), adapter_name_or_path: first, learning_rate: 1e-9 };
  const recipe = resolveRecipe(input);
  assert.deepEqual([recipe.lora_rank, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_target, recipe.use_rslora], [8, 12, 0.05, "o_proj,v_proj", false]);
  const result = await train(recipe);
  const after_ = loadAdapter(result.outputDir);
  assert.equal(after_.config.r, 8);
  assert.equal(after_.config.loraAlpha, 12);
  assert.deepEqual([...(after_.config.targetModules as string[])].sort(), ["o_proj", "v_proj"]);
  assert.deepEqual(Object.keys(after_.lora).sort(), Object.keys(before.lora).sort());
  // It started from the adapter's weights: with a learning rate of 1e-9 three steps leave them where they were.
  for (const [name, w] of Object.entries(before.lora)) {
    const b = after_.lora[name];
    const maxDiff = Math.max(...w.B.map((v, i) => Math.abs(v - b.B[i])));
    assert.ok(
      w.B.some((v) => v !== 0),
      `${name}: the first run trained B away from zero`,
    );
    assert.ok(maxDiff < 1e-5, `${name}: B moved by ${maxDiff}`);
  }
});

test("recipe lora_* keys that disagree with the adapter are an error naming both values", async () => {
  const dir = path.join(tmp, "r4");
  await train(resolveRecipe({ ...base, max_steps: 1, output_dir: dir, lora_rank: 4, lora_target: "q_proj", use_rslora: true, learning_rate: 1e-3 }));
  const cont = (extra: Partial<RecipeInput>) => () =>
    resolveRecipe({ ...base, output_dir: path.join(tmp, "c"), adapter_name_or_path: dir, ...extra }, "cont.yaml");
  assert.throws(
    cont({ lora_rank: 16 }),
    /cont\.yaml: lora_rank is 16 but the adapter being continued has r = 4 \(.*r4\/adapter_config\.json\); .*remove lora_rank or make it 4/,
  );
  assert.throws(cont({ lora_target: "all" }), /lora_target is "all" but the adapter being continued has target_modules = "q_proj"/);
  assert.throws(cont({ use_rslora: false }), /use_rslora is false but the adapter being continued has use_rslora = true/);
  assert.throws(cont({ lora_alpha: 99 }), /lora_alpha is 99 but the adapter being continued has lora_alpha = 8/);
  // Keys that agree (in any order or spelling) are fine.
  assert.equal(resolveRecipe({ ...base, output_dir: "o", adapter_name_or_path: dir, lora_rank: 4, lora_target: " q_proj " }).lora_rank, 4);
  assert.throws(() => resolveRecipe({ ...base, output_dir: "o", adapter_name_or_path: path.join(tmp, "missing") }), /adapter_config\.json/);
});
