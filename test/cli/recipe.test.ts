/** Recipes: defaults, YAML round trip, aliases, errors, and what a notebook plan writes (toRecipe/toYaml). */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { readRecipe, recipeToYaml, resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { ds } from "../../sdk/plan/data";

const required: RecipeInput = { model_name_or_path: "models/tiny", dataset_path: "data/t.jsonl", output_dir: "runs/t" };

function tmpFile(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-recipe-"));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

test("defaults are the seed tutorial's values under LLaMA-Factory names", () => {
  const r = resolveRecipe(required);
  assert.equal(r.learning_rate, 3e-5);
  assert.equal(r.per_device_train_batch_size, 16);
  assert.equal(r.warmup_steps, 500);
  assert.equal(r.max_steps, 5000);
  assert.equal(r.lora_rank, 16);
  assert.equal(r.finetuning_type, "lora");
  assert.equal(r.optim, "adamw");
  assert.equal(r.model_name_or_path, "models/tiny");
});

test("a recipe survives recipeToYaml -> file -> readRecipe unchanged", () => {
  const r = resolveRecipe({ ...required, stage: "cls", dataset_path: ["a.jsonl", "b.csv"], learning_rate: 2e-3, lora_target: "q_proj,v_proj", resume_from_checkpoint: true, augment: { synonyms: 0.1, per_row: 2 } });
  const file = tmpFile("r.yaml", recipeToYaml(r));
  assert.deepEqual(readRecipe(file), r);
  // A person's YAML with LLaMA-Factory spellings of numbers reads the same.
  const hand = tmpFile("h.yaml", "model_name_or_path: m\ndataset_path: d.jsonl\noutput_dir: o\nlearning_rate: 1.0e-4\nmax_steps: 10\n");
  const h = readRecipe(hand);
  assert.equal(h.learning_rate, 1e-4);
  assert.equal(h.max_steps, 10);
});

test("optimizer aliases of transformers resolve to tunelab's optimizers", () => {
  assert.equal(resolveRecipe({ ...required, optim: "adamw_torch" as never }).optim, "adamw");
  assert.equal(resolveRecipe({ ...required, optim: "adamw_hf" as never }).optim, "adamw");
  assert.equal(resolveRecipe({ ...required, optim: "lion_32bit" as never }).optim, "lion");
  assert.equal(resolveRecipe({ ...required, optim: "sgd" }).optim, "sgd");
});

test("bad recipes fail naming the file, the key and the value", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ learning_rate: -1 }, /learning_rate must be a positive number, got -1/],
    [{ optim: "adagrad" }, /optim must be one of .*got "adagrad"/],
    [{ stage: "dpo" }, /stage must be pt, sft or cls, got "dpo"/],
    [{ lora_rank: 2.5 }, /lora_rank must be a whole number >= 0, got 2.5/],
    [{ lora_dropout: 1 }, /lora_dropout must be a number in \[0, 1\), got 1/],
    [{ lr_scheduler_type: "polynomial" }, /lr_scheduler_type must be .*got "polynomial"/],
    [{ device: "tpu" }, /device must be cpu, webgpu, cuda or auto, got "tpu"/],
    [{ output_dir: "" }, /output_dir must be a path, got ""/],
    [{ lora_rnak: 8 }, /unknown option "lora_rnak"/],
  ];
  for (const [bad, message] of cases) {
    assert.throws(() => resolveRecipe({ ...required, ...bad } as RecipeInput, "my.yaml"), (err: Error) => {
      assert.match(err.message, /^my\.yaml: /);
      assert.match(err.message, message);
      return true;
    });
  }
  const file = tmpFile("bad.yaml", "model_name_or_path: m\ndataset_path: d.jsonl\noutput_dir: o\nmax_steps: lots\n");
  assert.throws(() => readRecipe(file), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: max_steps must be a whole number >= 0, got "lots"`));
  const list = tmpFile("list.yaml", "- a\n- b\n");
  assert.throws(() => readRecipe(list), /a recipe must be a mapping of option: value/);
});

test("a notebook plan writes the recipe keys of its steps, LoRA and fit options", () => {
  const plan = ds.load("data/t.jsonl").split({ val: 0.1, test: 0.05, seed: 7 }).augment({ synonyms: 0.1 }).lora({ rank: 8, dropout: 0.05, target: ["q_proj", "v_proj"] });
  const r = plan.toRecipe("models/tiny", { stage: "cls", lr: 1e-4, batchSize: 4, maxSteps: 100, evalSteps: 10, earlyStoppingSteps: 3, optim: "lion" });
  assert.equal(r.dataset_path, "data/t.jsonl");
  assert.equal(r.val_size, 0.1);
  assert.equal(r.test_size, 0.05);
  assert.equal(r.seed, 7);
  assert.equal(r.augment?.synonyms, 0.1);
  assert.equal(r.lora_rank, 8);
  assert.equal(r.lora_alpha, 16, "alpha defaults to 2 x rank");
  assert.equal(r.lora_dropout, 0.05);
  assert.equal(r.lora_target, "q_proj,v_proj");
  assert.equal(r.learning_rate, 1e-4);
  assert.equal(r.per_device_train_batch_size, 4);
  assert.equal(r.max_steps, 100);
  assert.equal(r.eval_steps, 10);
  assert.equal(r.early_stopping_steps, 3);
  assert.equal(r.optim, "lion");
  assert.equal(r.warmup_steps, 500, "unset fit options keep the recipe defaults");
  assert.equal(r.output_dir, "runs/tiny-cls");

  const yaml = YAML.parse(plan.toYaml("models/tiny", { stage: "cls", lr: 1e-4 })) as Record<string, unknown>;
  for (const key of ["model_name_or_path", "dataset_path", "stage", "learning_rate", "lora_rank", "lora_target", "val_size", "augment", "output_dir"]) {
    assert.ok(key in yaml, `toYaml has ${key}`);
  }
  assert.equal(yaml.learning_rate, 1e-4);
  assert.deepEqual(yaml.augment, { synonyms: 0.1 });
  // The YAML is a recipe `tunelab train` reads back to the same options.
  assert.deepEqual(readRecipe(tmpFile("plan.yaml", plan.toYaml("models/tiny", { stage: "cls" }))), JSON.parse(JSON.stringify(plan.toRecipe("models/tiny", { stage: "cls" }))));
});

test("a plan step that a recipe cannot hold fails naming the step", () => {
  const filtered = ds.load("data/t.jsonl").filter((row) => row.kind === "classification", "keep labelled rows").lora();
  assert.throws(() => filtered.toRecipe("models/tiny"), /step 2 \(filter\) cannot be written to a recipe/);
  assert.throws(() => filtered.toYaml("models/tiny"), /step 2 \(filter\)/);
  const mapped = ds.load("data/t.jsonl").split({ val: 0.1 }).map((row) => row).lora();
  assert.throws(() => mapped.toRecipe("models/tiny"), /step 3 \(map\)/);
  assert.throws(() => ds.load("data/t.jsonl").lora().toRecipe("models/tiny", { learningRat: 1 } as never), /fit\(\): unknown option "learningRat"/);
});
