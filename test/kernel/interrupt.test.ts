/**
 * Jupyter's interrupt (the server sends SIGINT to the kernel: interrupt_mode "signal") in a real server with the
 * tunelab kernel: during fit() it stops training at the next step boundary with a checkpoint and the cell ends
 * normally with the run; during ordinary code it breaks the cell with an error, as tslab does. The kernel lives on.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { loadCheckpoint } from "../../sdk/train/checkpoint";
import { jupyterServerModule, startKernelSession, type KernelSession } from "./jupyter";
import { within } from "../util/within";

const found = jupyterServerModule();
const skip = "missing" in found ? found.missing : false;
const dataFile = path.resolve(__dirname, "..", "..", "..", "data", "arithmetic.txt");

let session: KernelSession | undefined;
let kernel: Kernel.IKernelConnection | undefined;
let work = "";

before(async () => {
  if (skip || "missing" in found) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-kernel-interrupt-"));
  session = await startKernelSession(found.module);
  kernel = session.kernel;
});

after(async () => {
  // Always runs: kernel, manager polling, then the server process and its temp folders.
  try {
    await session?.stop();
  } finally {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }
});

/** A cell in flight: its IOPub messages so far, and its reply. */
interface Running {
  iopub: KernelMessage.IIOPubMessage[];
  done: Promise<KernelMessage.IExecuteReplyMsg["content"]>;
  finished(): boolean;
}

function start(code: string): Running {
  assert.ok(kernel, "kernel did not start");
  const future = kernel.requestExecute({ code, stop_on_error: true });
  const iopub: KernelMessage.IIOPubMessage[] = [];
  future.onIOPub = (msg) => {
    if (msg.header.msg_type !== "status" && msg.header.msg_type !== "execute_input") iopub.push(msg);
  };
  let finished = false;
  const done = future.done.then((r) => {
    finished = true;
    return r.content;
  });
  return { iopub, done, finished: () => finished };
}

