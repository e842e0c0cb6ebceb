/**
 * `tunelab model create`, `tunelab train` and `tunelab eval` run as a user runs them: the built CLI in child
 * processes, in a temporary folder. Checks the command-line contract of the models issue.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Tokenizer } from "../../sdk/io/tokenizer";

const cli = path.resolve(__dirname, "..", "..", "sdk", "cli", "main.js");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-cli-"));
const modelDir = path.join(work, "model");
const dataFile = path.join(work, "text.jsonl");

const texts = [
  "the quick brown fox jumps over the lazy dog",
  "LoRA adapters are small matrices added to frozen weights",
  "naïve café — 日本語 too",
  "a",
  "training runs through onnxruntime as an ONNX graph",
];

function tunelab(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: work, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: ReturnType<typeof tunelab>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A recipe file with `extra` lines appended. */
function recipe(name: string, extra = ""): string {
  const file = path.join(work, name);
  const lines = [
    "model_name_or_path: model",
    "stage: pt",
    "finetuning_type: lora",
    "dataset_path: text.jsonl",
    "output_dir: run",
    "optim: adamw",
    "learning_rate: 1.0e-2",
    "warmup_steps: 0",
    "max_steps: 4",
    "per_device_train_batch_size: 4",
    "lora_rank: 4",
    "lora_alpha: 8",
    "save_steps: 0",
    "seed: 1",
  ];
  fs.writeFileSync(file, lines.join("\n") + "\n" + extra);
  return file;
}

function evalJson(...extra: string[]): { loss: number; perplexity: number; tokens: number; rows: number } {
  const out = ok(tunelab("eval", "--model", "model", "--data", "text.jsonl", "--metrics", "perplexity", "--json", ...extra), "eval");
  const lines = out.split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, `eval --json prints exactly one line, got:\n${out}`);
  return JSON.parse(lines[0]);
}

before(() => {
  ok(
    tunelab("model", "create", "--arch", "llama", "--out", "model", "--seed", "3", "--tokenizer", "byte", "--hidden-size", "32", "--layers", "1"),
    "model create",
  );
  assert.ok(fs.existsSync(path.join(modelDir, "config.json")) && fs.existsSync(path.join(modelDir, "tokenizer.json")));
  fs.writeFileSync(dataFile, [...texts, ...texts].map((text) => JSON.stringify({ text })).join("\n") + "\n");
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

test("train (stage pt) writes a PEFT adapter; eval --json follows the contract, with and without it", { timeout: 120_000 }, () => {
  // train: exit 0 and a PEFT adapter in output_dir.
  ok(tunelab("train", recipe("recipe.yaml")), "train");
  const runDir = path.join(work, "run");
  const config = JSON.parse(fs.readFileSync(path.join(runDir, "adapter_config.json"), "utf8"));
  assert.equal(config.peft_type, "LORA");
  assert.equal(config.task_type, "CAUSAL_LM");
  assert.equal(config.r, 4);
  assert.equal(config.lora_alpha, 8);
  const st = fs.readFileSync(path.join(runDir, "adapter_model.safetensors"));
  const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString("utf8"));
  assert.ok("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in header, "PEFT tensor names");
  assert.deepEqual(header["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape, [4, 32]);
  const manifest = JSON.parse(fs.readFileSync(path.join(runDir, "run.json"), "utf8"));
  assert.equal(manifest.result.steps, 4);

  // eval: loss is mean NLL per predicted token (natural log), perplexity = exp(loss).
  const base = evalJson();
  assert.equal(base.rows, texts.length * 2);
  const tok = Tokenizer.fromDir(modelDir);
  const expectedTokens = [...texts, ...texts].reduce((n, t) => n + tok.encode(t).length - 1, 0);
  assert.equal(base.tokens, expectedTokens);
  assert.ok(Math.abs(base.perplexity - Math.exp(base.loss)) <= 1e-9 * Math.exp(base.loss), `perplexity ${base.perplexity} vs exp(loss) ${Math.exp(base.loss)}`);
  // A random tiny model predicts nearly uniformly: its loss per token is close to ln(vocabulary size).
  const vocab = JSON.parse(fs.readFileSync(path.join(modelDir, "config.json"), "utf8")).vocab_size as number;
  assert.ok(Math.abs(base.loss - Math.log(vocab)) < 0.2, `loss ${base.loss} should be near ln(${vocab}) = ${Math.log(vocab)}`);

  // With the adapter trained on this very text the loss is different, and lower.
  const tuned = evalJson("--adapter", "run");
  assert.equal(tuned.tokens, base.tokens);
  assert.notEqual(tuned.loss, base.loss);
  assert.ok(tuned.loss < base.loss, `adapter loss ${tuned.loss} should be below the base model's ${base.loss}`);
});

test("train: --key value overrides the recipe", { timeout: 60_000 }, () => {
  ok(tunelab("train", recipe("override.yaml"), "--max_steps", "3", "--output_dir", "run3"), "train with overrides");
  const runDir = path.join(work, "run3");
  assert.equal(JSON.parse(fs.readFileSync(path.join(runDir, "run.json"), "utf8")).result.steps, 3);
  const steps = fs.readFileSync(path.join(runDir, "train.log"), "utf8").match(/step (\d+) loss:/g) ?? [];
  assert.equal(steps.at(-1), "step 3 loss:");
  assert.match(fs.readFileSync(path.join(runDir, "recipe.yaml"), "utf8"), /^max_steps: 3$/m);
});

test("bad input: clear messages and non-zero exit codes", { timeout: 60_000 }, () => {
  const unknownKey = tunelab("train", recipe("unknown.yaml", "lora_rnak: 8\n"));
  assert.notEqual(unknownKey.status, 0);
  assert.match(unknownKey.stderr, /unknown\.yaml: unknown option "lora_rnak"/);

  const badValue = tunelab("train", recipe("badvalue.yaml"), "--learning_rate", "-1");
  assert.notEqual(badValue.status, 0);
  assert.match(badValue.stderr, /learning_rate must be a positive number, got -1/);

  const noRecipe = tunelab("train", "missing.yaml");
  assert.notEqual(noRecipe.status, 0);
  assert.match(noRecipe.stderr, /missing\.yaml/);

  const noData = tunelab("eval", "--model", "model", "--data", "nothing.jsonl", "--json");
  assert.notEqual(noData.status, 0);
  assert.match(noData.stderr, /nothing\.jsonl: data file not found/);
  assert.equal(noData.stdout, "", "no JSON on stdout when eval fails");

  const badFlag = tunelab("eval", "--model", "model", "--data", "text.jsonl", "--metric", "perplexity");
  assert.notEqual(badFlag.status, 0);
  assert.match(badFlag.stderr, /unknown option --metric/);

  const noModel = tunelab("eval", "--data", "text.jsonl");
  assert.notEqual(noModel.status, 0);
  assert.match(noModel.stderr, /usage: tunelab eval --model DIR/);
});
