/**
 * Ctrl-C on `tunelab train`: the real CLI in a child process gets a real SIGINT while it trains, stops at the next
 * step boundary, writes a complete checkpoint for its last step and exits on its own; resuming continues from it.
 * A second SIGINT during that shutdown quits at once, or is absorbed by the synchronous save; either way it must
 * not cost the last good checkpoint nor leave a half-written one behind.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadAdapter, loraNames } from "../../sdk/models/lora";
import { loadCheckpoint } from "../../sdk/train/checkpoint";
import { within } from "../util/within";

const cli = path.resolve(__dirname, "..", "..", "sdk", "cli", "main.js");
const dataFile = path.resolve(__dirname, "..", "..", "..", "data", "arithmetic.txt");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-interrupt-"));
/** Children still running when a test fails are stopped in after(). */
const children = new Set<ChildProcess>();

/** How long a run may take, after SIGINT, to stop at a step boundary, save and exit (a step takes milliseconds). */
const EXIT_WITHIN_MS = 8_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  at: number;
}

interface Training {
  child: ChildProcess;
  exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
}

/** Starts `tunelab train ...args` in `work`, collecting its output. */
function startTrain(...args: string[]): Training {
  const child = spawn(process.execPath, [cli, "train", ...args], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<Exit>((resolve) =>
    child.once("close", (code, signal) => {
      children.delete(child);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** Writes a pt recipe on the bundled arithmetic text with a run far too long to finish, plus `extra` lines. */
function writeRecipe(name: string, outputDir: string, extra: string[] = []): string {
  const file = path.join(work, name);
  const lines = [
    "model_name_or_path: model",
    "stage: pt",
    "finetuning_type: lora",
    `dataset_path: ${dataFile}`,
    `output_dir: ${outputDir}`,
    "max_steps: 100000",
    "logging_steps: 1",
    "per_device_train_batch_size: 4",
    "cutoff_len: 64",
    "lora_rank: 4",
    "lora_alpha: 8",
    "seed: 0",
    ...extra,
  ];
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

/** Steps logged in train.log, in order (logging_steps 1: every step). */
function loggedSteps(runDir: string): number[] {
  const file = path.join(runDir, "train.log");
  if (!fs.existsSync(file)) return [];
  return [...fs.readFileSync(file, "utf8").matchAll(/\bstep (\d+) loss: /g)].map((m) => Number(m[1]));
}

/** Resolves with the last logged step once train.log shows at least `n` steps (fails on exit or timeout). */
async function waitForSteps(run: Training, runDir: string, n: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void run.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    const steps = loggedSteps(runDir);
    if (steps.length >= n) return steps[steps.length - 1];
    if (exited) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`train.log did not reach ${n} steps (exited: ${exited}):\n${run.stdout()}\n${run.stderr()}`);
}

/** checkpoint-<n> folders of a run, by step. */
function checkpointSteps(runDir: string): number[] {
  return fs
    .readdirSync(runDir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Checks that a checkpoint folder is complete for `step`: state, every LoRA tensor and its optimizer state, the PEFT adapter. */
function assertCompleteCheckpoint(dir: string, step: number): ReturnType<typeof loadCheckpoint> {
  const loaded = loadCheckpoint(dir);
  assert.equal(loaded.state.globalStep, step, `${dir}: trainer_state.json globalStep`);
  assert.equal(loaded.engine.step, step);
  const adapter = loadAdapter(dir);
  const modules = Object.keys(adapter.lora);
  assert.ok(modules.length > 0, `${dir}: the adapter has LoRA modules`);
  for (const m of modules) {
    const n = loraNames(m);
    for (const [name, data] of [
      [n.A, adapter.lora[m].A],
      [n.B, adapter.lora[m].B],
    ] as const) {
      const saved = loaded.engine.params[name];
      assert.ok(saved, `${dir}: optimizer.safetensors has param/${name}`);
      assert.deepEqual(saved, data, `${dir}: ${name} is the same in optimizer.safetensors and the PEFT adapter`);
      assert.ok(saved.every(Number.isFinite), `${name} is finite`);
    }
  }
  // adamw keeps two moments per trainable tensor; all of them must be there and finite.
  const moments = Object.values(loaded.engine.optimizer);
  assert.equal(moments.length, 2 * Object.keys(loaded.engine.params).length, `${dir}: adamw moments for every tensor`);
  assert.ok(moments.every((m) => m.length > 0 && m.every(Number.isFinite)));
  return loaded;
}

before(() => {
  const r = spawnSync(
    process.execPath,
    [cli, "model", "create", "--arch", "llama", "--out", "model", "--seed", "0", "--hidden-size", "32", "--layers", "1", "--heads", "4", "--kv-heads", "2"],
    { cwd: work, encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 0, `model create failed:\n${r.stdout}\n${r.stderr}`);
});

after(() => {
  for (const c of children) c.kill("SIGKILL");
  fs.rmSync(work, { recursive: true, force: true });
});

test("SIGINT stops `tunelab train` at a step boundary with a checkpoint of that step; resume continues from it", { timeout: 60_000 }, async (t) => {
  const runDir = path.join(work, "run");
  const recipe = writeRecipe("recipe.yaml", runDir, ["save_steps: 0"]);
  const run = startTrain(recipe);
  await waitForSteps(run, runDir, 5);
  const sent = Date.now();
  assert.ok(run.child.kill("SIGINT"));
  const exit = await within(run.exited, EXIT_WITHIN_MS, "exiting after SIGINT");
  t.diagnostic(`exited ${exit.at - sent} ms after SIGINT`);
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `exit status (docs/cli.md: 0 after an interrupt)\n${run.stderr()}`);

  assert.match(run.stderr(), /interrupted: stopping at the next step boundary and writing a checkpoint/);
  const said = /adapter written to (.+) after (\d+) steps \(interrupted\)/.exec(run.stdout());
  assert.ok(said, `stdout says the run was interrupted:\n${run.stdout()}`);
  assert.equal(path.resolve(said[1]), runDir);
  const steps = loggedSteps(runDir);
  const last = steps[steps.length - 1];
  assert.equal(Number(said[2]), last, "the reported step is the last one in train.log");
  assert.deepEqual(
    steps,
    Array.from({ length: last }, (_, i) => i + 1),
    "every step logged once, none after the stop",
  );

  // The checkpoint of exactly that step, complete, and nothing half-written left around it.
  assert.deepEqual(checkpointSteps(runDir), [last]);
  const loaded = assertCompleteCheckpoint(path.join(runDir, `checkpoint-${last}`), last);
  assert.equal(loaded.state.logHistory.at(-1)?.step, last);
  const leftovers = fs.readdirSync(runDir).filter((n) => n.startsWith(".") || /\.(tmp|old)$/.test(n));
  assert.deepEqual(leftovers, [], "no temporary checkpoint folders");

  // The run's own outputs: the adapter (equal to the checkpoint's) and run.json saying why it stopped.
  const final = loadAdapter(runDir);
  const inCheckpoint = loadAdapter(path.join(runDir, `checkpoint-${last}`));
  assert.deepEqual(final.lora, inCheckpoint.lora, "the adapter in output_dir is the state at the interrupt");
  const manifest = JSON.parse(fs.readFileSync(path.join(runDir, "run.json"), "utf8"));
  assert.equal(manifest.result.stopped_by, "interrupted");
  assert.equal(manifest.result.steps, last);

  // Resume: continues from that checkpoint and runs exactly the remaining steps.
  const resumed = startTrain(recipe, "--resume_from_checkpoint", "true", "--max_steps", String(last + 3));
  const again = await within(resumed.exited, 30_000, "the resumed run");
  assert.equal(again.code, 0, resumed.stderr());
  assert.match(resumed.stdout(), new RegExp(`after ${last + 3} steps \\(max_steps\\)`));
  const log = fs.readFileSync(path.join(runDir, "train.log"), "utf8");
  const resumeAt = log.indexOf(`resumed from ${path.join(runDir, `checkpoint-${last}`)} at step ${last}`);
  assert.ok(resumeAt > 0, `train.log says where it resumed:\n${log.slice(-600)}`);
  const afterResume = [...log.slice(resumeAt).matchAll(/\bstep (\d+) loss: /g)].map((m) => Number(m[1]));
  assert.deepEqual(afterResume, [last + 1, last + 2, last + 3]);
  assertCompleteCheckpoint(path.join(runDir, `checkpoint-${last + 3}`), last + 3);
});

test("a second SIGINT while the run is stopping keeps the last good checkpoint and leaves nothing half-written", { timeout: 60_000 }, async (t) => {
  // The second signal lands at different points of the shutdown: during the last step (it quits at once), during
  // the synchronous checkpoint write and final save (it can only take effect after them), or at exit.
  let runDir = "";
  let recipe = "";
  let newest = 0;
  for (const delayMs of [0, 5, 10, 20, 40]) {
    runDir = path.join(work, `run-double-${delayMs}`);
    recipe = writeRecipe(`recipe-double-${delayMs}.yaml`, runDir, ["save_steps: 2", "save_total_limit: 2"]);
    const run = startTrain(recipe);
    await waitForSteps(run, runDir, 6);
    const before = checkpointSteps(runDir);
    assert.ok(before.length > 0, "save_steps 2 wrote checkpoints");
    run.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, delayMs));
    run.child.kill("SIGINT");
    const exit = await within(run.exited, EXIT_WITHIN_MS, "exiting after two SIGINTs");
    const now = checkpointSteps(runDir);
    t.diagnostic(`second SIGINT after ${delayMs} ms: exit ${JSON.stringify({ code: exit.code, signal: exit.signal })}, checkpoints ${now.join(", ")}`);
    // docs: 0 when the graceful stop finished; killed by SIGINT (or 130) when the second Ctrl-C quit.
    assert.ok((exit.code === 0 && exit.signal === null) || exit.signal === "SIGINT" || exit.code === 130, JSON.stringify(exit));
    if (exit.code === 0) assert.match(run.stdout(), /\(interrupted\)/);
    else if (!/adapter written to/.test(run.stdout())) assert.match(run.stderr(), /interrupted again: quitting/);

    // Every checkpoint folder there is complete, none is half-written, and the newest is not older than before.
    assert.ok(now.length > 0, "a checkpoint is left");
    for (const s of now) assertCompleteCheckpoint(path.join(runDir, `checkpoint-${s}`), s);
    const leftovers = fs.readdirSync(runDir).filter((n) => /^\.?checkpoint-/.test(n) && !/^checkpoint-\d+$/.test(n));
    assert.deepEqual(leftovers, [], "no temporary or half-replaced checkpoint folders");
    newest = now[now.length - 1];
    assert.ok(newest >= before[before.length - 1], `newest checkpoint ${newest} is older than ${before[before.length - 1]}`);
  }

  const resumed = startTrain(recipe, "--resume_from_checkpoint", "true", "--max_steps", String(newest + 2));
  const again = await within(resumed.exited, 30_000, "the resumed run");
  assert.equal(again.code, 0, resumed.stderr());
  assert.match(fs.readFileSync(path.join(runDir, "train.log"), "utf8"), new RegExp(`resumed from .*checkpoint-${newest} at step ${newest}`));
  assert.match(resumed.stdout(), new RegExp(`after ${newest + 2} steps \\(max_steps\\)`));
});
