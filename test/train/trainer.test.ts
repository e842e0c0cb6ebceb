import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { loadAdapter } from "../../sdk/models/lora";
import { openModel } from "../../sdk/models/model";
import { listCheckpoints, loadCheckpoint } from "../../sdk/train/checkpoint";
import { resolveRecipe, type RecipeInput } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";
import { loadSplits, tokenizeSplits } from "../../sdk/train/prepare";

const root = path.join(__dirname, "../../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-trainer-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const wordModel = path.join(tmp, "qwen2-qwen3tok");
const byteModel = path.join(tmp, "llama-byte");
createTinyModel({ arch: "qwen2", out: wordModel, seed: 0, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, tokenizer: "qwen3" });
createTinyModel({ arch: "llama", out: byteModel, seed: 0, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });

/** A small pre-training recipe on the bundled arithmetic sentences (byte tokenizer: fast). */
function ptRecipe(out: string, extra: Partial<RecipeInput> = {}) {
  return resolveRecipe({
    model_name_or_path: byteModel,
    dataset_path: path.join(root, "data/arithmetic.txt"),
    output_dir: path.join(tmp, out),
    stage: "pt",
    learning_rate: 5e-3,
    warmup_steps: 2,
    max_steps: 12,
    per_device_train_batch_size: 8,
    logging_steps: 1,
    save_steps: 0,
    lora_rank: 4,
    lora_alpha: 8,
    lora_dropout: 0.1,
    ...extra,
  });
}

test("classification on the bundled tickets: validation F1 rises well above chance (0.25)", async () => {
  const recipe = resolveRecipe({
    model_name_or_path: wordModel,
    dataset_path: path.join(root, "data/support_tickets.jsonl"),
    output_dir: path.join(tmp, "cls"),
    stage: "cls",
    val_size: 0.15,
    learning_rate: 2e-3,
    warmup_steps: 10,
    max_steps: 120,
    per_device_train_batch_size: 16,
    eval_steps: 40,
    save_steps: 60,
    cutoff_len: 256,
  });
  const result = await train(recipe);
  const first = result.evals[0].metrics.f1_macro;
  const last = result.val!.metrics.f1_macro;
  assert.ok(last > 0.7, `val f1_macro ${last}`);
  assert.ok(last > first, `f1 did not rise: ${first} -> ${last}`);
  assert.ok(result.history.at(-1)!.loss < result.history[0].loss * 0.5, "training loss did not fall");

  // What the run leaves behind.
  const out = result.outputDir;
  const log = fs.readFileSync(path.join(out, "train.log"), "utf8");
  assert.match(log, /^\[epoch 1\/\d+\] step 10 loss: \d+\.\d{4} lr: \d\.\de-\d\d/m);
  assert.match(log, /val_f1_macro: \d\.\d{4}/);
  const events = fs
    .readFileSync(path.join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.event === "eval"));
  assert.ok(fs.readdirSync(path.join(out, "runs/train")).some((f) => f.startsWith("events.out.tfevents.")));
  const adapter = loadAdapter(out);
  assert.equal(adapter.config.taskType, "SEQ_CLS");
  assert.deepEqual(adapter.modulesToSave["score.weight"].shape, [4, 64]);
  assert.equal(Object.keys(adapter.lora).length, 2 * 7);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, "run.json"), "utf8"));
  assert.match(manifest.data[0].sha256, /^[0-9a-f]{64}$/);
  assert.equal(manifest.recipe.seed, 42);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, "labels.json"), "utf8")).id2label, { 0: "account", 1: "billing", 2: "shipping", 3: "technical" });
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.step),
    [60, 120],
  );
});

test("a fixed seed gives identical runs (LoRA dropout on, evaluated on a val split without dropout)", async () => {
  const a = await train(ptRecipe("seed-a", { val_size: 0.1, eval_steps: 6 }));
  const b = await train(ptRecipe("seed-b", { val_size: 0.1, eval_steps: 6 }));
  assert.deepEqual(
    b.evals.map((e) => e.loss),
    a.evals.map((e) => e.loss),
  );
  assert.equal(a.evals.length, 2);
  assert.deepEqual(
    b.history.map((h) => h.loss),
    a.history.map((h) => h.loss),
  );
  const c = await train(ptRecipe("seed-c", { seed: 7, val_size: 0.1, eval_steps: 6 }));
  assert.notDeepEqual(
    c.history.map((h) => h.loss),
    a.history.map((h) => h.loss),
  );
});

