/** One copy of the frozen weights per process, however many sessions use them (docs/engine.md, "Memory"). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";

const linux = fs.existsSync("/proc/self/smaps_rollup");

test("train, eval and generation sessions share one memory-mapped copy of the weights", { skip: !linux && "needs /proc/self/smaps_rollup" }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-shared-"));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-cache-"));
  try {
    // About 100 MB of float32 weights, almost all in the layers (byte-level vocabulary).
    const info = createTinyModel({
      arch: "qwen2",
      out: dir,
      seed: 0,
      hiddenSize: 768,
      intermediateSize: 2048,
      numLayers: 4,
      numHeads: 12,
      numKvHeads: 4,
      tokenizer: "byte",
    });
    const weightBytes = [...info.tensors.values()].reduce((n, shape) => n + 4 * shape.reduce((a, b) => a * b, 1), 0);
    assert.ok(weightBytes > 90e6, `test model has ${weightBytes} bytes of weights`);
    const out = execFileSync(process.execPath, [path.join(__dirname, "memory-probe.js"), dir], {
      env: { ...process.env, TUNELAB_CACHE_DIR: cache },
      encoding: "utf8",
    });
    const marks = JSON.parse(out.trim().split("\n").pop()!) as Record<"opened" | "train" | "eval" | "generation", number>;
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
    const report = `weights ${mb(weightBytes)}; PSS opened ${mb(marks.opened)}, +train ${mb(marks.train)}, +eval ${mb(marks.eval)}, +generation ${mb(marks.generation)}`;
    // A copy per session would add a weights' worth per session: three in all, beside onnxruntime's own code.
    assert.ok(marks.generation - marks.opened < 2 * weightBytes, `three sessions grew PSS by 2x the weights or more: ${report}`);
    assert.ok(marks.eval - marks.train < 0.25 * weightBytes, `the eval session copied the weights: ${report}`);
    assert.ok(marks.generation - marks.eval < 0.25 * weightBytes, `the generation session copied the weights: ${report}`);
    // The weight file itself is there once, in the cache.
    const entries = fs.readdirSync(path.join(cache, "weights"));
    assert.equal(entries.length, 1, `one weight-cache entry: ${entries}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
