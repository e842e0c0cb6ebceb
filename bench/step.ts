/**
 * `npm run bench`: the reference LoRA training step (engine issue): tokens/s, achieved GFLOP/s, the GFLOP/s of a
 * plain large MatMul in the same runtime, their ratio, and PyTorch eager's step time on the same machine when
 * Debian's python3-torch is installed. Prints a JSON line last.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { Builder } from "../sdk/graph/ops";
import { toOnnx } from "../sdk/graph/onnx";
import { openModel } from "../sdk/models/model";
import { loraModules, loraTrainables, makeLoraConfig } from "../sdk/models/lora";
import { causalLMForward } from "../sdk/models/tasks";
import { resolveDevice } from "../sdk/runtime/probe";
import { Session } from "../sdk/runtime/session";
import { StepEngine } from "../sdk/train/engine";
import { parseOption } from "../sdk/train/recipe-check";
import { Rng } from "../sdk/util/random";
import { REFERENCE as R, referenceModel } from "./reference";
import { realSizeBench } from "./real-size";

const device = parseOption("device", process.env.TUNELAB_DEVICE ?? "cpu", "TUNELAB_DEVICE");
const steps = Number(process.env.TUNELAB_BENCH_STEPS ?? 8);

/** FLOPs of one LoRA step: forward, plus input gradients through frozen layers, plus LoRA weight gradients. */
function stepFlops(vocab: number): number {
  const tokens = R.batch * R.seq;
  const h = R.hiddenSize;
  const headDim = h / R.numHeads;
  const kv = R.numKvHeads * headDim;
  const linears = [h * h, h * kv, h * kv, h * h, h * R.intermediateSize, h * R.intermediateSize, R.intermediateSize * h];
  const linearParams = linears.reduce((a, b) => a + b, 0) * R.numLayers;
  const loraFwd =
    R.numLayers *
    [
      [h, h],
      [h, kv],
      [h, kv],
      [h, h],
      [h, R.intermediateSize],
      [h, R.intermediateSize],
      [R.intermediateSize, h],
    ].reduce((a, [i, o]) => a + 2 * tokens * R.rank * (i + o), 0);
  const attention = R.numLayers * 2 * 2 * R.batch * R.numHeads * R.seq * R.seq * headDim;
  const head = 2 * tokens * h * vocab;
  const forward = 2 * tokens * linearParams + attention + head + loraFwd;
  // Backward: input gradients cost one forward's worth; LoRA's own weight gradients add one LoRA forward more.
  return 2 * forward + loraFwd;
}

