import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ds, JUPYTER_DISPLAY, Model, readRecipe } from "../../sdk";
import type { KvCache } from "../../sdk/infer/generate";

const root = path.join(__dirname, "../../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-plan-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the fluent chain trains, evaluates, displays and writes a recipe that reads back", async () => {
  const base = await Model.tiny({
    arch: "qwen2",
    out: path.join(tmp, "model"),
    seed: 0,
    hiddenSize: 32,
    numLayers: 1,
    numHeads: 4,
    numKvHeads: 2,
    tokenizer: "qwen3",
  });
  const plan = ds.load(path.join(root, "data/support_tickets.jsonl")).split({ val: 0.1, test: 0.1, seed: 7 }).lora({ rank: 8 });
  const options = {
    stage: "cls" as const,
    lr: 2e-3,
    batchSize: 16,
    warmupSteps: 5,
    maxSteps: 40,
    evalSteps: 20,
    saveSteps: 0,
    outputDir: path.join(tmp, "run"),
    live: false,
  };
  const run = await plan.fit(base, options);
  assert.equal(run.steps, 40);
  assert.equal(run.result.recipe.lora_alpha, 16, "alpha defaults to 2 x rank");

  const report = await run.evaluate({ split: "test", metrics: ["accuracy", "f1"] });
  assert.deepEqual(Object.keys(report.metrics).sort(), ["accuracy", "f1_macro", "f1_micro", "f1_weighted"]);
  assert.equal(report.confusion?.labels.length, 4);
  assert.ok(report.metrics.accuracy > 0.25, `test accuracy ${report.metrics.accuracy}`);

  const bundle = run[JUPYTER_DISPLAY]();
  assert.match(String(bundle["text/html"]), /class="tunelab-plot"/);
  assert.match(bundle["text/plain"], /steps\s+40/);

  // The same plan as a YAML recipe: `tunelab train` would run these exact options.
  const file = path.join(tmp, "recipe.yaml");
  fs.writeFileSync(file, plan.toYaml(base, options));
  const recipe = readRecipe(file);
  assert.equal(recipe.max_steps, 40);
  assert.equal(recipe.val_size, 0.1);
  assert.equal(recipe.seed, 7);
  assert.equal(recipe.per_device_train_batch_size, 16);
  assert.equal(recipe.model_name_or_path, base.dir);
});

test("a data plan shows a preview when a notebook displays it", async () => {
  const plan = ds.load(path.join(root, "data/support_tickets.jsonl")).split({ val: 0.2, seed: 1 });
  const bundle = await plan[JUPYTER_DISPLAY]({ inlinePlotly: false });
  assert.match(String(bundle["text/html"]), /<table/);
  assert.match(bundle["text/plain"], /train 640, val 160 rows/);
});

test("Model.evaluate's perplexity equals token-by-token scoring through the KV-cache generation graph", async () => {
  const base = await Model.tiny({
    arch: "llama",
    out: path.join(tmp, "llama"),
    seed: 4,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    initStd: 0.2,
  });
  const rows = ["Two plus two is four.", "Hello!", "The sum of 3 and 5 is 8."];
  const report = await base.evaluate(ds.fromRows(rows.map((text) => ({ kind: "pretrain" as const, text }))));
  // Independent path: the generation graph, fed one token at a time, scores each next token.
  const gen = base.generator();
  let nll = 0;
  let count = 0;
  for (const text of rows) {
    const ids = base.tokenizer.encode(text);
    let cache: KvCache | null = null;
    for (let t = 0; t + 1 < ids.length; t++) {
      const out = await gen.forward({ inputIds: [[ids[t]]], positionIds: [[t]], attentionMask: [Array(t + 1).fill(1)] }, cache);
      cache = out.cache;
      const logits = out.logits[0];
      const max = Math.max(...logits);
      const logSum = Math.log(logits.reduce((a, v) => a + Math.exp(v - max), 0)) + max;
      nll += logSum - logits[ids[t + 1]];
      count++;
    }
  }
  await gen.release();
  const loss = nll / count;
  assert.ok(Math.abs(report.metrics.loss - loss) < 1e-4 * loss, `evaluate ${report.metrics.loss} vs generation graph ${loss}`);
  assert.ok(Math.abs(report.metrics.perplexity - Math.exp(report.metrics.loss)) < 1e-9 * report.metrics.perplexity);
});

test("run.evaluateGeneration scores the tuned adapter's answers on a split, and with withBase compares them to the base's", async () => {
  const base = await Model.tiny({ arch: "llama", out: path.join(tmp, "sft-model"), seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });
  const run = await ds
    .load(path.join(root, "data/alpaca_tasks.json"))
    .split({ val: 0.1, seed: 3 })
    .lora({ rank: 4 })
    .fit(base, { stage: "sft", lr: 1e-2, batchSize: 8, warmupSteps: 0, maxSteps: 4, saveSteps: 0, outputDir: path.join(tmp, "sft-run"), live: false });
  const e = await run.evaluateGeneration({ metrics: ["exact_match", "bleu"], maxNewTokens: 4, withBase: true });
  assert.deepEqual(Object.keys(e.metrics).sort(), ["bleu", "exact_match"]);
  for (const v of Object.values(e.metrics)) assert.ok(v >= 0 && v <= 1, `metric ${v}`);
  assert.equal(e.generation?.samples.length, run.result.data.splits.val.length, "one answer per validation row");
  assert.ok(e.comparison, "withBase gives the base-vs-tuned comparison");
  await assert.rejects(run.evaluateGeneration({ split: "test", metrics: ["bleu"] }), /the test split is empty/);
});
