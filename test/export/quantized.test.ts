/**
 * Quantised ONNX (MatMulNBits): onnxruntime runs it, transformers.js generates with it, python3-onnx's checker
 * accepts it, 4-bit GPTQ gives a lower perplexity than 4-bit RTN on held-out text, and 8-bit stays within 1% of float32.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { exportModel } from "../../sdk/export/export";
import { PYTHON, pythonHas } from "../util/python";
import { Session, type HostTensor } from "../../sdk/runtime/session";
import { optimumNames } from "../../sdk/export/onnx";
import type { BaseModel } from "../../sdk/models/model";
import { argmax, tempDir, tinyModel, transformersJsGreedy } from "./helpers";

/** Greedy tokens from an exported model.onnx run directly by onnxruntime, the whole sequence each step (no cache). */
async function uncachedGreedy(file: string, model: BaseModel, prompt: readonly number[], maxNewTokens: number): Promise<number[]> {
  const c = model.config;
  const session = await Session.create(file);
  const ids = [...prompt];
  try {
    for (let n = 0; n < maxNewTokens; n++) {
      const t = { dtype: "int64" as const, shape: [1, ids.length] };
      const feeds: Record<string, HostTensor> = {
        input_ids: { ...t, data: BigInt64Array.from(ids.map(BigInt)) },
        attention_mask: { ...t, data: new BigInt64Array(ids.length).fill(1n) },
        position_ids: { ...t, data: BigInt64Array.from(ids.map((_, i) => BigInt(i))) },
      };
      for (let l = 0; l < c.numHiddenLayers; l++) {
        const empty = { dtype: "float32" as const, shape: [1, c.numKeyValueHeads, 0, c.headDim], data: new Float32Array(0) };
        feeds[optimumNames.pastKey(l)] = empty;
        feeds[optimumNames.pastValue(l)] = empty;
      }
      const logits = (await session.run(feeds, ["logits"])).logits.data as Float32Array;
      ids.push(argmax(logits.subarray((ids.length - 1) * c.vocabSize, ids.length * c.vocabSize)));
    }
  } finally {
    await session.release();
  }
  return ids.slice(prompt.length);
}

const root = path.join(__dirname, "../../..");
const lines = fs.readFileSync(path.join(root, "data/arithmetic.txt"), "utf8").split("\n").filter(Boolean);
// Calibration and evaluation text are different lines of the same file.
const calibration = lines.slice(0, 40);
const evaluation = lines.slice(100, 140);

test("quantized: 4-bit GPTQ beats 4-bit RTN on held-out perplexity; 8-bit RTN is within 1% of float32; the checker accepts the files", async () => {
  const model = tinyModel("llama", { seed: 3 });
  const run = (bits: 4 | 8, method: "rtn" | "gptq") =>
    exportModel(model, null, path.join(tempDir(), `${method}${bits}`), { format: "quantized", bits, method, calibration, evaluation });
  const rtn4 = (await run(4, "rtn")).quantization!;
  const gptq4 = await run(4, "gptq");
  const g = gptq4.quantization!;
  const rtn8 = (await run(8, "rtn")).quantization!;
  for (const q of [rtn4, g, rtn8]) {
    console.log(
      `${q.bits}-bit ${q.method}: ${q.quantized.length} linears, model.onnx ${q.bytes} bytes = ${((100 * q.bytes) / q.float32Bytes).toFixed(1)}% of float32's weights; ` +
        `perplexity ${q.perplexity!.float32.toFixed(2)} -> ${q.perplexity!.quantized.toFixed(2)}`,
    );
  }
  assert.equal(g.quantized.length, 2 * 7);
  assert.ok(g.perplexity!.quantized < rtn4.perplexity!.quantized, `GPTQ ${g.perplexity!.quantized} vs RTN ${rtn4.perplexity!.quantized}`);
  assert.ok(Math.abs(g.perplexity!.quantized - g.perplexity!.float32) < Math.abs(rtn4.perplexity!.quantized - rtn4.perplexity!.float32));
  assert.ok(Math.abs(rtn8.perplexity!.quantized / rtn8.perplexity!.float32 - 1) < 0.01, `8-bit: ${rtn8.perplexity!.quantized} vs ${rtn8.perplexity!.float32}`);
  assert.ok(rtn4.bytes < rtn8.bytes && rtn8.bytes < rtn4.float32Bytes);
  // transformers.js runs the 4-bit file with its key/value cache and generates what the file gives without one.
  const prompt = model.tokenizer.encode("12 + 30 =");
  assert.deepEqual(await transformersJsGreedy(gptq4.dir, prompt, 12), await uncachedGreedy(path.join(gptq4.dir, "model.onnx"), model, prompt, 12));
  if (pythonHas("onnx")) {
    const code = [
      "import sys, onnx",
      "onnx.checker.check_model(sys.argv[1], full_check=True)",
      "m = onnx.load(sys.argv[1])",
      "print(sorted({(n.domain, n.op_type) for n in m.graph.node if n.domain}))",
    ].join("\n");
    assert.match(execFileSync(PYTHON, ["-c", code, path.join(gptq4.dir, "model.onnx")], { encoding: "utf8" }), /\('com\.microsoft', 'MatMulNBits'\)/);
  }
});

test("quantized: GPTQ without calibration text, and bad bits, are errors naming the option", async () => {
  const model = tinyModel("qwen2");
  await assert.rejects(
    () => exportModel(model, null, path.join(tempDir(), "a"), { format: "quantized", method: "gptq" }),
    /--method gptq needs calibration text/,
  );
  await assert.rejects(() => exportModel(model, null, path.join(tempDir(), "b"), { format: "quantized", bits: 3 as 4 }), /bits must be 4 or 8, got 3/);
  await assert.rejects(() => exportModel(model, null, path.join(tempDir(), "c"), { format: "onnx", bits: 4 }), /bits applies to --format quantized, not onnx/);
});
