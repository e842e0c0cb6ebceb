import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RunLogger, TrainLog, crc32c, formatDiagnosticLine, formatEvalLine, formatLogNumber, formatStepLine, readMetricsJsonl } from "../../sdk/train/log";

test("step lines follow the seed's style", () => {
  assert.equal(formatStepLine({ epoch: 1, numEpochs: 10, step: 500, loss: 2.15, lr: 3e-5 }), "[epoch 1/10] step 500 loss: 2.1500 lr: 3.0e-05");
  assert.equal(
    formatStepLine({ epoch: 2, numEpochs: 3, step: 1200, loss: 1.234567, lr: 1.5e-4, gradNorm: 0.81234, tokensPerSec: 1234.6 }),
    "[epoch 2/3] step 1200 loss: 1.2346 lr: 1.5e-04 grad_norm: 0.8123 tokens/s: 1235",
  );
  assert.match(formatStepLine({ epoch: 1, numEpochs: 1, step: 3, loss: NaN, lr: 0 }), /loss: nan lr: 0\.0e\+00$/);
  assert.equal(formatLogNumber(2e-7), "2.00e-07");
  assert.equal(formatLogNumber(-Infinity), "-inf");
});

test("eval and diagnostic lines", () => {
  assert.equal(
    formatEvalLine({ epoch: 1, numEpochs: 10, step: 500, metrics: { loss: 1.87, accuracy: 0.8123, f1_macro: 0.8 } }),
    "[epoch 1/10] step 500 val_loss: 1.8700 val_accuracy: 0.8123 val_f1_macro: 0.8000",
  );
  assert.equal(
    formatDiagnosticLine({
      epoch: 3,
      numEpochs: 10,
      step: 1500,
      level: "warning",
      kind: "overfitting",
      message: "val loss rose for 3 evals while train loss fell.",
      suggestion: "raise lora_dropout to 0.3 or enable early stopping (patience 3).",
    }),
    "[epoch 3/10] step 1500 WARNING overfitting: val loss rose for 3 evals while train loss fell. Suggestion: raise lora_dropout to 0.3 or enable early stopping (patience 3).",
  );
  assert.equal(formatDiagnosticLine({ level: "error", kind: "nan_loss", message: "loss is NaN" }), "ERROR nan_loss: loss is NaN");
});

test("TrainLog appends train.log and metrics.jsonl line by line, and a reopen continues them", () => {
  const dir = mkdtempSync(join(tmpdir(), "tunelab-log-"));
  try {
    const now = () => new Date("2025-01-02T03:04:05.000Z");
    const echoed: string[] = [];
    const log = new TrainLog(join(dir, "out"), { now, echo: (l) => echoed.push(l) });
    log.message("training started: 1000 steps");
    log.step({ epoch: 1, numEpochs: 2, step: 10, loss: 2.5, lr: 1e-5, gradNorm: Infinity });
    // visible before close (flushed per line)
    assert.equal(readFileSync(log.logPath, "utf8").split("\n").length, 3);
    log.eval({ epoch: 1, numEpochs: 2, step: 10, split: "val", metrics: { loss: 2.4, accuracy: 0.5 } });
    log.diagnostic({ step: 10, kind: "vanishing_updates", message: "update norm 3.0e-07 < 1e-6" });
    assert.throws(() => log.eval({ epoch: 1, numEpochs: 2, step: 10, metrics: { step: 1 } }), /"step" is reserved/);
    log.close();
    assert.throws(() => log.message("late"), /closed/);
    const again = new TrainLog(join(dir, "out"), { now });
    again.step({ epoch: 2, numEpochs: 2, step: 20, loss: 2.0, lr: 2e-5 });
    again.close();

    const lines = readFileSync(join(dir, "out", "train.log"), "utf8")
      .trimEnd()
      .split("\n");
    assert.deepEqual(lines, [
      "training started: 1000 steps",
      "[epoch 1/2] step 10 loss: 2.5000 lr: 1.0e-05 grad_norm: inf",
      "[epoch 1/2] step 10 val_loss: 2.4000 val_accuracy: 0.5000",
      "step 10 WARNING vanishing_updates: update norm 3.0e-07 < 1e-6",
      "[epoch 2/2] step 20 loss: 2.0000 lr: 2.0e-05",
    ]);
    assert.deepEqual(echoed, lines.slice(0, 4));
    // `grep "loss:"` finds the train and eval lines, as the seed tutorial does
    assert.equal(lines.filter((l) => l.includes("loss:")).length, 3);

    const events = readMetricsJsonl(join(dir, "out", "metrics.jsonl"));
    assert.deepEqual(
      events.map((e) => e.event),
      ["message", "step", "eval", "diagnostic", "step"],
    );
    assert.deepEqual(events[1], { event: "step", epoch: 1, num_epochs: 2, step: 10, loss: 2.5, lr: 1e-5, grad_norm: null, time: "2025-01-02T03:04:05.000Z" });
    assert.deepEqual(events[2], { event: "eval", epoch: 1, num_epochs: 2, step: 10, split: "val", loss: 2.4, accuracy: 0.5, time: "2025-01-02T03:04:05.000Z" });
    assert.equal(events[3].kind, "vanishing_updates");
    assert.equal(events[3].level, "warning", "level defaults to warning");
    assert.equal(events[4].step, 20);

    // a crash mid-write leaves a torn last line: skipped; a torn line in the middle is an error
    const path = join(dir, "out", "metrics.jsonl");
    appendFileSync(path, '{"event":"step","ste');
    assert.equal(readMetricsJsonl(path).length, 5);
    appendFileSync(path, '\n{"event":"message"}\n');
    assert.throws(() => readMetricsJsonl(path), /metrics\.jsonl:6: not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("RunLogger writes text logs and TensorBoard runs for train and val", () => {
  const dir = mkdtempSync(join(tmpdir(), "tunelab-run-"));
  try {
    const run = new RunLogger(dir, { tensorboardOptions: { hostname: "h", now: () => 1_700_000_000 } });
    run.step({ epoch: 1, numEpochs: 1, step: 1, loss: 3, lr: 1e-5, tokensPerSec: 100 });
    run.eval({ epoch: 1, numEpochs: 1, step: 1, metrics: { loss: 2.9, f1_macro: 0.4 } });
    run.diagnostic({ level: "info", kind: "note", message: "ok" });
    run.close();
    assert.deepEqual(readdirSync(dir).sort(), ["metrics.jsonl", "runs", "train.log"]);
    assert.deepEqual(readdirSync(join(dir, "runs")).sort(), ["train", "val"]);
    const val = readFileSync(join(dir, "runs", "val", "events.out.tfevents.1700000000.h"));
    // two records (version + one eval event), each framed with a valid data CRC
    let off = 0;
    let n = 0;
    while (off < val.length) {
      const len = Number(val.readBigUInt64LE(off));
      const data = val.subarray(off + 12, off + 12 + len);
      const crc = crc32c(data);
      assert.equal(val.readUInt32LE(off + 12 + len), ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0);
      off += 16 + len;
      n++;
    }
    assert.equal(n, 2);
    assert.ok(val.includes(Buffer.from("f1_macro")));
    assert.throws(() => new RunLogger(dir).writer("../x"), /split name/);
    const noTb = join(dir, "no-tb");
    new RunLogger(noTb, { tensorboard: false }).close();
    assert.deepEqual(readdirSync(noTb).sort(), ["metrics.jsonl", "train.log"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
