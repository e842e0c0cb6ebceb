/** predict_with_generate: generation metrics at each evaluation of an SFT run, logged with the eval loss. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { openModel } from "../../sdk/models/model";
import { resolveRecipe } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";
import { promptAndReference, predictWithGenerate } from "../../sdk/eval/predict-with-generate";
import { bleu } from "../../sdk/eval/overlap";

const root = path.join(__dirname, "../../..");

test("prompt and reference of a tokenised SFT example: tokens before the first label, and the trained tokens", () => {
  assert.deepEqual(promptAndReference({ id: "a", inputIds: [1, 2, 3, 4, 5], labels: [-100, -100, 3, 4, -100] }), { prompt: [1, 2], reference: [3, 4] });
  assert.equal(promptAndReference({ id: "b", inputIds: [1, 2], labels: [1, 2] }), null, "no prompt");
  assert.equal(promptAndReference({ id: "c", inputIds: [1, 2], labels: [-100, -100] }), null, "nothing trained");
});

test("an SFT run with predict_with_generate logs bleu, rouge and stop_rate at every evaluation", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-pwg-"));
  try {
    const modelDir = path.join(tmp, "model");
    createTinyModel({ arch: "llama", out: modelDir, seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, initStd: 0.2 });
    const recipe = resolveRecipe({
      model_name_or_path: modelDir,
      dataset_path: path.join(root, "data/alpaca_tasks.json"),
      output_dir: path.join(tmp, "run"),
      stage: "sft",
      val_size: 0.1,
      learning_rate: 1e-2,
      warmup_steps: 0,
      max_steps: 10,
      per_device_train_batch_size: 8,
      eval_steps: 5,
      save_steps: 0,
      lora_rank: 4,
      predict_with_generate: true,
      eval_generate_samples: 4,
      max_new_tokens: 6,
    });
    const result = await train(recipe);
    assert.ok(result.evals.length >= 2);
    for (const e of result.evals) {
      for (const k of ["bleu", "rouge1", "rouge2", "rougeL", "stop_rate"])
        assert.ok(e.metrics[k] >= 0 && e.metrics[k] <= 1, `step ${e.step} ${k} = ${e.metrics[k]}`);
      assert.ok(Number.isFinite(e.metrics.loss));
    }
    const logged = fs.readFileSync(path.join(tmp, "run", "metrics.jsonl"), "utf8");
    assert.match(logged, /"bleu"/, "the generation metrics reach metrics.jsonl");
    // the last evaluation's figures are the adapter's answers scored again by hand
    const again = await predictWithGenerate(openModel(modelDir), result.adapter, result.data.val, { samples: 4, maxNewTokens: 6 });
    assert.equal(again.samples.length, 4);
    assert.equal(
      again.metrics.bleu,
      bleu({ hypotheses: again.samples.map((s) => s.prediction), references: again.samples.map((s) => [s.reference as string]) }),
    );
    assert.equal(again.metrics.bleu, result.val!.metrics.bleu);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
