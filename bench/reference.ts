/** The reference LoRA configuration of the engine issue, shared by the benchmark scripts. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../sdk/io/tiny";

export const REFERENCE = {
  hiddenSize: 256,
  numLayers: 4,
  intermediateSize: 688,
  numHeads: 8,
  numKvHeads: 4,
  batch: 8,
  seq: 256,
  rank: 16,
};

/** Writes the reference model (random Llama, byte-level tokenizer) to a temporary folder. */
export function referenceModel(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "tunelab-bench-"));
  createTinyModel({
    arch: "llama",
    out: dir,
    seed: 1,
    hiddenSize: REFERENCE.hiddenSize,
    numLayers: REFERENCE.numLayers,
    intermediateSize: REFERENCE.intermediateSize,
    numHeads: REFERENCE.numHeads,
    numKvHeads: REFERENCE.numKvHeads,
  });
  return dir;
}