async function matmulGflops(): Promise<number> {
  const n = 1024;
  const b = new Builder();
  const x = b.graph.input("x", "float32", [n, n]);
  const w = b.constant(new Float32Array(n * n).fill(0.001), [n, n]);
  b.graph.output(b.matmul(x, w), "y");
  const session = await Session.create(toOnnx(b.graph), { device: await resolveDevice(device) });
  const feeds = { x: { dtype: "float32" as const, shape: [n, n], data: new Float32Array(n * n).fill(1) } };
  await session.run(feeds);
  // The best of several runs: the machine's attainable MatMul rate, less sensitive to other load than a mean.
  let best = Infinity;
  for (let i = 0; i < 10; i++) {
    const start = performance.now();
    await session.run(feeds);
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  await session.release();
  return (2 * n ** 3) / best / 1e9;
}

/** PyTorch eager on the same model, when Debian's python3-torch is installed: ms per step and its matmul GFLOP/s. */
function torchStep(dir: string): { ms: number; matmulGflops: number; blas: string } | null {
  try {
    const out = execFileSync("/usr/bin/python3", [path.join(__dirname, "../../bench/torch_step.py"), dir, JSON.stringify(R)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const r = JSON.parse(out);
    return { ms: r.ms_per_step, matmulGflops: r.matmul_gflops, blas: r.blas };
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const dir = referenceModel();
  const model = openModel(dir);
  const lora = makeLoraConfig({ r: R.rank, loraAlpha: 2 * R.rank, targetModules: "all-linear" });
  const modules = loraModules(model.config, lora);
  const engine = StepEngine.create({
    forward: causalLMForward({ config: model.config, weights: model.weights, lora: modules, loraDropout: 0 }),
    trainable: loraTrainables(modules, 0),
    optimizer: { name: "adamw", weightDecay: 0.01 },
    maxGradNorm: 1,
    device,
  });
  const rng = new Rng(0);
  const ids = BigInt64Array.from({ length: R.batch * R.seq }, () => BigInt(3 + rng.int(250)));
  const shape = [R.batch, R.seq];
  const batch = {
    input_ids: { dtype: "int64" as const, shape, data: ids },
    attention_mask: { dtype: "int64" as const, shape, data: new BigInt64Array(ids.length).fill(1n) },
    labels: { dtype: "int64" as const, shape, data: ids },
  };
  const peakBefore = await matmulGflops();
  const compileStart = performance.now();
  await engine.train([batch], 1e-4);
  const firstStepMs = performance.now() - compileStart;
  await engine.train([batch], 1e-4);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    await engine.train([batch], 1e-4);
    times.push(performance.now() - start);
  }
  // The median step, so one slow step (another process, a page fault) does not move the figure.
  const msPerStep = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  await engine.release();

  const flops = stepFlops(model.config.vocabSize);
  const achieved = flops / (msPerStep / 1000) / 1e9;
  // Measured before and after the steps, best kept: the VM's speed drifts with its host's load.
  const peak = Math.max(peakBefore, await matmulGflops());
  const torch = device === "cpu" && process.env.TUNELAB_BENCH_TORCH !== "0" ? torchStep(dir) : null;
  const torchMs = torch?.ms ?? null;
  const tokensPerSec = (R.batch * R.seq) / (msPerStep / 1000);
  const result = {
    bench: "lora_step",
    device,
    config: R,
    ms_per_step: +msPerStep.toFixed(1),
    first_step_ms: +firstStepMs.toFixed(0),
    tokens_per_s: Math.round(tokensPerSec),
    step_gflop: +(flops / 1e9).toFixed(2),
    achieved_gflops: +achieved.toFixed(2),
    matmul_gflops: +peak.toFixed(2),
    step_efficiency: +(achieved / peak).toFixed(3),
    torch_eager_ms_per_step: torchMs === null ? null : +torchMs.toFixed(1),
    torch_matmul_gflops: torch ? +torch.matmulGflops.toFixed(2) : null,
    torch_blas: torch?.blas ?? null,
    speedup_vs_torch: torchMs === null ? null : +(torchMs / msPerStep).toFixed(2),
  };
  console.log(
    `reference LoRA step on ${device}: ${result.ms_per_step} ms/step, ${result.tokens_per_s} tokens/s (first step incl. compile ${result.first_step_ms} ms)`,
  );
  console.log(
    `achieved ${result.achieved_gflops} GFLOP/s of ${result.step_gflop} GFLOP/step (median of ${steps} steps); plain 1024^3 MatMul ${result.matmul_gflops} GFLOP/s (best of 20 runs before and after); step efficiency ${result.step_efficiency}`,
  );
  if (torch) {
    console.log(`PyTorch eager, same model and machine: ${result.torch_eager_ms_per_step} ms/step; tunelab is ${result.speedup_vs_torch}x faster`);
    // Debian's torch reports BLAS_INFO=generic whichever BLAS the alternatives system gives it: judge by its matmul rate.
    const slowBlas = torch.matmulGflops < result.matmul_gflops / 2;
    console.log(
      `  (this PyTorch's BLAS reports "${torch.blas}" and its 1024^3 matmul runs at ${result.torch_matmul_gflops} GFLOP/s` +
        (slowBlas ? ", so part of the gap is its BLAS, not eager execution; install libopenblas0-pthread)" : ")"),
    );
  }
  console.log(JSON.stringify(result));
}

// With --preset or --model: the real-size comparison with PyTorch (bench/real-size.ts) instead of the reference step.
(process.argv.length > 2 ? realSizeBench(process.argv.slice(2)) : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
