/** Recipes: defaults, YAML round trip, aliases, errors (recipe files, fit() options, CLI flags), and what a notebook plan writes (toRecipe/toYaml). */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { readRecipe, recipeToYaml, resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { ds } from "../../sdk/plan/data";
import { parseOption, valueFromText } from "../../sdk/train/recipe-check";
import { createTinyModel } from "../../sdk/io/tiny";
import { command as evalCommand } from "../../sdk/cli/commands/eval";
import { command as trainCommand } from "../../sdk/cli/commands/train";

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
  const r = resolveRecipe({
    ...required,
    stage: "cls",
    dataset_path: ["a.jsonl", "b.csv"],
    learning_rate: 2e-3,
    lora_target: "q_proj,v_proj",
    resume_from_checkpoint: true,
    augment: { synonyms: 0.1, per_row: 2 },
  });
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
    [{ stage: "dpo" }, /stage dpo \(preference training\) is not supported yet/],
    [{ stage: "xyz" }, /stage must be pt, sft or cls, got "xyz"/],
    [{ lora_rank: 2.5 }, /lora_rank must be a positive whole number, got 2.5/],
    [{ lora_dropout: 1 }, /lora_dropout must be a number in \[0, 1\), got 1/],
    [{ lr_scheduler_type: "polynomial" }, /lr_scheduler_type must be .*got "polynomial"/],
    [{ device: "tpu" }, /device must be cpu, webgpu, cuda or auto, got "tpu"/],
    [{ output_dir: "" }, /output_dir must be a path, got ""/],
    [{ lora_rnak: 8 }, /unknown option "lora_rnak"/],
  ];
  for (const [bad, message] of cases) {
    assert.throws(
      () => resolveRecipe({ ...required, ...bad } as RecipeInput, "my.yaml"),
      (err: Error) => {
        assert.match(err.message, /^my\.yaml: /);
        assert.match(err.message, message);
        return true;
      },
    );
  }
  const file = tmpFile("bad.yaml", "model_name_or_path: m\ndataset_path: d.jsonl\noutput_dir: o\nmax_steps: lots\n");
  assert.throws(() => readRecipe(file), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: max_steps must be a whole number >= 0, got "lots"`));
  const list = tmpFile("list.yaml", "- a\n- b\n");
  assert.throws(() => readRecipe(list), /a recipe must be a mapping of option: value/);
});

test("a notebook plan writes the recipe keys of its steps, LoRA and fit options", () => {
  const plan = ds
    .load("data/t.jsonl")
    .split({ val: 0.1, test: 0.05, seed: 7 })
    .augment({ synonyms: 0.1 })
    .lora({ rank: 8, dropout: 0.05, target: ["q_proj", "v_proj"] });
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
  assert.deepEqual(
    readRecipe(tmpFile("plan.yaml", plan.toYaml("models/tiny", { stage: "cls" }))),
    JSON.parse(JSON.stringify(plan.toRecipe("models/tiny", { stage: "cls" }))),
  );
});

test("a plan step that a recipe cannot hold fails naming the step", () => {
  const filtered = ds
    .load("data/t.jsonl")
    .filter((row) => row.kind === "classification", "keep labelled rows")
    .lora();
  assert.throws(() => filtered.toRecipe("models/tiny"), /step 2 \(filter\) cannot be written to a recipe/);
  assert.throws(() => filtered.toYaml("models/tiny"), /step 2 \(filter\)/);
  const mapped = ds
    .load("data/t.jsonl")
    .split({ val: 0.1 })
    .map((row) => row)
    .lora();
  assert.throws(() => mapped.toRecipe("models/tiny"), /step 3 \(map\)/);
  assert.throws(
    () =>
      ds
        .load("data/t.jsonl")
        .lora()
        .toRecipe("models/tiny", { learningRat: 1 } as never),
    /fit\(\): unknown option "learningRat"/,
  );
});

test("values are checked by type and range; each error names the key, the value and what is allowed", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    // Once crashed in the loader with "Cannot read properties of undefined (reading 'field')".
    [{ formatting: "bogus" }, /formatting must be classification, alpaca, sharegpt, openai or pretrain, got "bogus"/],
    // Once a Node type error inside path.resolve.
    [{ resume_from_checkpoint: 5 }, /resume_from_checkpoint must be a checkpoint folder path, true \(the newest in output_dir\) or false, got 5/],
    [{ learning_rate: Infinity }, /learning_rate must be a positive number, got Infinity/],
    [{ warmup_ratio: Number.NaN }, /warmup_ratio must be a number in \[0, 1\], got NaN/],
    [{ enable_thinking: "yes" }, /enable_thinking must be true or false, got "yes"/],
    [{ adam_beta2: 1 }, /adam_beta2 must be a number in \[0, 1\), got 1/],
    [{ dataset_path: [] }, /dataset_path must be a data file path or a list of them, got \[\]/],
    // (A LLaMA-Factory template name such as "vicuna" means the tokenizer's own template, with a notice: test/lf.)
    [{ template: "vicunya" }, /template must be unset \(the tokenizer's own\) or one of qwen, chatml, llama3, deepseekr1, got "vicunya"/],
    [{ augment: { synonyms: 2 } }, /augment must be a mapping whose synonyms is a rate in \[0, 1\]/],
    [{ augment: { synonym: 0.1 } }, /augment must be a mapping of .*\(unknown: synonym\)/],
    // Once trained q_proj alone, silently.
    [
      { lora_target: "q_proj,v_prj" },
      /lora_target must be "all" \(or "all-linear"\) or a comma-separated list of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj \(unknown: v_prj\), got "q_proj,v_prj"/,
    ],
    [{ lora_target: "all,q_proj" }, /lora_target must be .*\(unknown: all\)/],
    [{ lora_target: " , " }, /lora_target must be "all"/],
  ];
  for (const [bad, message] of cases) {
    assert.throws(
      () => resolveRecipe({ ...required, ...bad } as RecipeInput, "my.yaml"),
      (err: Error) => {
        assert.match(err.message, /^my\.yaml: /);
        assert.match(err.message, message);
        return true;
      },
    );
  }
  // YAML's .inf reads as Infinity and is refused by name.
  const inf = tmpFile("inf.yaml", "model_name_or_path: m\ndataset_path: d.jsonl\noutput_dir: o\nlearning_rate: .inf\n");
  assert.throws(() => readRecipe(inf), /learning_rate must be a positive number, got Infinity/);
  // Module lists with spaces, and PEFT's all-linear (kept as "all"), are fine.
  assert.equal(resolveRecipe({ ...required, lora_target: "q_proj, v_proj" }).lora_target, "q_proj, v_proj");
  assert.equal(resolveRecipe({ ...required, lora_target: "all-linear" }).lora_target, "all");
  assert.equal(resolveRecipe({ ...required, resume_from_checkpoint: false }).resume_from_checkpoint, false);
});

test("a plan's LoRA target and fit options are checked the same way", () => {
  const plan = ds.load("data/t.jsonl").split({ val: 0.1 });
  assert.throws(
    () => plan.lora({ target: ["q_proj", "v_prj"] }).toRecipe("models/tiny"),
    /fit\(\) options: lora_target must be .*\(unknown: v_prj\), got "q_proj,v_prj"/,
  );
  assert.throws(
    () => plan.lora({ rnak: 8 } as never).toRecipe("models/tiny"),
    /lora\(\): unknown option "rnak"; known options: rank, alpha, dropout, target, rslora/,
  );
  assert.throws(
    () => plan.lora().toRecipe("models/tiny", { batchSize: Number("abc") }),
    /per_device_train_batch_size must be a positive whole number, got NaN/,
  );
  assert.throws(() => plan.lora().toRecipe("models/tiny", { device: "tpu" as never }), /device must be cpu, webgpu, cuda or auto, got "tpu"/);
  // Every recipe option has a fit() name; the short names of earlier releases still work.
  const r = plan.lora().toRecipe("models/tiny", { numTrainEpochs: 2, maxSteps: 0, perDeviceEvalBatchSize: 4, fp16: true, adamBeta2: 0.99 });
  assert.deepEqual([r.num_train_epochs, r.per_device_eval_batch_size, r.fp16, r.adam_beta2], [2, 4, true, 0.99]);
  const short = plan.lora().toRecipe("models/tiny", { epochs: 5, batchSize: 2, evalBatchSize: 3, lr: 1e-3 });
  assert.deepEqual([short.num_train_epochs, short.per_device_train_batch_size, short.per_device_eval_batch_size, short.learning_rate], [5, 2, 3, 1e-3]);
});

test("command-line values are read as their option's type", () => {
  assert.equal(valueFromText("resume_from_checkpoint", "false"), false, "--resume_from_checkpoint false is not a path");
  assert.equal(valueFromText("resume_from_checkpoint", "true"), true);
  assert.equal(valueFromText("resume_from_checkpoint", true), true, "a bare flag means true");
  assert.equal(valueFromText("resume_from_checkpoint", "runs/x/checkpoint-5"), "runs/x/checkpoint-5");
  assert.equal(valueFromText("output_dir", "123"), "123", "paths stay text");
  assert.equal(valueFromText("max_steps", "100"), 100);
  assert.equal(valueFromText("max_steps", "lots"), "lots", "left for the check to refuse by name");
  assert.equal(valueFromText("packing", "true"), true);
  assert.equal(valueFromText("lora_target", "q_proj"), "q_proj");
  assert.equal(parseOption("device", "webgpu", "--device"), "webgpu");
  assert.equal(parseOption("per_device_eval_batch_size", "4", "--batch-size"), 4);
  assert.throws(() => parseOption("device", "tpu", "--device"), /^Error: --device must be cpu, webgpu, cuda or auto, got "tpu"$/);
  assert.throws(() => parseOption("per_device_eval_batch_size", "abc", "--batch-size"), /^Error: --batch-size must be a positive whole number, got "abc"$/);
});

test("tunelab eval and tunelab train refuse bad values before running", { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-recipe-cli-"));
  try {
    createTinyModel({ arch: "llama", out: path.join(dir, "model"), seed: 1, hiddenSize: 32, numLayers: 1 });
    const data = path.join(dir, "text.jsonl");
    fs.writeFileSync(data, ['{"text":"a b c d"}', '{"text":"e f g"}'].join("\n") + "\n");
    const evalArgs = ["--model", path.join(dir, "model"), "--data", data, "--json"];
    // Once ran on the CPU without a word.
    await assert.rejects(evalCommand.run([...evalArgs, "--device", "tpu"]), /--device must be cpu, webgpu, cuda or auto, got "tpu"/);
    // Once "collate: no examples".
    await assert.rejects(evalCommand.run([...evalArgs, "--batch-size", "abc"]), /--batch-size must be a positive whole number, got "abc"/);
    const file = path.join(dir, "r.yaml");
    fs.writeFileSync(file, `model_name_or_path: ${path.join(dir, "model")}\ndataset_path: ${data}\noutput_dir: ${path.join(dir, "run")}\nstage: pt\n`);
    await assert.rejects(
      trainCommand.run([file, "--formatting", "bogus"]),
      /formatting must be classification, alpaca, sharegpt, openai or pretrain, got "bogus"/,
    );
    await assert.rejects(trainCommand.run([file, "--lora_target", "q_proj,v_prj"]), /\(unknown: v_prj\)/);
    await assert.rejects(trainCommand.run([file, "--learning_rate", "Infinity"]), /learning_rate must be a positive number, got Infinity/);
    assert.ok(!fs.existsSync(path.join(dir, "run")), "nothing was trained");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