test("resuming from a checkpoint gives the same losses as a run that never stopped", async () => {
  const whole = await train(ptRecipe("whole"));
  const stop = new AbortController();
  const first = await train(ptRecipe("resumed"), { signal: stop.signal, callbacks: [{ onStep: (e) => (e.step === 5 ? stop.abort() : undefined) }] });
  assert.equal(first.stoppedBy, "interrupted");
  assert.equal(first.steps, 5);
  assert.deepEqual(
    listCheckpoints(first.outputDir).map((c) => c.step),
    [5],
  );
  const second = await train(ptRecipe("resumed", { resume_from_checkpoint: true }));
  assert.equal(second.steps, 12);
  assert.deepEqual(
    second.history.map((h) => h.step),
    [6, 7, 8, 9, 10, 11, 12],
  );
  assert.deepEqual(
    second.history.map((h) => h.loss),
    whole.history.slice(5).map((h) => h.loss),
  );
  assert.match(fs.readFileSync(path.join(first.outputDir, "train.log"), "utf8"), /resumed from .*checkpoint-5 at step 5/);
});

test("a non-finite loss stops the run, keeps the last good checkpoint and says why", async () => {
  const diagnostics: string[] = [];
  const result = await train(
    ptRecipe("nan", { optim: "sgd", learning_rate: 1e30, max_grad_norm: 0, warmup_steps: 0, lr_scheduler_type: "constant", save_steps: 1, lora_dropout: 0 }),
    {
      callbacks: [{ onDiagnostic: (d) => void diagnostics.push(d.kind) }],
    },
  );
  assert.equal(result.stoppedBy, "non_finite_loss");
  assert.ok(result.steps < 12);
  assert.deepEqual(diagnostics, ["non_finite_loss"]);
  const checkpoints = listCheckpoints(result.outputDir);
  if (result.steps > 0) {
    const last = loadCheckpoint(checkpoints.at(-1)!.dir);
    assert.equal(last.state.globalStep, result.steps);
    for (const data of Object.values(last.engine.params)) assert.ok(data.every(Number.isFinite));
  }
  assert.match(fs.readFileSync(path.join(result.outputDir, "train.log"), "utf8"), /non_finite_loss/);
});

test("early stopping stops after `patience` evaluations without improvement and keeps the best adapter", async () => {
  // A learning rate this small leaves the validation loss where it is, so no evaluation after the first improves.
  const sigintListeners = process.listenerCount("SIGINT");
  const onStart = () => assert.equal(process.listenerCount("SIGINT"), sigintListeners, "train() leaves SIGINT to its caller");
  const result = await train(ptRecipe("early", { learning_rate: 1e-30, val_size: 0.2, eval_steps: 2, early_stopping_steps: 2, lora_dropout: 0 }), {
    callbacks: [{ onStart }],
  });
  assert.equal(result.stoppedBy, "early_stopping");
  assert.equal(result.steps, 6);
  assert.equal(result.bestStep, 2);
  assert.equal(result.evals.length, 3);
});

test("data that does not fit the stage is refused naming the file and line", async () => {
  await assert.rejects(
    train(
      resolveRecipe({
        model_name_or_path: byteModel,
        dataset_path: path.join(root, "data/support_tickets.jsonl"),
        output_dir: path.join(tmp, "bad"),
        stage: "pt",
      }),
    ),
    /support_tickets\.jsonl:1: stage pt needs pretrain rows, this one is classification/,
  );
  const broken = path.join(tmp, "broken.jsonl");
  fs.writeFileSync(broken, '{"text": "fine"}\n{"text": "not closed\n');
  await assert.rejects(
    train(resolveRecipe({ model_name_or_path: byteModel, dataset_path: broken, output_dir: path.join(tmp, "bad2"), stage: "pt" })),
    /broken\.jsonl.*(line 2|:2)/,
  );
});

