/** Batched answers for evaluation on a tiny model: batches of similar length, input order kept, equal to one-by-one. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { openModel } from "../../sdk/models/model";
import { Generator } from "../../sdk/infer/generate";
import { evalPrompts, generateAnswers } from "../../sdk/eval/generate-answers";
import { scoreGeneration } from "../../sdk/eval/generation-report";
import type { Row } from "../../sdk/data/types";

test("generateAnswers: one generate call per batch, answers equal to one prompt at a time, R1 prompts read as closed or open blocks", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-answers-"));
  try {
    createTinyModel({ arch: "qwen2", out: dir, seed: 5, hiddenSize: 32, numLayers: 1, tokenizer: "deepseek_v3" });
    const gen = new Generator(openModel(dir));
    const prov = (line: number) => ({ source: "mem.jsonl", line, id: `r${line}` });
    const rows: Row[] = [
      {
        kind: "chat",
        messages: [
          { role: "user", content: "净利润是多少？" },
          { role: "assistant", content: "1.2亿元" },
        ],
        provenance: prov(1),
      },
      { kind: "classification", text: "great product, would buy again", label: "positive", provenance: prov(2) },
      {
        kind: "chat",
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "hello" },
        ],
        provenance: prov(3),
      },
      {
        kind: "chat",
        messages: [
          { role: "user", content: "Summarise: revenue rose 12% in Q3 2023." },
          { role: "assistant", content: "Revenue +12%." },
        ],
        provenance: prov(4),
      },
      {
        kind: "chat",
        messages: [
          { role: "user", content: "2+2?" },
          { role: "assistant", content: "4" },
        ],
        provenance: prov(5),
      },
    ];
    const prompts = evalPrompts(rows);
    assert.deepEqual(
      prompts.map((p) => p.reference),
      ["1.2亿元", "positive", "hello", "Revenue +12%.", "4"],
    );
    let calls = 0;
    const real = gen.generate.bind(gen);
    (gen as unknown as { generate: typeof real }).generate = ((p: never, o: never) => (calls++, real(p, o))) as typeof real;
    const opts = { maxNewTokens: 6, batchSize: 2, doSample: false }; // greedy: the R1 generation_config samples
    const batched = await generateAnswers(gen, prompts, opts);
    assert.equal(calls, 3, "5 prompts in batches of 2");
    const single = [];
    for (const p of prompts) single.push((await generateAnswers(gen, [p], opts))[0]);
    assert.deepEqual(batched, single, "a batch gives each prompt its own greedy answer, in input order");
    assert.equal(batched[0].prompt, "净利润是多少？");
    assert.equal(batched[1].reference, "positive");
    // the R1 template opens <think> in the prompt, so every prediction starts with it
    for (const s of batched) assert.ok(s.prediction.startsWith("<think>"), s.prediction);
    const r = await scoreGeneration(batched, { metrics: ["think_closed", "stop_rate", "bleu"], bootstrap: false });
    assert.equal(r.get("stop_rate"), batched.filter((s) => s.finishReason === "stop").length / 5);
    assert.equal(r.get("think_closed"), batched.filter((s) => s.prediction.includes("</think>")).length / 5);
    assert.throws(
      () => evalPrompts([{ kind: "pretrain", text: "x", provenance: prov(9) }]),
      /mem.jsonl:9: generation metrics need chat or classification rows/,
    );
    await gen.release();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
