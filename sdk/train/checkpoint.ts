/**
 * Checkpoints: `output_dir/checkpoint-<step>/` holds the PEFT adapter (LoRA runs; for users and other tools), the exact
 * trainable tensors, optimizer state and early stopping's best tensors (`optimizer.safetensors`) and
 * `trainer_state.json`. A checkpoint is written to a temporary folder and renamed into place, and an old one is renamed
 * out of the way before it is deleted, so a process killed at any point never leaves a `checkpoint-<step>` folder that
 * is not complete; the next run removes (or, for a replaced checkpoint, puts back) what it left.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "../io/atomic";
import { Adapter, saveAdapter } from "../models/lora";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors";
import type { EngineState, ParamsState } from "./engine";

/** Progress of a run beyond the tensors: what resuming needs to continue exactly. */
export interface TrainerState {
  globalStep: number;
  epoch: number;
  /** Best validation value so far (lower is better for loss), and its step. */
  bestMetric: number | null;
  bestStep: number | null;
  /** Evaluations in a row without improvement (early stopping). */
  patienceUsed: number;
  /** Loss scale of fp16 training. */
  lossScale: number;
  /** fp16: good steps since the loss scale last changed (GradScaler's growth tracker). */
  lossScaleGoodSteps: number;
  logHistory: Record<string, number | string>[];
}

/** What a checkpoint holds, as loadCheckpoint returns it. */
export interface LoadedCheckpoint {
  engine: EngineState;
  state: TrainerState;
  /** Early stopping's best tensors (step `state.bestStep`), or null when the run kept none. */
  best: ParamsState | null;
}

const STATE_FILE = "trainer_state.json";
const TENSORS_FILE = "optimizer.safetensors";
const PREFIX = "checkpoint-";
/** Test hook: pause this many milliseconds at each stage of a checkpoint write, announced on stderr (kill tests). */
const PAUSE_ENV = "TUNELAB_TEST_PAUSE_IN_CHECKPOINT_WRITE";

/** Writes a checkpoint for `state.globalStep` atomically (with early stopping's `best` tensors, if any) and returns its folder. */
export function saveCheckpoint(outputDir: string, adapter: Adapter | null, engine: EngineState, state: TrainerState, best: ParamsState | null = null): string {
  fs.mkdirSync(outputDir, { recursive: true });
  const step = state.globalStep;
  const final = path.join(outputDir, `${PREFIX}${step}`);
  const tmp = path.join(outputDir, `.${PREFIX}${step}.${process.pid}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  pauseForTest(step, "started");
  if (adapter) saveAdapter(tmp, adapter);
  pauseForTest(step, "adapter");
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  const add = (prefix: string, from: Record<string, Float32Array>) => {
    for (const [name, data] of Object.entries(from)) tensors[`${prefix}/${name}`] = { dtype: "F32", shape: [data.length], data };
  };
  add("param", engine.params);
  add("optimizer", engine.optimizer);
  if (best) add("best", best.params);
  writeSafetensors(path.join(tmp, TENSORS_FILE), tensors, { step: String(engine.step) });
  pauseForTest(step, "tensors");
  writeJsonAtomic(path.join(tmp, STATE_FILE), state);
  pauseForTest(step, "state");
  if (fs.existsSync(final)) {
    const old = `${final}.${process.pid}.old`;
    fs.renameSync(final, old);
    pauseForTest(step, "replacing");
    fs.renameSync(tmp, final);
    fs.rmSync(old, { recursive: true, force: true });
  } else {
    fs.renameSync(tmp, final);
  }
  pauseForTest(step, "renamed");
  return final;
}

/** Reads a checkpoint folder back; fails naming the folder and file when it is incomplete or damaged. */
export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const stateFile = path.join(dir, STATE_FILE);
  const tensorsFile = path.join(dir, TENSORS_FILE);
  if (!fs.existsSync(stateFile)) throw new Error(`${dir}: not a tunelab checkpoint (no ${STATE_FILE})`);
  if (!fs.existsSync(tensorsFile)) throw new Error(`${dir}: incomplete checkpoint (no ${TENSORS_FILE})`);
  const state = trainerState(JSON.parse(fs.readFileSync(stateFile, "utf8")), stateFile);
  const file = SafetensorsFile.open(tensorsFile);
  try {
    const groups: Record<string, Record<string, Float32Array>> = { param: {}, optimizer: {}, best: {} };
    for (const name of file.names()) {
      const slash = name.indexOf("/");
      const group = groups[name.slice(0, slash)];
      if (group) group[name.slice(slash + 1)] = file.read(name).data as Float32Array;
    }
    const { param: params, optimizer, best } = groups;
    const hasBest = state.bestStep !== null && Object.keys(best).length > 0;
    return { engine: { step: state.globalStep, params, optimizer }, state, best: hasBest ? { step: state.bestStep!, params: best } : null };
  } finally {
    file.close();
  }
}

/** trainer_state.json checked, with the fields older versions did not write filled in as a fresh run has them. */
function trainerState(json: Partial<TrainerState>, file: string): TrainerState {
  if (typeof json !== "object" || json === null || !Number.isInteger(json.globalStep) || typeof json.lossScale !== "number") {
    throw new Error(`${file}: not a tunelab trainer state (needs an integer globalStep and a lossScale)`);
  }
  return { ...(json as TrainerState), lossScaleGoodSteps: json.lossScaleGoodSteps ?? 0 };
}

/** Complete checkpoint folders of a run (a state and tensors), oldest first. */
export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs
    .readdirSync(outputDir)
    .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)))
    .map((n) => ({ step: Number(n.slice(PREFIX.length)), dir: path.join(outputDir, n) }))
    .filter((c) => fs.existsSync(path.join(c.dir, STATE_FILE)) && fs.existsSync(path.join(c.dir, TENSORS_FILE)))
    .sort((a, b) => a.step - b.step);
}

/** Removes all but the newest `keep` checkpoints (and never `protect`, e.g. the best one), each renamed away first. */
export function pruneCheckpoints(outputDir: string, keep: number, protect?: string): void {
  const all = listCheckpoints(outputDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) {
    if (c.dir === protect) continue;
    const doomed = path.join(outputDir, `.${path.basename(c.dir)}.${process.pid}.del`);
    fs.renameSync(c.dir, doomed);
    pauseForTest(c.step, "pruning");
    fs.rmSync(doomed, { recursive: true, force: true });
  }
}

/**
 * Cleans up after a process killed while saving or pruning: removes temporary and half-deleted folders, and renames a
 * checkpoint that a replacing save had moved aside back into place when its replacement never arrived.
 */
export function recoverCheckpointFolders(outputDir: string): void {
  if (!fs.existsSync(outputDir)) return;
  for (const name of fs.readdirSync(outputDir)) {
    const full = path.join(outputDir, name);
    const aside = /^(checkpoint-\d+)\.\d+\.old$/.exec(name);
    if (aside && !fs.existsSync(path.join(outputDir, aside[1]))) fs.renameSync(full, path.join(outputDir, aside[1]));
    else if (aside || /^\.checkpoint-\d+\.\d+\.(tmp|del)$/.test(name)) fs.rmSync(full, { recursive: true, force: true });
  }
}

/** The test hook: with TUNELAB_TEST_PAUSE_IN_CHECKPOINT_WRITE=<ms>, says where the write is and blocks that long. */
function pauseForTest(step: number, stage: string): void {
  const ms = Number(process.env[PAUSE_ENV] ?? 0);
  if (!(ms > 0)) return;
  fs.writeSync(2, `${PAUSE_ENV}: checkpoint-${step} ${stage}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
