/**
 * Checkpoints: `output_dir/checkpoint-<step>/` holds the PEFT adapter (LoRA runs; for users and other tools), the exact
 * trainable tensors and optimizer state (`optimizer.safetensors`) and `trainer_state.json`. A checkpoint is
 * written to a temporary folder and renamed into place, so an interrupted save never replaces a good one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "../io/atomic";
import { Adapter, saveAdapter } from "../models/lora";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors";
import { EngineState } from "./engine";

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
  logHistory: Record<string, number | string>[];
}

const STATE_FILE = "trainer_state.json";
const TENSORS_FILE = "optimizer.safetensors";
const PREFIX = "checkpoint-";

/** Writes a checkpoint for `state.globalStep` atomically and returns its folder. */
export function saveCheckpoint(outputDir: string, adapter: Adapter | null, engine: EngineState, state: TrainerState): string {
  fs.mkdirSync(outputDir, { recursive: true });
  const final = path.join(outputDir, `${PREFIX}${state.globalStep}`);
  const tmp = path.join(outputDir, `.${PREFIX}${state.globalStep}.${process.pid}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  if (adapter) saveAdapter(tmp, adapter);
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const [name, data] of Object.entries(engine.params)) tensors[`param/${name}`] = { dtype: "F32", shape: [data.length], data };
  for (const [name, data] of Object.entries(engine.optimizer)) tensors[`optimizer/${name}`] = { dtype: "F32", shape: [data.length], data };
  writeSafetensors(path.join(tmp, TENSORS_FILE), tensors, { step: String(engine.step) });
  writeJsonAtomic(path.join(tmp, STATE_FILE), state);
  if (fs.existsSync(final)) {
    const old = `${final}.${process.pid}.old`;
    fs.renameSync(final, old);
    fs.renameSync(tmp, final);
    fs.rmSync(old, { recursive: true, force: true });
  } else {
    fs.renameSync(tmp, final);
  }
  return final;
}

/** Reads a checkpoint folder back; fails naming the file when it is incomplete or damaged. */
export function loadCheckpoint(dir: string): { engine: EngineState; state: TrainerState } {
  const stateFile = path.join(dir, STATE_FILE);
  if (!fs.existsSync(stateFile)) throw new Error(`${dir}: not a tunelab checkpoint (no ${STATE_FILE})`);
  const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as TrainerState;
  const file = SafetensorsFile.open(path.join(dir, TENSORS_FILE));
  try {
    const params: Record<string, Float32Array> = {};
    const optimizer: Record<string, Float32Array> = {};
    for (const name of file.names()) {
      const data = file.read(name).data as Float32Array;
      if (name.startsWith("param/")) params[name.slice(6)] = data;
      else if (name.startsWith("optimizer/")) optimizer[name.slice(10)] = data;
    }
    return { engine: { step: state.globalStep, params, optimizer }, state };
  } finally {
    file.close();
  }
}

/** Checkpoint folders of a run, oldest first. */
export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs
    .readdirSync(outputDir)
    .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)))
    .map((n) => ({ step: Number(n.slice(PREFIX.length)), dir: path.join(outputDir, n) }))
    .filter((c) => fs.existsSync(path.join(c.dir, STATE_FILE)))
    .sort((a, b) => a.step - b.step);
}

/** Removes all but the newest `keep` checkpoints (and never `protect`, e.g. the best one). */
export function pruneCheckpoints(outputDir: string, keep: number, protect?: string): void {
  const all = listCheckpoints(outputDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) if (c.dir !== protect) fs.rmSync(c.dir, { recursive: true, force: true });
}

/** Removes what a killed process left half-done (temp and replaced checkpoint folders); finished checkpoints stay. */
export function removeStaleCheckpointTemps(outputDir: string): void {
  if (!fs.existsSync(outputDir)) return;
  for (const name of fs.readdirSync(outputDir)) {
    if (/^\.checkpoint-\d+\.\d+\.tmp$/.test(name) || /^checkpoint-\d+\.\d+\.old$/.test(name)) {
      fs.rmSync(path.join(outputDir, name), { recursive: true, force: true });
    }
  }
}
