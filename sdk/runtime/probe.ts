/** Checks a provider for real: builds a tiny graph, runs it there and compares with the CPU's answer. */
import { Builder } from "../graph/ops";
import { toOnnx } from "../graph/onnx";
import { Device, Provider } from "./device";
import { HostTensor, Session } from "./session";

/** The outcome of running the probe graph on one provider. */
export interface ProbeResult {
  ok: boolean;
  /** What ran, or why it failed. */
  detail: string;
  /** Wall time of session creation and one run, in milliseconds. */
  ms: number;
}

function probeModel(): Uint8Array {
  const b = new Builder();
  const x = b.graph.input("x", "float32", ["n", 8]);
  const w = b.constant(
    Array.from({ length: 64 }, (_, i) => Math.sin(i) / 4),
    [8, 8],
  );
  b.graph.output(b.softmax(b.add(b.matmul(x, w), b.scalar(1)), -1), "y");
  return toOnnx(b.graph);
}

const probeInput: HostTensor = { dtype: "float32", shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)) };

async function runOn(provider: Provider, model: Uint8Array): Promise<Float32Array> {
  const session = await Session.create(model, { device: provider });
  try {
    return (await session.run({ x: probeInput })).y.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** Runs a tiny graph on `provider` and checks it agrees with the CPU within 1e-4. */
export async function probeProvider(provider: Provider): Promise<ProbeResult> {
  const start = Date.now();
  const model = probeModel();
  try {
    const got = await runOn(provider, model);
    const want = provider === "cpu" ? got : await runOn("cpu", model);
    const maxDiff = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
    const ms = Date.now() - start;
    if (!(maxDiff < 1e-4)) return { ok: false, detail: `ran, but differs from the CPU by ${maxDiff}`, ms };
    return { ok: true, detail: provider === "cpu" ? "ran a test graph" : `ran a test graph (max diff vs cpu ${maxDiff.toExponential(1)})`, ms };
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    return { ok: false, detail: msg, ms: Date.now() - start };
  }
}

const cudaProbe: { ok?: boolean } = {};

/** Resolves "auto" to a provider: CUDA when a CUDA session can be made, else the CPU. */
export async function resolveDevice(device: Device): Promise<Provider> {
  if (device !== "auto") return device;
  cudaProbe.ok ??= (await probeProvider("cuda")).ok;
  return cudaProbe.ok ? "cuda" : "cpu";
}
