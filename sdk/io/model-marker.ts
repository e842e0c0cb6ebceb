/**
 * The marker `tunelab model create` leaves in folders it writes, so a later `model create` may replace them,
 * while a folder holding anything else (a downloaded model, a user's files) is refused unless `overwrite`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "./atomic";

/** File name of the marker. */
export const MODEL_MARKER = ".tunelab-model.json";

/** What the marker records: how the folder was made. */
export interface ModelMarker {
  created_by: "tunelab model create";
  preset?: string;
  arch?: string;
  seed: number;
}

/** The marker of `dir`, or null when it has none (or an unreadable one). */
export function readModelMarker(dir: string): ModelMarker | null {
  try {
    const json = JSON.parse(fs.readFileSync(path.join(dir, MODEL_MARKER), "utf8")) as ModelMarker;
    return json && json.created_by === "tunelab model create" ? json : null;
  } catch {
    return null;
  }
}

/** Writes the marker into `dir` (created if missing). */
export function writeModelMarker(dir: string, marker: Omit<ModelMarker, "created_by">): void {
  fs.mkdirSync(dir, { recursive: true });
  writeJsonAtomic(path.join(dir, MODEL_MARKER), { created_by: "tunelab model create", ...marker });
}

/** Throws unless `dir` is missing, empty, written by tunelab, or `overwrite` is set. */
export function assertModelOutput(dir: string, overwrite: boolean): void {
  if (overwrite || !fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a folder`);
  if (fs.readdirSync(dir).length === 0 || readModelMarker(dir)) return;
  throw new Error(
    `${dir} is not empty and was not written by tunelab model create; refusing to replace its files ` +
      `(pass --overwrite to replace config, tokenizer and weight files there)`,
  );
}
