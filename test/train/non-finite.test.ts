import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import type { ForwardBuilder } from "../../sdk/models/forward";
import { loadAdapter, type Adapter } from "../../sdk/models/lora";
import { listCheckpoints, loadCheckpoint } from "../../sdk/train/checkpoint";
import { StepEngine } from "../../sdk/train/engine";
import { resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";

const root = path.join(__dirname, "../../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-nonfinite-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const byteModel = path.join(tmp, "llama-byte");
createTinyModel({ arch: "llama", out: byteModel, seed: 0, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });

/** A small pre-training recipe on the bundled arithmetic sentences (byte tokenizer: fast), AdamW by default. */
function ptRecipe(out: string, extra: Partial<RecipeInput> = {}) {
  return resolveRecipe({
    model_name_or_path: byteModel,
    dataset_path: path.join(root, "data/arithmetic.txt"),
    output_dir: path.join(tmp, out),
    stage: "pt",
    learning_rate: 5e-3,
    warmup_steps: 0,
    lr_scheduler_type: "constant",
    max_steps: 6,
    per_device_train_batch_size: 8,
    logging_steps: 1,
    save_steps: 0,
    lora_rank: 4,
    lora_alpha: 8,
    lora_dropout: 0,
    ...extra,
  });
}

/** Every value of a saved adapter. */
function adapterValues(adapter: Adapter): number[] {
  const out: number[] = [];
  for (const w of Object.values(adapter.lora)) out.push(...w.A, ...w.B);
  for (const p of Object.values(adapter.modulesToSave)) out.push(...p.data);
  return out;
}

// loss = sum(p * c) over one row, so dloss/dp = c; its zero element has a zero gradient.
const c = Float32Array.from([0.5, 0, -2, 1]);
const forward: ForwardBuilder = (b, params) => {
  const coef = b.graph.input("coef", "float32", [4]);
  return { lossSum: b.sumAll(b.mul(coef, params.get("p")!)), count: b.scalar(1) };
};
const feeds = { coef: { dtype: "float32" as const, shape: [4], data: c } };
const init = Float32Array.from([1, -2, 0.5, 3]);

test("a step whose update is not finite (AdamW with eps 0 on a zero gradient: 0/0) is not applied", async () => {
  const engine = StepEngine.create({ forward, trainable: [{ name: "p", shape: [4], init }], optimizer: { name: "adamw", eps: 0 }, maxGradNorm: 1 });
  const before = engine.snapshot();
  const result = await engine.train([feeds], 0.1);
  assert.ok(Number.isFinite(result.loss) && Number.isFinite(result.gradNorm), "loss and gradient norm are finite");
  assert.equal(result.applied, false);
  assert.equal(result.nonFinite, "update");
  assert.ok(Number.isNaN(result.updateNorm));
  assert.deepEqual(engine.snapshot(), before, "tensors, optimizer state and step are those of before the step");
  await engine.release();
});

test("a step whose new optimizer state is not finite is not applied, though its update is", async () => {
  const engine = StepEngine.create({ forward, trainable: [{ name: "p", shape: [4], init }], optimizer: { name: "adamw" }, maxGradNorm: 1 });
  // An infinite second moment makes that element's update m / inf = 0 (finite) and keeps the state infinite.
  const state = engine.snapshot();
  state.optimizer["state.exp_avg_sq.p"][2] = Infinity;
  engine.restore(state);
  const result = await engine.train([feeds], 0.1);
  assert.ok(Number.isFinite(result.loss) && Number.isFinite(result.gradNorm));
  assert.equal(result.applied, false);
  assert.equal(result.nonFinite, "optimizer_state");
  assert.ok(Number.isFinite(result.updateNorm));
  assert.deepEqual(Array.from(engine.param("p")), Array.from(init));
  assert.equal(engine.step, 0);
  await engine.release();
});

test("a NaN update at step 1 stops the run: no checkpoint, a finite adapter (the starting tensors), and a log that says so", async () => {
  const messages: string[] = [];
  const result = await train(ptRecipe("eps0", { adam_epsilon: 0 }), { callbacks: [{ onDiagnostic: (d) => void messages.push(d.message) }] });
  assert.equal(result.stoppedBy, "non_finite_loss");
  assert.equal(result.steps, 0);
  assert.deepEqual(listCheckpoints(result.outputDir), []);
  const saved = adapterValues(loadAdapter(result.outputDir));
  assert.ok(saved.length > 0 && saved.every(Number.isFinite), "every value of the saved adapter is finite");
  assert.equal(messages.length, 1);
  assert.match(messages[0], /update .*NaN at step 1/);
  assert.match(messages[0], /no checkpoint was written/);
  assert.match(messages[0], /holds the tensors the run started from/);
  const log = fs.readFileSync(path.join(result.outputDir, "train.log"), "utf8");
  assert.doesNotMatch(log, /last good checkpoint is kept/);
  assert.doesNotMatch(log, /update_norm: nan/i, "no step with a NaN update is logged as taken");
});

test("a NaN update after a resume: the run keeps the last good state as a checkpoint and as the final adapter", async () => {
  const good = await train(ptRecipe("resume-nan", { max_steps: 3 }));
  assert.equal(good.steps, 3);
  const goodAdapter = adapterValues(loadAdapter(good.outputDir));
  // lr · weight_decay overflows float32, so AdamW's decay factor is -inf: the new tensors are inf and NaN (0 · inf).
  const messages: string[] = [];
  const result = await train(ptRecipe("resume-nan", { max_steps: 6, resume_from_checkpoint: true, learning_rate: 1e38, weight_decay: 10 }), {
    callbacks: [{ onDiagnostic: (d) => void messages.push(d.message) }],
  });
  assert.equal(result.stoppedBy, "non_finite_loss");
  assert.equal(result.steps, 3);
  const saved = adapterValues(loadAdapter(result.outputDir));
  assert.ok(saved.every(Number.isFinite), "every value of the saved adapter is finite");
  assert.deepEqual(saved, goodAdapter, "the saved adapter is the state of step 3");
  const last = loadCheckpoint(listCheckpoints(result.outputDir).at(-1)!.dir);
  assert.equal(last.state.globalStep, 3);
  for (const data of [...Object.values(last.engine.params), ...Object.values(last.engine.optimizer)]) assert.ok(data.every(Number.isFinite));
  assert.equal(messages.length, 1);
  assert.match(messages[0], /at step 4/);
  assert.match(messages[0], /checkpoint-3/);
});
