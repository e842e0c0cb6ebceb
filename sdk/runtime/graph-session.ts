/**
 * Sessions straight from graphs. Small graphs go to onnxruntime in memory. A graph whose frozen weights live in a
 * weight file (initializers with an absolute external-data location) is written as a model file beside that file,
 * since onnxruntime only reads external data from the model's own folder; onnxruntime then memory-maps the weights,
 * so every session over the same file shares one copy. Graphs with over 1 GiB of in-memory weights go through a
 * temporary model file plus external data (protobuf caps a model at 2 GB).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Graph, TensorData, Value } from "../graph/ir";
import { initializerBytes, toOnnx, writeOnnxWithExternalData } from "../graph/onnx";
import type { Device } from "./device";
import { resolveDevice } from "./probe";
import { Session, type SessionOptions } from "./session";

/** Protobuf caps a model at 2 GB; graphs with more in-memory weights than this go to onnxruntime as external data. */
export const EXTERNAL_DATA_BYTES = 1 << 30;

/** Options of `sessionForGraph`. */
export interface GraphSessionOptions extends Omit<SessionOptions, "device"> {
  /** Where to run; "auto" picks CUDA when a CUDA session can be made, else the CPU. */
  device?: Device;
  /** In-memory weight bytes above which the model is passed as a file plus external data (default 1 GiB). */
  externalDataBytes?: number;
}

/** Creates a session for `graph` on the options' device. */
export async function sessionForGraph(graph: Graph, options: GraphSessionOptions = {}): Promise<Session> {
  const threshold = options.externalDataBytes ?? EXTERNAL_DATA_BYTES;
  const mapped = weightFileSlices(graph);
  const sessionOptions: SessionOptions = {
    ...options,
    device: await resolveDevice(options.device ?? "cpu"),
    // Repacking would give each session a private copy of every mapped weight, and an arena would keep each
    // session's activations reserved at their peak between runs.
    disablePrepacking: options.disablePrepacking ?? mapped.dir !== null,
    memoryArena: options.memoryArena ?? mapped.dir === null,
  };
  if (mapped.dir === null && initializerBytes(graph) <= threshold) return Session.create(toOnnx(graph), sessionOptions);
  const dir = mapped.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-graph-"));
  const file = path.join(dir, `.graph-${process.pid}-${Math.random().toString(36).slice(2)}.onnx`);
  try {
    writeOnnxWithExternalData(graph, file, Math.min(1024, threshold), { replace: mapped.slices });
    return await Session.create(file, sessionOptions);
  } finally {
    // onnxruntime has read the model; the weight file stays (it is mapped), the graph's own files go.
    if (mapped.dir === null) fs.rmSync(dir, { recursive: true, force: true });
    else for (const f of [file, `${file}.data`]) fs.rmSync(f, { force: true });
  }
}

/** The folder of the weight file the graph's file-backed initializers live in, and those initializers made relative. */
function weightFileSlices(graph: Graph): { dir: string | null; slices: Map<Value, TensorData> } {
  const slices = new Map<Value, TensorData>();
  let dir: string | null = null;
  for (const [value, t] of graph.initializers) {
    if (!t.external || !path.isAbsolute(t.external.location)) continue;
    const here = path.dirname(t.external.location);
    if (dir !== null && here !== dir) throw new Error(`graph "${graph.name}" takes weights from two folders (${dir}, ${here}); one weight file per graph`);
    dir = here;
    slices.set(value, { ...t, external: { ...t.external, location: path.basename(t.external.location) } });
  }
  return { dir, slices };
}
