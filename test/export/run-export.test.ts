/**
 * `run.export()` on a real (short) LoRA run: the peft export is the run's adapter, and the ONNX export generates,
 * in transformers.js, exactly what the run's own generator generates.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { ds, Model } from "../../sdk";
import { loadAdapter } from "../../sdk/models/lora";
import { tempDir, transformersJsGreedy } from "./helpers";

const root = path.join(__dirname, "../../..");

test("run.export: peft is the run's adapter and onnx generates what the run generates", async () => {
  const tmp = tempDir();
  const base = await Model.tiny({
    arch: "llama",
    out: path.join(tmp, "model"),
    seed: 2,
    hiddenSize: 64,
    numLayers: 1,
    numHeads: 4,
    numKvHeads: 2,
    initStd: 0.2,
  });
  const run = await ds
    .load(path.join(root, "data/alpaca_tasks.json"))
    .lora({ rank: 4 })
    .fit(base, { stage: "sft", lr: 1e-2, batchSize: 4, maxSteps: 4, saveSteps: 0, outputDir: path.join(tmp, "run"), live: false });

  const peft = await run.export(path.join(tmp, "peft"), { format: "peft" });
  assert.deepEqual(peft.files, ["adapter_config.json", "adapter_model.safetensors"]);
  const saved = loadAdapter(peft.dir);
  for (const [p, w] of Object.entries(run.result.adapter.lora)) assert.deepEqual(saved.lora[p].B, w.B, p);

  const onnx = await run.export(path.join(tmp, "onnx"), { format: "onnx", opset: 15 });
  const prompt = base.base.tokenizer.encode("Add the two numbers.");
  const ours = await run.generator().generate(prompt, { maxNewTokens: 12, doSample: false, eosTokenIds: [] });
  assert.deepEqual(await transformersJsGreedy(onnx.dir, prompt, 12), ours.tokens);
  await assert.rejects(() => run.export(path.join(tmp, "x"), { format: "gguf", dtype: "float16" }), /dtype applies to --format pytorch, not gguf/);
});
