/** Checkpoint folders on disk: what a killed save leaves, what resume picks, and checkpoints of older versions. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { listCheckpoints, loadCheckpoint, recoverCheckpointFolders, saveCheckpoint, type TrainerState } from "../../sdk/train/checkpoint";
import type { EngineState } from "../../sdk/train/engine";
import type { Recipe } from "../../sdk/train/recipe";
import { startingState } from "../../sdk/train/run-checkpoints";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-checkpoint-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function stateAt(step: number): TrainerState {
  return { globalStep: step, epoch: 0, bestMetric: null, bestStep: null, patienceUsed: 0, lossScale: 1, lossScaleGoodSteps: 0, logHistory: [] };
}

function engineAt(step: number): EngineState {
  return { step, params: { w: Float32Array.of(step, 2) }, optimizer: { "state.m.w": Float32Array.of(0.5, step) } };
}

test("a save killed between moving the old checkpoint aside and renaming the new one in gets the old one back", () => {
  const out = path.join(tmp, "replace");
  saveCheckpoint(out, null, engineAt(3), stateAt(3));
  // The layout a kill leaves at that point: checkpoint-3 moved aside, the new one still a temporary folder.
  fs.renameSync(path.join(out, "checkpoint-3"), path.join(out, "checkpoint-3.1234.old"));
  fs.mkdirSync(path.join(out, ".checkpoint-3.1234.tmp"));
  recoverCheckpointFolders(out);
  assert.deepEqual(fs.readdirSync(out), ["checkpoint-3"]);
  assert.deepEqual(loadCheckpoint(path.join(out, "checkpoint-3")).engine, engineAt(3));
});

test("a checkpoint folder without its tensors is not offered for resuming; the newest complete one is", () => {
  const out = path.join(tmp, "incomplete");
  saveCheckpoint(out, null, engineAt(1), stateAt(1));
  saveCheckpoint(out, null, engineAt(2), stateAt(2));
  // What deleting a folder file by file leaves when killed half way (e.g. pruning an old checkpoint).
  fs.rmSync(path.join(out, "checkpoint-2", "optimizer.safetensors"));
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [1],
  );
});

test("a checkpoint keeps early stopping's best tensors and gives them back", () => {
  const out = path.join(tmp, "best");
  const state = { ...stateAt(6), bestStep: 4, bestMetric: 1.5 };
  const best = { step: 4, params: { w: Float32Array.of(4, 4) } };
  saveCheckpoint(out, null, engineAt(6), state, best);
  const loaded = loadCheckpoint(path.join(out, "checkpoint-6"));
  assert.deepEqual(loaded.best, best);
  assert.deepEqual(loaded.engine, engineAt(6));
});

/** Rewrites a checkpoint's trainer_state.json as tunelab wrote it before the loss scale's counter was kept. */
function asOldFormat(dir: string): void {
  const file = path.join(dir, "trainer_state.json");
  const { lossScaleGoodSteps: _dropped, ...old } = JSON.parse(fs.readFileSync(file, "utf8"));
  fs.writeFileSync(file, JSON.stringify(old));
}

test("checkpoints written before the best tensors and the loss scale's counter were kept still resume", () => {
  const out = path.join(tmp, "old");
  // An old run: early stopping's best at step 4 (a checkpoint of its own, kept by pruning), the newest at step 6.
  saveCheckpoint(out, null, engineAt(4), { ...stateAt(4), bestStep: 4, bestMetric: 1.5 });
  saveCheckpoint(out, null, engineAt(6), { ...stateAt(6), bestStep: 4, bestMetric: 1.5, patienceUsed: 1 });
  for (const s of [4, 6]) asOldFormat(path.join(out, `checkpoint-${s}`));
  const loaded = loadCheckpoint(path.join(out, "checkpoint-6"));
  assert.equal(loaded.state.lossScaleGoodSteps, 0);
  assert.equal(loaded.best, null);
  let restored: EngineState | null = null;
  const start = startingState({ resume_from_checkpoint: true, fp16: false } as Recipe, out, { restore: (s) => void (restored = s) });
  assert.deepEqual(restored, engineAt(6));
  assert.deepEqual(start.best, { step: 4, params: engineAt(4).params }, "the best tensors come from checkpoint-4");
});

test("a damaged trainer_state.json is refused naming the file", () => {
  const out = path.join(tmp, "damaged");
  const dir = saveCheckpoint(out, null, engineAt(1), stateAt(1));
  fs.writeFileSync(path.join(dir, "trainer_state.json"), '{"epoch": 1}');
  assert.throws(() => loadCheckpoint(dir), /checkpoint-1\/trainer_state\.json: not a tunelab trainer state/);
});
