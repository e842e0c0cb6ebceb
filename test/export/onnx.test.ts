/**
 * ONNX export checked by two independent programs: the ONNX checker of Debian's python3-onnx (full_check, which runs
 * strict shape inference), and transformers.js (on onnxruntime-node) loading the exported folder offline and
 * generating greedily, whose tokens must equal tunelab's own generate.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { exportModel } from "../../sdk/export/export";
import { exportOnnx } from "../../sdk/export/onnx";
import { MergedWeights } from "../../sdk/export/merged-weights";
import { prepareOutDir } from "../../sdk/export/files";
import type { BaseModel } from "../../sdk/models/model";
import type { Adapter } from "../../sdk/models/lora";
import { PYTHON, pythonHas } from "../util/python";
import { randomAdapter, tempDir, tinyModel, transformersJsGreedy, tunelabGreedy } from "./helpers";

const hasOnnx = pythonHas("onnx");

/** What python3-onnx says about a model file: the checker's verdict, opset, and input/output names. */
function onnxCheck(file: string): { opset: number; inputs: string[]; outputs: string[] } {
  const script = [
    "import json, sys, onnx",
    "onnx.checker.check_model(sys.argv[1], full_check=True)",
    "m = onnx.load(sys.argv[1], load_external_data=False)",
    "print(json.dumps({'opset': [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')][0], 'inputs': [i.name for i in m.graph.input], 'outputs': [o.name for o in m.graph.output]}))",
  ].join("\n");
  return JSON.parse(execFileSync(PYTHON, ["-c", script, file], { encoding: "utf8" })) as { opset: number; inputs: string[]; outputs: string[] };
}

const cases: { arch: "llama" | "qwen2"; tied: boolean; lora: boolean; opset: number | undefined; dora?: boolean }[] = [
  { arch: "llama", tied: false, lora: true, opset: undefined },
  { arch: "qwen2", tied: true, lora: false, opset: 15 },
  { arch: "qwen2", tied: false, lora: true, opset: undefined, dora: true },
];

for (const c of cases) {
  test(`onnx ${c.arch} (opset ${c.opset ?? "default"}${c.lora ? (c.dora ? ", DoRA merged" : ", LoRA merged") : ""}): the ONNX checker passes and transformers.js generates tunelab's greedy tokens`, async () => {
    const model = tinyModel(c.arch, { tied: c.tied });
    const adapter = c.lora ? randomAdapter(model, 7, c.dora) : null;
    const out = path.join(tempDir(), "onnx");
    const result = await exportModel(model, adapter, out, { format: "onnx", opset: c.opset });
    for (const f of ["model.onnx", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"])
      assert.ok(result.files.includes(f), `${f} in ${result.files}`);

    if (hasOnnx) {
      const info = onnxCheck(path.join(out, "model.onnx"));
      assert.equal(info.opset, c.opset ?? 17);
      const layers = model.config.numHiddenLayers;
      const kv = (prefix: string, a: string, b: string) => Array.from({ length: layers }, (_, l) => [`${prefix}.${l}.${a}`, `${prefix}.${l}.${b}`]).flat();
      assert.deepEqual(info.inputs, ["input_ids", "attention_mask", "position_ids", ...kv("past_key_values", "key", "value")]);
      assert.deepEqual(info.outputs, ["logits", ...kv("present", "key", "value")]);
    }

    const prompt = model.tokenizer.encode("The quick brown fox");
    const expected = await tunelabGreedy(model, adapter, prompt, 16);
    const actual = await transformersJsGreedy(out, prompt, 16);
    assert.deepEqual(actual, expected);
    if (adapter) {
      // The adapter must matter, or the equality above would not show that it was merged.
      assert.notDeepEqual(await tunelabGreedy(model, null, prompt, 16), expected);
    }
  });
}

test(
  "onnx with external data: model.onnx_data beside model.onnx, and transformers.js still generates tunelab's tokens",
  { skip: hasOnnx ? false : "python3-onnx is not installed" },
  async () => {
    const model: BaseModel = tinyModel("llama", { seed: 5 });
    const out = prepareOutDir(path.join(tempDir(), "onnx-ext"));
    const r = exportOnnx(new MergedWeights(model, null as Adapter | null), out, { externalData: true });
    assert.equal(r.dataFile, path.join(out, "model.onnx_data"));
    assert.ok(fs.statSync(path.join(out, "model.onnx")).size < 64 * 1024, "weights are out of model.onnx");
    onnxCheck(path.join(out, "model.onnx"));
    const prompt = model.tokenizer.encode("external data");
    assert.deepEqual(await transformersJsGreedy(out, prompt, 8), await tunelabGreedy(model, null, prompt, 8));
  },
);

test("onnx: an opset the graph cannot be written for is an error naming the range", async () => {
  const model = tinyModel("qwen2");
  await assert.rejects(
    () => exportModel(model, null, path.join(tempDir(), "bad"), { format: "onnx", opset: 12 }),
    /opset must be an integer from 13 to 18, got 12/,
  );
  await assert.rejects(
    () => exportModel(model, null, path.join(tempDir(), "bad2"), { format: "gguf", opset: 17 }),
    /opset applies to --format onnx or quantized, not gguf/,
  );
});
