/**
 * Bringing runs back: Run.logs / Run.open / `tunelab show` read LLaMA-Factory output folders (fields as LF's
 * LogCallback and transformers' Trainer write them: test/lf/fixtures/lf-output) and tunelab's own; an LF run opened
 * from an export evaluates exactly as the local run with the same adapter does.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { exportLlamaFactory } from "../../sdk/export/llamafactory";
import { Model } from "../../sdk/plan/model";
import { Run } from "../../sdk/plan/open-run";
import { TrainedRun } from "../../sdk/plan/run";
import { resolveRecipe } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";
import { JUPYTER_DISPLAY } from "../../sdk/viz/display";
import { command as showCommand } from "../../sdk/cli/commands/show";
import { tempDir } from "./helpers";

const root = path.resolve(__dirname, "..", "..", "..");
const fixtures = path.join(root, "test", "lf", "fixtures");
const tmp = tempDir();
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const modelDir = path.join(tmp, "tiny-llama");
createTinyModel({ arch: "llama", out: modelDir, seed: 0, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });

const recipe = resolveRecipe({
  model_name_or_path: modelDir,
  dataset_path: path.join(root, "data/alpaca_tasks.json"),
  output_dir: path.join(tmp, "local"),
  val_size: 0.1,
  test_size: 0.1,
  max_steps: 4,
  warmup_steps: 0,
  learning_rate: 5e-3,
  per_device_train_batch_size: 4,
  eval_steps: 2,
  save_steps: 0,
  logging_steps: 1,
  lora_rank: 4,
  cutoff_len: 128,
});

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

test("Run.logs reads an LF output folder: trainer_state.json's log_history, all_results.json", () => {
  const logs = Run.logs(path.join(fixtures, "lf-output"));
  assert.equal(logs.data.source, "llamafactory");
  assert.deepEqual(
    logs.history.map((h) => [h.step, h.loss, h.learningRate, h.gradNorm]),
    [
      [1, 3.1862, 0.0002, 1.8093477487564087],
      [2, 3.0247, 0.00017071067811865476, 1.7510446310043335],
      [3, 2.8811, 0.0001, 1.6237014532089233],
      [4, 2.7403, 2.9289321881345254e-5, 1.5521180629730225],
    ],
  );
  assert.deepEqual(
    logs.evals.map((e) => [e.step, e.loss]),
    [
      [2, 3.0512845516204834],
      [4, 2.8390190601348877],
    ],
  );
  assert.equal(logs.evals[1].metrics.perplexity, Math.exp(2.8390190601348877));
  assert.equal(logs.evals[1].metrics.runtime, undefined, "throughput figures are not metrics");
  assert.equal(logs.data.results.train_loss, 2.958075);
  assert.equal(logs.data.steps, 4);
  assert.equal(logs.data.totalSteps, 4);
  const fig = logs.lossCurve();
  const traces = (fig as unknown as { data: { name: string; x: number[]; y: number[] }[] }).data;
  const byName = Object.fromEntries(traces.map((t) => [t.name, t]));
  assert.deepEqual(byName["train loss"].x, [1, 2, 3, 4]);
  assert.deepEqual(byName["val loss"].y, [3.0512845516204834, 2.8390190601348877]);
  const bundle = logs[JUPYTER_DISPLAY]();
  assert.match(bundle["text/plain"] as string, /written by\s+LLaMA-Factory/);
  assert.match(bundle["text/html"] as string, /plotly/i);
});

test("a running LF job (trainer_log.jsonl only, last line half written) gives the steps logged so far", () => {
  const logs = Run.logs(path.join(fixtures, "lf-output-running"));
  assert.deepEqual(
    logs.history.map((h) => [h.step, h.loss, h.learningRate, h.epoch]),
    [
      [1, 3.1862, 0.0002, 0.25],
      [2, 3.0247, 0.00017071067811865476, 0.5],
      [3, 2.8811, 0.0001, 0.75],
    ],
  );
  assert.deepEqual(
    logs.evals.map((e) => [e.step, e.loss]),
    [[2, 3.0512845516204834]],
  );
  assert.equal(logs.data.totalSteps, 4);
  assert.deepEqual(logs.data.readFrom, ["trainer_log.jsonl"]);
});

test("a notebook -> export -> LF job -> Run.open round: the loss curve and evaluation of the LF run's adapter", async () => {
  // The local run; its adapter stands in for the one the LF job trains (same PEFT files LF writes).
  const model = await Model.open(modelDir);
  const local = new TrainedRun(await train(recipe), model);
  const job = path.join(tmp, "job");
  await exportLlamaFactory(recipe, { out: job, nodes: 2, gpusPerNode: 4 });
  const output = path.join(job, "output");
  fs.mkdirSync(output);
  for (const f of fs.readdirSync(path.join(fixtures, "lf-output"))) fs.copyFileSync(path.join(fixtures, "lf-output", f), path.join(output, f));
  for (const f of ["adapter_config.json", "adapter_model.safetensors"]) fs.copyFileSync(path.join(local.outputDir, f), path.join(output, f));

  const run = await Run.open(output);
  assert.deepEqual(
    run.history.map((h) => h.step),
    [1, 2, 3, 4],
  );
  assert.equal(run.steps, 4);
  assert.equal(run.result.recipe.eval_dataset, "tunelab_val");
  for (const split of ["val", "test"] as const) {
    const opened = await run.evaluate({ split });
    const here = await local.evaluate({ split });
    assert.ok((opened.numExamples ?? 0) > 0, split);
    assert.equal(opened.numExamples, here.numExamples, split);
    assert.deepEqual(opened.metrics, here.metrics, `${split}: the opened LF run evaluates as the local run`);
  }
  const reply = await run.chat("What is 5 times 7?", { maxNewTokens: 4 });
  assert.equal(typeof reply.text, "string");

  const { code, out } = await capture(() => showCommand.run([output]));
  assert.equal(code, 0);
  assert.match(out, /written by\s+LLaMA-Factory/);
  assert.match(out, /adapter\s+\S*output/);
  assert.match(out, /^\s+4\s+2\.7403\s+2\.8390\s+2\.93e-5$/m);
});

test("Run.open and tunelab show read tunelab's own folders the same way", async () => {
  const dir = path.join(tmp, "local");
  const logs = Run.logs(dir);
  assert.equal(logs.data.source, "tunelab");
  assert.equal(logs.history.length, 4);
  assert.deepEqual(
    logs.evals.map((e) => e.step),
    [2, 4],
  );
  const run = await Run.open(dir);
  const model = await Model.open(modelDir);
  const again = await run.evaluate({ split: "test" });
  const direct = await new TrainedRun({ ...run.result }, model).evaluate({ split: "test" });
  assert.deepEqual(again.metrics, direct.metrics);
  assert.equal(again.metrics.loss, logs.data.results.test_loss, "the test loss run.json recorded at the end of training");
  const { code, out } = await capture(() => showCommand.run([dir, "--json"]));
  assert.equal(code, 0);
  assert.equal(JSON.parse(out).source, "tunelab");
});

test("folders that are not runs, and LF folders without their recipe, say what to pass", async () => {
  assert.throws(
    () => Run.logs(fixtures),
    /not a training output folder: it has none of tunelab's run\.json, metrics\.jsonl or LLaMA-Factory's trainer_state\.json/,
  );
  const bare = path.join(tmp, "bare");
  fs.cpSync(path.join(fixtures, "lf-output"), bare, { recursive: true });
  await assert.rejects(Run.open(bare), /holds no PEFT adapter/);
  fs.copyFileSync(path.join(tmp, "local", "adapter_config.json"), path.join(bare, "adapter_config.json"));
  await assert.rejects(Run.open(bare), /without a tunelab export around it; pass \{ recipe: .*Run\.logs\(dir\)/);
});
