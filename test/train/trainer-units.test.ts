/** The trainer's small units on their own: the event list and its control, fp16 loss scaling, early stopping. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TrainerEvents, type TrainerCallbacks } from "../../sdk/train/callbacks";
import type { TrainerState } from "../../sdk/train/checkpoint";
import { EarlyStopping } from "../../sdk/train/early-stopping";
import type { ParamsState } from "../../sdk/train/engine";
import { INITIAL_LOSS_SCALE, LossScaling } from "../../sdk/train/loss-scaling";

function freshState(): TrainerState {
  return { globalStep: 0, epoch: 0, bestMetric: null, bestStep: null, patienceUsed: 0, lossScale: INITIAL_LOSS_SCALE, lossScaleGoodSteps: 0, logHistory: [] };
}

const step = (n: number) => ({
  step: n,
  maxSteps: 10,
  epoch: 0,
  numEpochs: 1,
  loss: 1,
  learningRate: 0,
  gradNorm: 0,
  updateNorm: 0,
  tokensPerSecond: 0,
  elapsedSeconds: 0,
});

test("subscribers are called in order with the control; a stop request is taken once, the first one wins", async () => {
  const calls: string[] = [];
  const events = new TrainerEvents([
    { onStep: (e) => void calls.push(`a${e.step}`), onMessage: (t) => void calls.push(`a:${t}`) },
    { onStep: (e, control) => (calls.push(`b${e.step}`), control.stop("early_stopping")) },
    { onStep: (_e, control) => control.stop("interrupted"), onMessage: (t) => void calls.push(`c:${t}`) },
  ]);
  await events.emit("onStep", step(3));
  await events.note("hello");
  assert.deepEqual(calls, ["a3", "b3", "a:hello", "c:hello"]);
  assert.equal(events.takeStop()?.reason, "early_stopping");
  assert.equal(events.takeStop(), null);
});

test("a skipped step is retried only when a subscriber asks, each time anew", async () => {
  let retry = true;
  const events = new TrainerEvents([{ onSkippedStep: (_e, control) => (retry ? control.retryStep() : undefined) }]);
  assert.equal(await events.retrySkipped({ step: 1, loss: 2, nonFinite: "gradients" }), true);
  retry = false;
  assert.equal(await events.retrySkipped({ step: 1, loss: 2, nonFinite: "gradients" }), false);
});

test("fp16 loss scaling halves the scale and retries on overflow, stops lowering at 1, never retries a non-finite loss, update or state", async () => {
  const state = freshState();
  const notes: string[] = [];
  const events = new TrainerEvents([new LossScaling(state), { onMessage: (t) => void notes.push(t) }]);
  assert.equal(await events.retrySkipped({ step: 1, loss: 2.5, nonFinite: "gradients" }), true);
  assert.equal(state.lossScale, INITIAL_LOSS_SCALE / 2);
  assert.deepEqual(notes, [`float16 gradients overflowed at step 1; loss scale lowered to ${INITIAL_LOSS_SCALE / 2}`]);
  assert.equal(await events.retrySkipped({ step: 1, loss: NaN, nonFinite: "loss" }), false);
  assert.equal(await events.retrySkipped({ step: 1, loss: 2.5, nonFinite: "update" }), false);
  assert.equal(await events.retrySkipped({ step: 1, loss: 2.5, nonFinite: "optimizer_state" }), false);
  assert.equal(state.lossScale, INITIAL_LOSS_SCALE / 2, "only a gradient overflow lowers the scale");
  state.lossScale = 1;
  assert.equal(await events.retrySkipped({ step: 1, loss: 2.5, nonFinite: "gradients" }), false);
  assert.equal(state.lossScale, 1);
});

test("fp16 loss scaling doubles the scale after 2000 good steps in a row", async () => {
  const state = freshState();
  const scaling = new LossScaling(state);
  for (let i = 0; i < 1999; i++) scaling.onStep();
  assert.equal(state.lossScale, INITIAL_LOSS_SCALE);
  scaling.onStep();
  assert.equal(state.lossScale, 2 * INITIAL_LOSS_SCALE);
});

test("early stopping keeps the best evaluation, asks to stop after `patience` without improvement, and restores the best", async () => {
  const state = freshState();
  let restored: ParamsState | null = null;
  const engine = { snapshotParams: (): ParamsState => ({ step: state.globalStep, params: {} }), restoreParams: (s: ParamsState) => void (restored = s) };
  const stopping = new EarlyStopping(state, engine, 2);
  const events = new TrainerEvents([stopping]);
  const evalAt = async (s: number, loss: number) => {
    state.globalStep = s;
    await events.emit("onEval", { step: s, epoch: 0, loss, metrics: {} });
    return events.takeStop();
  };
  assert.equal(await evalAt(2, 1.0), null);
  assert.equal(await evalAt(4, 0.5), null);
  assert.equal(await evalAt(6, 0.7), null);
  const stop = await evalAt(8, 0.6);
  assert.equal(stop?.reason, "early_stopping");
  assert.equal(stop?.diagnostic?.kind, "early_stopping");
  assert.deepEqual([state.bestMetric, state.bestStep, state.patienceUsed], [0.5, 4, 2]);
  assert.equal(stopping.restoreBest(), true);
  assert.equal((restored as ParamsState | null)?.step, 4);
});

test("early stopping with patience 0 tracks the best step but never stops nor restores", async () => {
  const state = freshState();
  const engine = { snapshotParams: (): ParamsState => assert.fail("no snapshot needed"), restoreParams: () => assert.fail("nothing to restore") };
  const stopping: TrainerCallbacks & EarlyStopping = new EarlyStopping(state, engine, 0);
  const events = new TrainerEvents([stopping]);
  for (const [s, loss] of [
    [1, 1],
    [2, 2],
    [3, 3],
    [4, 4],
  ]) {
    state.globalStep = s;
    await events.emit("onEval", { step: s, epoch: 0, loss, metrics: {} });
  }
  assert.equal(events.takeStop(), null);
  assert.equal(state.bestStep, 1);
  assert.equal(stopping.restoreBest(), false);
});

test("the loss scale's good-step counter lives in the trainer state, so a resumed run doubles the scale when the whole run would", () => {
  const state = freshState();
  const before = new LossScaling(state);
  for (let i = 0; i < 1500; i++) before.onStep();
  // A checkpoint keeps the state as JSON; a resumed run builds a new LossScaling over what it reads back.
  const resumed = JSON.parse(JSON.stringify(state)) as TrainerState;
  const after = new LossScaling(resumed);
  for (let i = 0; i < 499; i++) after.onStep();
  assert.equal(resumed.lossScale, INITIAL_LOSS_SCALE);
  after.onStep();
  assert.equal(resumed.lossScale, 2 * INITIAL_LOSS_SCALE, "doubled after 2000 good steps in all");
});

test("early stopping resumed without the best step's tensors says that it cannot restore them", async () => {
  const state = { ...freshState(), globalStep: 6, bestStep: 4, bestMetric: 1 };
  const engine = { snapshotParams: (): ParamsState => assert.fail("no snapshot"), restoreParams: () => assert.fail("nothing to restore") };
  const notes: string[] = [];
  const info = { maxSteps: 10, numEpochs: 1, trainExamples: 1, valExamples: 1, outputDir: "out" };
  await new TrainerEvents([new EarlyStopping(state, engine, 2), { onMessage: (t) => void notes.push(t) }]).emit("onStart", info);
  assert.match(notes.join("\n"), /keeps no tensors of the best step 4/);
  notes.length = 0;
  const best = { step: 4, params: {} };
  await new TrainerEvents([new EarlyStopping(state, engine, 2, best), { onMessage: (t) => void notes.push(t) }]).emit("onStart", info);
  assert.deepEqual(notes, []);
});
