/** evaluate(model, data, { adapter, metrics, withBase }): LM figures, tuned answers scored, base vs tuned side by side. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { openModel } from "../../sdk/models/model";
import { resolveRecipe } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";
import { evaluate } from "../../sdk/eval/evaluate-data";
import { evaluateModel, textExamples } from "../../sdk/eval/evaluate";
import { evalPrompts, generateAnswers } from "../../sdk/eval/generate-answers";
import { Generator } from "../../sdk/infer/generate";
import { JUPYTER_DISPLAY } from "../../sdk/viz/display";
import type { Row } from "../../sdk/data/types";

const root = path.join(__dirname, "../../..");

test("evaluate: perplexity as evaluateModel computes it; answers of base and tuned compared side by side", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-evaluate-"));
  try {
    const modelDir = path.join(tmp, "model");
    createTinyModel({ arch: "llama", out: modelDir, seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, initStd: 0.2 });
    const run = await train(
      resolveRecipe({
        model_name_or_path: modelDir,
        dataset_path: path.join(root, "data/alpaca_tasks.json"),
        output_dir: path.join(tmp, "run"),
        stage: "sft",
        learning_rate: 1e-2,
        warmup_steps: 0,
        max_steps: 6,
        per_device_train_batch_size: 8,
        save_steps: 0,
        lora_rank: 4,
      }),
    );
    const model = openModel(modelDir);
    const prov = (line: number) => ({ source: "mem.jsonl", line, id: `r${line}` });
    const text: Row[] = [
      { kind: "pretrain", text: "净利润增长12%", provenance: prov(1) },
      { kind: "pretrain", text: "revenue rose", provenance: prov(2) },
    ];
    const lm = await evaluate(model, text, { metrics: ["perplexity"], adapter: run.adapter });
    const direct = await evaluateModel({ model, stage: "pt", adapter: run.adapter }, textExamples(text, model.tokenizer), 8);
    assert.equal(lm.metrics.loss, direct.loss);
    assert.equal(lm.lm?.perplexity, Math.exp(direct.loss));

    const chat: Row[] = [
      {
        kind: "chat",
        messages: [
          { role: "user", content: "Add the two numbers.\n2 and 3" },
          { role: "assistant", content: "5" },
        ],
        provenance: prov(3),
      },
      {
        kind: "chat",
        messages: [
          { role: "user", content: "Write the number in words.\n11" },
          { role: "assistant", content: "eleven" },
        ],
        provenance: prov(4),
      },
    ];
    const r = await evaluate({ base: model }, chat, { metrics: ["chrf", "stop_rate"], adapter: path.join(tmp, "run"), withBase: true, maxNewTokens: 5 });
    const opts = { maxNewTokens: 5, doSample: false };
    const baseAnswers = await generateAnswers(new Generator(model), evalPrompts(chat), opts);
    const tunedAnswers = await generateAnswers(new Generator(model, { lora: run.adapter }), evalPrompts(chat), opts);
    assert.deepEqual(r.comparison?.a.samples, baseAnswers);
    assert.deepEqual(r.generation?.samples, tunedAnswers);
    assert.equal(r.metrics.stop_rate, r.generation?.get("stop_rate"));
    const html = r[JUPYTER_DISPLAY]()["text/html"] as string;
    assert.ok(html.includes(">base answer<") && html.includes(">tuned answer<"));
    await assert.rejects(evaluate(model, chat, { metrics: ["bleu"], withBase: true }), /withBase compares against the adapter/);
    await assert.rejects(evaluate(model, chat, { metrics: ["perplexity"] }), /mem.jsonl:3: expected a \{"text": \.\.\.\} row/);
    await assert.rejects(evaluate(model, chat, { metrics: ["blue"] }), /unknown metric blue/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
