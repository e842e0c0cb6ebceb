/** Checkpoint folders on disk: what a killed save leaves, what resume picks, and checkpoints of older versions. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { listCheckpoints, loadCheckpoint, recoverCheckpointFolders, saveCheckpoint, type TrainerState } from "../../sdk/train/checkpoint";
import type { EngineState } from "../../sdk/train/engine";

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
