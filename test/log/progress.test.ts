import { test } from "node:test";
import assert from "node:assert/strict";
import { estimateEta, formatDuration, renderProgress } from "../../sdk/train/log";

test("formatDuration", () => {
  assert.equal(formatDuration(0), "00:00");
  assert.equal(formatDuration(133), "02:13");
  assert.equal(formatDuration(3723), "1:02:03");
  assert.equal(formatDuration(undefined), "?");
  assert.equal(formatDuration(NaN), "?");
});

test("ETA uses this run's own rate (after a resume too)", () => {
  assert.equal(estimateEta({ step: 100, maxSteps: 500, elapsedSec: 50 }), 200);
  // resumed at 400: 100 steps in 50 s, 500 left -> 250 s
  assert.equal(estimateEta({ step: 500, maxSteps: 1000, elapsedSec: 50, startStep: 400 }), 250);
  assert.equal(estimateEta({ step: 0, maxSteps: 10, elapsedSec: 5 }), undefined);
});

test("one line with percent, bar, steps, elapsed<eta, tokens/s and loss, fitting the width", () => {
  const line = renderProgress({ step: 1850, maxSteps: 5000, elapsedSec: 133, tokensPerSec: 1234.4, loss: 2.15, epoch: 1, numEpochs: 10 });
  assert.equal(line.length, 80);
  assert.match(line, /^epoch 1\/10 {2}37%\|█+[▏▎▍▌▋▊▉]? *\| 1850\/5000 \[02:13<03:46, 1234 tok\/s, loss 2\.1500\]$/);
  // bar fill is proportional: 37% of the bar's cells are full
  const bar = line.slice(line.indexOf("|") + 1, line.lastIndexOf("|"));
  assert.equal([...bar].filter((c) => c === "█").length, Math.floor(0.37 * bar.length));
  const done = renderProgress({ step: 10, maxSteps: 10, elapsedSec: 5 }, { width: 60, ascii: true });
  assert.equal(done, `100%|${"#".repeat(34)}| 10/10 [00:05<00:00]`);
  assert.equal(done.length, 60);
  assert.match(renderProgress({ step: 0, maxSteps: 10, elapsedSec: 0 }), /\[00:00<\?\]$/);
  assert.throws(() => renderProgress({ step: 0, maxSteps: 0, elapsedSec: 0 }), /maxSteps must be > 0/);
});
