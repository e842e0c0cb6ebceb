/** The run manifest: how a run was made (recipe, versions, seed, data hashes, device) and how long it took. */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeJsonAtomic } from "../io/atomic";
import { packageVersion } from "../util/package";
import type { Recipe } from "./recipe";

/** What `run.json` holds. */
export interface RunManifest {
  recipe: Recipe;
  versions: { tunelab: string; onnxruntime: string; node: string };
  seed: number;
  /** sha256 of each data file the run read. */
  data: { path: string; sha256: string; bytes: number }[];
  device: string;
  startedAt: string;
  durations: Record<string, number>;
  result: Record<string, unknown>;
}

/** Version of this package and of onnxruntime-node. */
export function versions(): RunManifest["versions"] {
  const ort = JSON.parse(fs.readFileSync(require.resolve("onnxruntime-node/package.json"), "utf8")) as { version: string };
  return { tunelab: packageVersion(), onnxruntime: ort.version, node: process.versions.node };
}

/** sha256 of each existing data file named by the recipe. */
export function hashDataFiles(paths: string | readonly string[]): RunManifest["data"] {
  const list = typeof paths === "string" ? [paths] : paths;
  return list
    .filter((p) => fs.existsSync(p) && fs.statSync(p).isFile())
    .map((p) => {
      const bytes = fs.readFileSync(p);
      return { path: path.resolve(p), sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
    });
}

/** Writes `run.json` into the output folder (atomically). */
export function writeManifest(outputDir: string, manifest: RunManifest): void {
  writeJsonAtomic(path.join(outputDir, "run.json"), manifest);
}
