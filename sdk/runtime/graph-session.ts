/** Sessions straight from graphs: in memory when small, through a model file with external data when big. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Graph } from "../graph/ir";
import { initializerBytes, toOnnx, writeOnnxWithExternalData } from "../graph/onnx";
import type { Device } from "./device";
import { resolveDevice } from "./probe";
import { Session, type SessionOptions } from "./session";

/** Protobuf caps a model at 2 GB; graphs with more weights than this go to onnxruntime as external data. */
export const EXTERNAL_DATA_BYTES = 1 << 30;

/** Options of `sessionForGraph`. */
export interface GraphSessionOptions extends Omit<SessionOptions, "device"> {
  /** Where to run; "auto" picks CUDA when a CUDA session can be made, else the CPU. */
  device?: Device;
  /** Weight bytes above which the model is passed as a file plus external data (default 1 GiB). */
  externalDataBytes?: number;
}

/** Creates a session for `graph` on the options' device. */
export async function sessionForGraph(graph: Graph, options: GraphSessionOptions = {}): Promise<Session> {
  const threshold = options.externalDataBytes ?? EXTERNAL_DATA_BYTES;
  const sessionOptions: SessionOptions = { ...options, device: await resolveDevice(options.device ?? "cpu") };
  if (initializerBytes(graph) <= threshold) return Session.create(toOnnx(graph), sessionOptions);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-graph-"));
  try {
    const file = path.join(dir, "model.onnx");
    writeOnnxWithExternalData(graph, file, Math.min(1024, threshold));
    return await Session.create(file, sessionOptions);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
