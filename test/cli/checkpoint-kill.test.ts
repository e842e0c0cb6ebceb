/**
 * kill -9 in the middle of a checkpoint write: the real CLI trains in a child process with save_steps 1, and the test
 * hook TUNELAB_TEST_PAUSE_IN_CHECKPOINT_WRITE (sdk/train/checkpoint.ts) pauses at each stage of every write and says
 * which on stderr, so SIGKILL lands at a chosen stage. Afterwards every checkpoint-<n> folder must be complete, anything
 * else must be a recognisable temporary, and `resume_from_checkpoint: true` must take the newest complete checkpoint
 * and end with exactly the losses and the adapter of a run that was never killed.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { loadAdapter, loraNames } from "../../sdk/models/lora";
import { loadCheckpoint } from "../../sdk/train/checkpoint";
import { within } from "../util/within";

const cli = path.resolve(__dirname, "..", "..", "sdk", "cli", "main.js");
const dataFile = path.resolve(__dirname, "..", "..", "..", "data", "arithmetic.txt");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-kill-"));
const children = new Set<ChildProcess>();
const PAUSE_ENV = "TUNELAB_TEST_PAUSE_IN_CHECKPOINT_WRITE";
const MAX_STEPS = 6;

interface Run {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Starts `tunelab train recipe.yaml ...args` for `runDir`; with `pauseMs` the checkpoint writes pause at each stage. */
function startTrain(runDir: string, args: string[] = [], pauseMs = 0): Run {
  const recipe = path.join(work, `${path.basename(runDir)}.yaml`);
  const lines = [
    "model_name_or_path: model",
    "stage: pt",
    `dataset_path: ${dataFile}`,
    `output_dir: ${runDir}`,
    `max_steps: ${MAX_STEPS}`,
    "logging_steps: 1",
    "per_device_train_batch_size: 4",
    "cutoff_len: 64",
    "lora_rank: 4",
    "lora_alpha: 8",
    "lora_dropout: 0.1",
    "seed: 0",
    "save_steps: 1",
    "save_total_limit: 2",
  ];
  fs.writeFileSync(recipe, lines.join("\n") + "\n");
  const env = { ...process.env };
  if (pauseMs > 0) env[PAUSE_ENV] = String(pauseMs);
  else delete env[PAUSE_ENV];
  const child = spawn(process.execPath, [cli, "train", recipe, ...args], { cwd: work, env, stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, exited, stderr: () => err };
}

/** Kills the run with SIGKILL as soon as it announces `stage` of checkpoint-`step` (written, or pruned). */
async function killAt(run: Run, step: number, stage: string): Promise<void> {
  const mark = `${PAUSE_ENV}: checkpoint-${step} ${stage}\n`;
  await within(
    new Promise<void>((resolve, reject) => {
      const look = () => {
        if (!run.stderr().includes(mark)) return;
        run.child.stderr!.off("data", look);
        run.child.kill("SIGKILL");
        resolve();
      };
      run.child.stderr!.on("data", look);
      void run.exited.then(() => reject(new Error(`the run ended before "${mark.trim()}":\n${run.stderr()}`)));
    }),
    60_000,
    `waiting for "${mark.trim()}"`,
  );
  assert.equal((await run.exited).signal, "SIGKILL");
}

/** Per-step losses a run wrote to metrics.jsonl (a resumed step's latest entry wins). */
function losses(runDir: string): Map<number, number> {
  const byStep = new Map<number, number>();
  for (const line of fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").trim().split("\n")) {
    const e = JSON.parse(line);
    if (e.event === "step") byStep.set(e.step, e.loss);
  }
  return byStep;
}

/** Checks every entry named like a checkpoint: checkpoint-<n> folders load complete, the rest are known temporaries. */
function assertOnlyCompleteCheckpoints(runDir: string): number[] {
  const steps: number[] = [];
  for (const name of fs.readdirSync(runDir).filter((n) => n.includes("checkpoint-"))) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (!m) {
      assert.match(name, /^(\.checkpoint-\d+\.\d+\.(tmp|del)|checkpoint-\d+\.\d+\.old)$/, `${name} is a recognisable temporary`);
      continue;
    }
    const dir = path.join(runDir, name);
    const loaded = loadCheckpoint(dir);
    assert.equal(loaded.state.globalStep, Number(m[1]), `${dir}: trainer_state.json`);
    const adapter = loadAdapter(dir);
    for (const [module, w] of Object.entries(adapter.lora)) {
      const n = loraNames(module);
      assert.deepEqual(loaded.engine.params[n.A], w.A, `${dir}: ${n.A} agrees with the PEFT adapter`);
      assert.deepEqual(loaded.engine.params[n.B], w.B, `${dir}: ${n.B} agrees with the PEFT adapter`);
    }
    assert.equal(Object.keys(loaded.engine.optimizer).length, 2 * Object.keys(loaded.engine.params).length, `${dir}: adamw moments`);
    steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

let reference: { losses: Map<number, number>; adapter: Buffer };

before(async () => {
  createTinyModel({ arch: "llama", out: path.join(work, "model"), seed: 0, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });
  const runDir = path.join(work, "reference");
  const run = startTrain(runDir);
  assert.deepEqual(await within(run.exited, 60_000, "the reference run"), { code: 0, signal: null }, run.stderr());
  reference = { losses: losses(runDir), adapter: fs.readFileSync(path.join(runDir, "adapter_model.safetensors")) };
  assert.equal(reference.losses.size, MAX_STEPS);
});

after(() => {
  for (const c of children) c.kill("SIGKILL");
  fs.rmSync(work, { recursive: true, force: true });
});

/** Resumes `runDir` to the end and checks it took checkpoint-`expected` and ends as the reference run. */
async function assertResumesFrom(runDir: string, expected: number): Promise<void> {
  const run = startTrain(runDir, ["--resume_from_checkpoint", "true"]);
  assert.deepEqual(await within(run.exited, 60_000, "the resumed run"), { code: 0, signal: null }, run.stderr());
  const resumes = [...fs.readFileSync(path.join(runDir, "train.log"), "utf8").matchAll(/resumed from .*checkpoint-(\d+) at step (\d+)\n/g)];
  assert.deepEqual(resumes.at(-1)?.slice(1), [String(expected), String(expected)], "the last resume took the expected checkpoint");
  const after = losses(runDir);
  for (let s = expected + 1; s <= MAX_STEPS; s++) assert.equal(after.get(s), reference.losses.get(s), `loss of step ${s}`);
  assert.ok(fs.readFileSync(path.join(runDir, "adapter_model.safetensors")).equals(reference.adapter), "the final adapter's bytes");
  assert.deepEqual(
    fs.readdirSync(runDir).filter((n) => n.includes("checkpoint-") && !/^checkpoint-\d+$/.test(n)),
    [],
    "the resumed run removed the temporaries",
  );
  assertOnlyCompleteCheckpoints(runDir);
}

// Kill points: [checkpoint step, stage of its write] and the checkpoint a resume must take (save_total_limit 2).
const KILL_POINTS: [number, string, number][] = [
  [2, "started", 1], // temporary folder made, empty
  [2, "adapter", 1], // PEFT adapter written into it
  [3, "tensors", 2], // optimizer.safetensors written too
  [3, "state", 2], // everything written, not yet renamed into place
  [3, "renamed", 3], // renamed, the oldest checkpoint not yet pruned
  [2, "pruning", 4], // saving checkpoint-4 prunes checkpoint-2: renamed away, being deleted
];

for (const [step, stage, expected] of KILL_POINTS) {
  test(`SIGKILL at "${stage}" of checkpoint-${step}: only complete checkpoints; resume takes checkpoint-${expected}`, { timeout: 120_000 }, async () => {
    const runDir = path.join(work, `kill-${step}-${stage}`);
    await killAt(startTrain(runDir, [], 200), step, stage);
    const complete = assertOnlyCompleteCheckpoints(runDir);
    assert.equal(complete.at(-1), expected, `checkpoints left: ${complete.join(", ")}`);
    await assertResumesFrom(runDir, expected);
  });
}

test("SIGKILL while checkpoint-1, the first, is being written: nothing to resume from, said plainly", { timeout: 120_000 }, async () => {
  const runDir = path.join(work, "kill-first");
  await killAt(startTrain(runDir, [], 200), 1, "tensors");
  assert.deepEqual(assertOnlyCompleteCheckpoints(runDir), []);
  const run = startTrain(runDir, ["--resume_from_checkpoint", "true"]);
  assert.notEqual((await within(run.exited, 60_000, "the resume")).code, 0);
  assert.match(run.stderr(), /resume_from_checkpoint: true, but .*kill-first has no complete checkpoint-\* folder/);
  assert.deepEqual(
    fs.readdirSync(runDir).filter((n) => n.includes("checkpoint-")),
    [],
    "the temporary folder was removed",
  );
});

test("SIGKILL while a finished run's last checkpoint is being replaced: the old one is put back and resumes", { timeout: 120_000 }, async () => {
  // Resuming a finished run saves its last step again, over the existing folder: the old one is moved aside first.
  const runDir = path.join(work, "kill-replace");
  const first = startTrain(runDir);
  assert.equal((await within(first.exited, 60_000, "the first run")).code, 0, first.stderr());
  await killAt(startTrain(runDir, ["--resume_from_checkpoint", "true"], 200), MAX_STEPS, "replacing");
  assert.ok(
    fs.readdirSync(runDir).some((n) => new RegExp(`^checkpoint-${MAX_STEPS}\\.\\d+\\.old$`).test(n)),
    "the old checkpoint was moved aside",
  );
  assertOnlyCompleteCheckpoints(runDir);
  await assertResumesFrom(runDir, MAX_STEPS);
});
