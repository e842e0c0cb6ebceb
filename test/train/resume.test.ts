/**
 * The resume matrix: a run with evaluation, early stopping that triggers, gradient accumulation, fp16 loss scaling with
 * overflows inside the run and LoRA dropout, interrupted after several steps and resumed with resume_from_checkpoint,
 * must end bit for bit as the run that never stopped: losses, learning rates, evaluations, every checkpoint, the final
 * adapter's bytes, why it stopped and its best step.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { listCheckpoints } from "../../sdk/train/checkpoint";
import { resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { train, type TrainResult } from "../../sdk/train/trainer";

const root = path.join(__dirname, "../../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-resume-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const modelDir = path.join(tmp, "model");
createTinyModel({ arch: "llama", out: modelDir, seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, initStd: 0.2 });

const EVAL_STEPS = 2;

/**
 * A run whose validation loss is best at step 4 and then worse twice, so early stopping ends it at step 8 and restores
 * step 4's adapter; float16 gradients overflow at steps 1, 3 and 4 (lr 1.0 on this model), lowering the loss scale.
 */
function recipe(out: string, extra: Partial<RecipeInput> = {}) {
  return resolveRecipe({
    model_name_or_path: modelDir,
    dataset_path: path.join(root, "data/arithmetic.txt"),
    output_dir: path.join(tmp, out),
    stage: "pt",
    val_size: 0.2,
    learning_rate: 1.0,
    lr_scheduler_type: "cosine",
    warmup_steps: 2,
    max_steps: 16,
    per_device_train_batch_size: 4,
    gradient_accumulation_steps: 2,
    logging_steps: 1,
    eval_steps: EVAL_STEPS,
    early_stopping_steps: 2,
    save_steps: 1,
    save_total_limit: 100,
    lora_rank: 4,
    lora_alpha: 8,
    lora_dropout: 0.1,
    fp16: true,
    ...extra,
  });
}

/** Trains `out` (resuming when asked) and stops through the AbortSignal after step `stopAt`. */
async function interruptedAt(out: string, stopAt: number, resume: boolean): Promise<TrainResult> {
  const stop = new AbortController();
  const result = await train(recipe(out, resume ? { resume_from_checkpoint: true } : {}), {
    signal: stop.signal,
    callbacks: [{ onStep: (e) => (e.step === stopAt ? stop.abort() : undefined) }],
  });
  assert.equal(result.stoppedBy, "interrupted");
  assert.equal(result.steps, stopAt);
  return result;
}

/** Evaluations of the eval_steps schedule (an interrupted run also evaluates the step it stopped at). */
const scheduled = (r: TrainResult) => r.evals.filter((e) => e.step % EVAL_STEPS === 0);

let whole: TrainResult;

before(async () => {
  whole = await train(recipe("whole"));
  // The scenario must exercise what it claims to: early stopping with an earlier best, and loss-scale changes.
  assert.equal(whole.stoppedBy, "early_stopping");
  assert.ok(whole.bestStep! < whole.steps, `best step ${whole.bestStep} is before the last step ${whole.steps}`);
  const log = fs.readFileSync(path.join(whole.outputDir, "train.log"), "utf8");
  assert.ok((log.match(/loss scale lowered/g) ?? []).length >= 3, "float16 overflows lowered the loss scale during the run");
  assert.match(log, /restored the best adapter from step 4/);
});

/** Asserts that the pieces of an interrupted-and-resumed run add up to the uninterrupted run, bit for bit. */
function assertSameRun(pieces: TrainResult[]): void {
  const last = pieces[pieces.length - 1];
  assert.deepEqual(
    pieces.flatMap((p) => p.history),
    whole.history,
    "per-step losses and learning rates",
  );
  assert.deepEqual(pieces.flatMap(scheduled), whole.evals, "evaluations");
  assert.deepEqual(last.val, whole.val, "evaluation of the returned adapter");
  assert.equal(last.stoppedBy, whole.stoppedBy);
  assert.equal(last.bestStep, whole.bestStep);
  assert.equal(last.steps, whole.steps);
  const bytes = (r: TrainResult, file: string) => fs.readFileSync(path.join(r.outputDir, file));
  assert.ok(bytes(last, "adapter_model.safetensors").equals(bytes(whole, "adapter_model.safetensors")), "adapter_model.safetensors bytes");
  // Every checkpoint both runs wrote holds the same state and tensors.
  const steps = listCheckpoints(last.outputDir).map((c) => c.step);
  assert.deepEqual(
    steps,
    listCheckpoints(whole.outputDir).map((c) => c.step),
  );
  for (const s of steps) {
    for (const file of ["trainer_state.json", "optimizer.safetensors", "adapter_model.safetensors"]) {
      assert.ok(bytes(last, `checkpoint-${s}/${file}`).equals(bytes(whole, `checkpoint-${s}/${file}`)), `checkpoint-${s}/${file}`);
    }
  }
}

for (const stopAt of [2, 5, 7]) {
  test(`interrupted after step ${stopAt} and resumed: the same run bit for bit`, async () => {
    const out = `once-${stopAt}`;
    const first = await interruptedAt(out, stopAt, false);
    const rest = await train(recipe(out, { resume_from_checkpoint: true }));
    assertSameRun([first, rest]);
  });
}

test("interrupted after steps 2, 5 and 7 in turn, resumed each time: the same run bit for bit", async () => {
  const pieces = [await interruptedAt("chain", 2, false), await interruptedAt("chain", 5, true), await interruptedAt("chain", 7, true)];
  pieces.push(await train(recipe("chain", { resume_from_checkpoint: true })));
  assertSameRun(pieces);
  // The fp16 loss scale and its growth counter travel in trainer_state.json.
  const state = JSON.parse(fs.readFileSync(path.join(tmp, "chain", "checkpoint-5", "trainer_state.json"), "utf8"));
  assert.ok(state.lossScale < 65536, `loss scale ${state.lossScale}`);
  assert.equal(typeof state.lossScaleGoodSteps, "number", "the loss scale's good-step counter is saved");
});