function streamText(iopub: KernelMessage.IIOPubMessage[]): string {
  return iopub
    .filter((m) => m.header.msg_type === "stream")
    .map((m) => (m.content as { text: string }).text)
    .join("");
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a cell to its reply and returns it with the cell's stream text and text/plain result. */
async function execute(code: string): Promise<{ reply: KernelMessage.IExecuteReplyMsg["content"]; text: string; result: unknown }> {
  const cell = start(code);
  const reply = await within(cell.done, 30_000, "the cell");
  const result = cell.iopub.find((m) => m.header.msg_type === "execute_result");
  return { reply, text: streamText(cell.iopub), result: result && (result.content as { data: Record<string, unknown> }).data["text/plain"] };
}

async function assertAlive(): Promise<void> {
  const next = await execute("1 + 1");
  assert.equal(next.reply.status, "ok", JSON.stringify(next.reply));
  assert.equal(next.result, "2");
}

test("an interrupt during fit() stops at a step boundary with a checkpoint; the cell ends normally", { skip, timeout: 60_000 }, async (t) => {
  const modelDir = path.join(work, "model");
  const outDir = path.join(work, "run");
  const code = [
    'import { ds, Model } from "tunelab";',
    `const base = await Model.tiny({ arch: "llama", out: ${JSON.stringify(modelDir)}, seed: 0, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2 });`,
    `const run = await ds.load(${JSON.stringify(dataFile)}).lora({ rank: 4 }).fit(base, { stage: "pt", maxSteps: 100000, saveSteps: 0, loggingSteps: 1, outputDir: ${JSON.stringify(outDir)} });`,
    "console.log(`stopped by ${run.result.stoppedBy} at step ${run.steps}`);",
  ].join("\n");
  const cell = start(code);
  // Live progress is one display updated in place: wait for a few updates, i.e. training is under way.
  const updates = () => cell.iopub.filter((m) => m.header.msg_type === "update_display_data").length;
  await until("live training updates", () => updates() >= 3, 40_000);
  const sent = Date.now();
  await kernel!.interrupt();
  const reply = await within(cell.done, 15_000, "the fit cell after the interrupt");
  t.diagnostic(`cell replied ${Date.now() - sent} ms after the interrupt request`);
  assert.equal(reply.status, "ok", JSON.stringify(reply));

  const said = /stopped by (\w+) at step (\d+)/.exec(streamText(cell.iopub));
  assert.ok(said, `the code after fit() ran and printed:\n${streamText(cell.iopub)}`);
  assert.equal(said[1], "interrupted");
  const step = Number(said[2]);
  assert.ok(step >= 1);
  const logged = [...fs.readFileSync(path.join(outDir, "train.log"), "utf8").matchAll(/\bstep (\d+) loss: /g)].map((m) => Number(m[1]));
  assert.equal(logged.at(-1), step, "train.log ends at the step fit() reports");
  const checkpoints = fs.readdirSync(outDir).filter((n) => /^checkpoint-\d+$/.test(n));
  assert.deepEqual(checkpoints, [`checkpoint-${step}`]);
  const loaded = loadCheckpoint(path.join(outDir, `checkpoint-${step}`));
  assert.equal(loaded.state.globalStep, step);
  assert.ok(Object.keys(loaded.engine.params).length > 0 && Object.keys(loaded.engine.optimizer).length > 0);
  assert.ok(fs.existsSync(path.join(outDir, "adapter_model.safetensors")));
  // The live view's last state says why it stopped.
  const lastView = cell.iopub.filter((m) => m.header.msg_type === "update_display_data").at(-1)!;
  assert.match(String((lastView.content as { data: Record<string, unknown> }).data["text/html"]), new RegExp(`finished: interrupted at step ${step}\\b`));

  // The run is a normal value in the next cell, and the kernel goes on.
  const next = await execute("run.result.stoppedBy");
  assert.equal(next.result, "interrupted", JSON.stringify(next));
  await assertAlive();
});

test("an interrupt during ordinary async code breaks the cell with an error, as in tslab", { skip, timeout: 60_000 }, async () => {
  const cell = start("await new Promise((resolve) => setTimeout(resolve, 60_000).unref());\nconsole.log('not interrupted');");
  await new Promise((r) => setTimeout(r, 500));
  await kernel!.interrupt();
  const reply = await within(cell.done, 10_000, "the cell after the interrupt");
  assert.equal(reply.status, "error");
  assert.match((reply as KernelMessage.IReplyErrorContent).evalue, /Interrupted asynchronously/);
  assert.doesNotMatch(streamText(cell.iopub), /not interrupted/);
  await assertAlive();
});

test("an interrupt during a synchronous loop breaks it, as in tslab", { skip, timeout: 60_000 }, async () => {
  const cell = start("let spins = 0;\nwhile (true) spins++;");
  await new Promise((r) => setTimeout(r, 1_000));
  await kernel!.interrupt();
  const reply = await within(cell.done, 10_000, "the cell after the interrupt");
  assert.equal(reply.status, "error");
  assert.match((reply as KernelMessage.IReplyErrorContent).evalue, /Script execution was interrupted/);
  await assertAlive();
});

test("code that handles SIGINT itself gets the first interrupt; a second one breaks the cell", { skip, timeout: 60_000 }, async () => {
  const code = [
    "let stopRequested = false;",
    'process.once("SIGINT", () => { stopRequested = true; });',
    "while (!stopRequested) await new Promise((resolve) => setTimeout(resolve, 20));",
    'console.log("stopped on request");',
    'process.once("SIGINT", () => {});',
    "await new Promise((resolve) => setTimeout(resolve, 60_000).unref());",
    'console.log("not interrupted");',
  ].join("\n");
  const cell = start(code);
  await new Promise((r) => setTimeout(r, 500));
  await kernel!.interrupt();
  await until("the cell's own SIGINT handling", () => streamText(cell.iopub).includes("stopped on request"), 10_000);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(!cell.finished(), "the cell still runs");
  // Its second listener is the cell's own again: the first interrupt of this wait goes to it, the second breaks.
  await kernel!.interrupt();
  await new Promise((r) => setTimeout(r, 300));
  await kernel!.interrupt();
  const reply = await within(cell.done, 10_000, "the cell after the second interrupt");
  assert.equal(reply.status, "error", JSON.stringify(reply));
  assert.match((reply as KernelMessage.IReplyErrorContent).evalue, /Interrupted asynchronously/);
  assert.doesNotMatch(streamText(cell.iopub), /not interrupted/);
  await assertAlive();
});