test("SFT on chat data: the loss falls, and only assistant tokens (plus EOS) are trained", async () => {
  const chatModel = path.join(tmp, "llama-byte-chat");
  // initStd 0.2: with transformers' 0.02 a random frozen lm_head caps every logit below ~0.7 after the final
  // RMSNorm, so no adapter could lower the loss much; a larger scale leaves LoRA room to learn.
  createTinyModel({ arch: "llama", out: chatModel, seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, initStd: 0.2 });
  const result = await train(
    resolveRecipe({
      model_name_or_path: chatModel,
      dataset_path: path.join(root, "data/alpaca_tasks.json"),
      output_dir: path.join(tmp, "sft"),
      stage: "sft",
      learning_rate: 1e-2,
      warmup_steps: 0,
      max_steps: 30,
      per_device_train_batch_size: 8,
      save_steps: 0,
      lora_rank: 8,
    }),
  );
  const early = result.history.slice(0, 5).reduce((a, h) => a + h.loss, 0) / 5;
  const late = result.history.slice(-5).reduce((a, h) => a + h.loss, 0) / 5;
  assert.ok(late < early * 0.8, `loss ${early} -> ${late}`);
  const tok = openModel(chatModel).tokenizer;
  for (const example of result.data.train.slice(0, 5)) {
    const trained = example.labels!.filter((l) => l !== -100).map(Number);
    assert.ok(trained.includes(tok.eosTokenId), "the end-of-turn token is trained, so the model learns to stop");
    const text = tok.decode(trained, { skipSpecialTokens: true });
    assert.ok(text.length > 0 && !text.includes("user"), `trained text: ${JSON.stringify(text)}`);
  }
});

test("DeepSeek-R1's template: the trained reply follows the prompt's open <think> block, as chat() generates it", async () => {
  const r1Model = path.join(tmp, "qwen2-r1");
  createTinyModel({ arch: "qwen2", out: r1Model, seed: 1, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, tokenizer: "deepseek_v3" });
  const recipe = resolveRecipe({
    model_name_or_path: r1Model,
    dataset_path: path.join(root, "data/alpaca_tasks.json"),
    output_dir: path.join(tmp, "r1"),
    stage: "sft",
  });
  const model = openModel(r1Model);
  const data = tokenizeSplits(recipe, await loadSplits(recipe), model.tokenizer);
  const example = data.train[0];
  const row = data.splits.train.rows[0];
  const reply = row.kind === "chat" ? row.messages.at(-1)!.content : "";
  const all = model.tokenizer.decode(example.inputIds.map(Number), { skipSpecialTokens: false });
  const trained = model.tokenizer.decode(example.labels!.filter((l) => l !== -100).map(Number), { skipSpecialTokens: false });
  assert.match(all, /<｜Assistant｜><think>\n\n<\/think>\n\n/);
  assert.equal(trained, `\n</think>\n\n${reply}<｜end▁of▁sentence｜>`);
});

test("full and freeze fine-tuning train the model's own weights and write a model folder that reloads", async () => {
  for (const finetuning_type of ["full", "freeze"] as const) {
    const result = await train(ptRecipe(finetuning_type, { finetuning_type, freeze_trainable_layers: 1, lora_dropout: 0, learning_rate: 1e-3 }));
    assert.ok(result.history.at(-1)!.loss < result.history[0].loss, `${finetuning_type}: loss did not fall`);
    const trained = openModel(result.modelDir!);
    const base = openModel(byteModel);
    const changed = (name: string) => trained.weights.get(name).data.some((v, i) => v !== base.weights.get(name).data[i]);
    assert.ok(changed("model.layers.0.mlp.down_proj.weight"), `${finetuning_type}: layer weights unchanged`);
    assert.equal(changed("model.embed_tokens.weight"), finetuning_type === "full", `${finetuning_type}: embeddings`);
    assert.ok(!fs.existsSync(path.join(result.outputDir, "adapter_model.safetensors")));
  }
});

test("an output_dir holding someone else's files is refused and left as it was; overwrite_output_dir allows it", async () => {
  const dir = path.join(tmp, "users-folder");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "notes.txt"), "my notes");
  fs.writeFileSync(path.join(dir, ".hidden"), "x");
  await assert.rejects(
    train(ptRecipe("users-folder", { max_steps: 1 })),
    /output_dir .*users-folder is not empty and holds no tunelab run \(it has notes\.txt\); .*overwrite_output_dir: true/,
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), [".hidden", "notes.txt"]);
  const result = await train(ptRecipe("users-folder", { max_steps: 1, overwrite_output_dir: true }));
  assert.equal(result.steps, 1);
  assert.equal(fs.readFileSync(path.join(dir, "notes.txt"), "utf8"), "my notes", "files the run does not write are kept");
  // A folder of an earlier run is tunelab's own: a new run (or a resume) goes there without the flag.
  assert.equal((await train(ptRecipe("users-folder", { max_steps: 1 }))).steps, 1);
});
