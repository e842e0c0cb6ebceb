/** `tunelab eval --metrics …` as a user runs it: saved predictions, a tiny model's batched answers, sliding perplexity. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { bleu, rouge } from "../../sdk/eval/overlap";
import { fr } from "../../sdk/eval/finance-facts";
import { diqa } from "../../sdk/eval/medical-rubric";

const cli = path.resolve(__dirname, "..", "..", "sdk", "cli", "main.js");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-eval-cli-"));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function tunelab(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, "eval", ...args], { cwd: work, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function json(...args: string[]): {
  rows: number;
  metrics: Record<string, number>;
  intervals?: Record<string, { low: number; high: number }>;
  [k: string]: unknown;
} {
  const r = tunelab(...args, "--json");
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, r.stdout);
  return JSON.parse(lines[0]);
}
const writeJsonl = (name: string, rows: unknown[]) => fs.writeFileSync(path.join(work, name), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");

test("--predictions: generation, classification and domain metrics with intervals, no model", () => {
  const rows = [
    {
      prompt: "净利润？",
      prediction: "<think>查年报</think>净利润为1.2亿元，同比增长12%。",
      reference: "2023年净利润1.2亿元，同比增长12%。",
      finish_reason: "stop",
    },
    {
      prompt: "Revenue?",
      prediction: "Revenue rose 12.5% to $1.5 billion.",
      reference: "Revenue rose 12.5% to $1.5 billion in Q3 2023.",
      finish_reason: "length",
    },
    { prompt: "诊断？", prediction: "考虑肺炎，建议胸片检查。", reference: "诊断：肺炎。建议血常规和胸片检查。", finish_reason: "stop" },
  ];
  writeJsonl("preds.jsonl", rows);
  const out = json("--predictions", "preds.jsonl", "--metrics", "bleu,rouge,fr,diqa,exact_match,stop_rate,think_closed");
  const answers = ["净利润为1.2亿元，同比增长12%。", rows[1].prediction, rows[2].prediction];
  const refs = rows.map((r) => r.reference);
  assert.equal(out.rows, 3);
  assert.equal(out.metrics.bleu, bleu({ hypotheses: answers, references: refs.map((r) => [r]) }));
  assert.ok(Math.abs(out.metrics.rouge2 - rouge({ hypotheses: answers, references: refs }).rouge2) < 1e-12);
  assert.equal(out.metrics.fr, fr(answers, refs).fr);
  assert.ok(Math.abs(out.metrics.diqa - diqa(answers, refs).diqa) < 1e-12);
  assert.equal(out.metrics.exact_match, 0);
  assert.equal(out.metrics.stop_rate, 2 / 3);
  assert.equal(out.metrics.think_closed, 1 / 3);
  assert.ok(out.intervals && out.intervals.bleu.low <= out.metrics.bleu && out.metrics.bleu <= out.intervals.bleu.high);
  // labels as predictions: accuracy and macro F1
  writeJsonl("labels.jsonl", [
    { prediction: "pos", reference: "pos" },
    { prediction: "neg", reference: "pos" },
    { prediction: "neg", reference: "neg" },
  ]);
  const cls = json("--predictions", "labels.jsonl", "--metrics", "accuracy,f1");
  assert.equal(cls.metrics.accuracy, 2 / 3);
  assert.ok(Math.abs(cls.metrics.f1_macro - (2 / 3 + 2 / 3) / 2) < 1e-12);
  const bad = tunelab("--predictions", "preds.jsonl", "--metrics", "bleu,blue");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--metrics: unknown blue; known: perplexity, loss/);
});

test("--model --data: batched answers of a tiny model scored; sliding-window perplexity on text rows", () => {
  createTinyModel({ arch: "qwen2", out: path.join(work, "model"), seed: 2, hiddenSize: 32, numLayers: 1, maxPositionEmbeddings: 64 });
  writeJsonl("chat.jsonl", [
    {
      messages: [
        { role: "user", content: "净利润是多少？" },
        { role: "assistant", content: "1.2亿元" },
      ],
    },
    {
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
      ],
    },
    {
      messages: [
        { role: "user", content: "2+2?" },
        { role: "assistant", content: "4" },
      ],
    },
  ]);
  const g = json("--model", "model", "--data", "chat.jsonl", "--metrics", "bleu,chrf,stop_rate,distinct", "--max-new-tokens", "5", "--batch-size", "2");
  assert.equal(g.rows, 3);
  for (const k of ["bleu", "chrf", "stop_rate", "distinct_1", "distinct_2"]) assert.ok(g.metrics[k] >= 0 && g.metrics[k] <= 1, `${k} = ${g.metrics[k]}`);
  writeJsonl("text.jsonl", [{ text: "the quick brown fox jumps over the lazy dog, then sleeps" }, { text: "净利润同比增长百分之十二" }]);
  const plain = json("--model", "model", "--data", "text.jsonl", "--metrics", "perplexity");
  const one = json("--model", "model", "--data", "text.jsonl", "--metrics", "perplexity", "--max-length", "64", "--stride", "64");
  assert.ok(Math.abs(one.perplexity as number) > 0 && Math.abs((one.loss as number) - (plain.loss as number)) < 1e-6, "one window = plain perplexity");
  const slide = json("--model", "model", "--data", "text.jsonl", "--metrics", "perplexity", "--max-length", "8", "--stride", "4");
  assert.equal(slide.tokens, plain.tokens);
  assert.ok((slide.windows as number) > 2);
  assert.equal(slide.metrics.perplexity, slide.perplexity);
});
