/**
 * Child process of bench/real-size.ts: tunelab's side of the side-by-side benchmark, in a process of its own so that
 * its peak RSS is its own. The LoRA job `tunelab train` runs (rank r on every linear, AdamW, clipping at 1.0, batch
 * x seq random tokens), then greedy generation with the KV cache. Prints one JSON line.
 */
import * as fs from "node:fs";
import { Generator } from "../sdk/infer/generate";
import { loraModules, loraTrainables, makeLoraConfig } from "../sdk/models/lora";
import { openModel } from "../sdk/models/model";
import { causalLMForward } from "../sdk/models/tasks";
import type { HostTensor } from "../sdk/runtime/session";
import { StepEngine } from "../sdk/train/engine";
import { Rng } from "../sdk/util/random";

/** What the parent asks for. */
export interface WorkerJob {
  dir: string;
  seq: number;
  batch: number;
  rank: number;
  steps: number;
  genPrompt: number;
  genTokens: number;
}

/** Peak resident set size of this process so far, in MiB. */
function peakRssMb(): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]) / 1024;
}

async function main(job: WorkerJob): Promise<void> {
  const model = openModel(job.dir);
  const modules = loraModules(model.config, makeLoraConfig({ r: job.rank, loraAlpha: 2 * job.rank, targetModules: "all-linear" }));
  const trainable = loraTrainables(modules, 0);
  const engine = StepEngine.create({
    forward: causalLMForward({ config: model.config, weights: model.weights, lora: modules, loraDropout: 0 }),
    trainable,
    optimizer: { name: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
    maxGradNorm: 1,
  });
  const loadS = process.uptime();
  const rng = new Rng(0);
  const vocab = Math.min(model.config.vocabSize, 32000);
  const ids = BigInt64Array.from({ length: job.batch * job.seq }, () => BigInt(3 + rng.int(vocab - 3)));
  const shape = [job.batch, job.seq];
  const batch: Record<string, HostTensor> = {
    input_ids: { dtype: "int64", shape, data: ids },
    attention_mask: { dtype: "int64", shape, data: new BigInt64Array(ids.length).fill(1n) },
    labels: { dtype: "int64", shape, data: ids },
  };
  const losses: number[] = [];
  const stepMs: number[] = [];
  let firstStepEndS = 0;
  for (let step = 0; step < job.steps; step++) {
    const start = performance.now();
    losses.push((await engine.train([batch], 1e-4)).loss);
    stepMs.push(performance.now() - start);
    if (step === 0) firstStepEndS = process.uptime();
  }
  const peakTrain = peakRssMb();
  const timed = stepMs.slice(1);
  const msPerStep = timed.reduce((a, b) => a + b, 0) / timed.length;
  await engine.release();

  const generator = new Generator(model, { lora: { modules, tensors: engine.values() } });
  const prompt = Array.from({ length: job.genPrompt }, () => 3 + rng.int(vocab - 3));
  let firstToken = 0;
  const start = performance.now();
  const out = await generator.generate(prompt, {
    maxNewTokens: job.genTokens,
    eosTokenIds: [],
    onToken: () => (firstToken ||= performance.now()),
  });
  const end = performance.now();
  const generated = Array.isArray(out) ? out[0].tokens.length : out.tokens.length;
  await generator.release();
  process.stdout.write(
    JSON.stringify({
      load_s: loadS,
      first_step_end_s: firstStepEndS,
      ms_per_step: msPerStep,
      tokens_per_s: (job.batch * job.seq) / (msPerStep / 1000),
      peak_rss_mb: peakTrain,
      peak_rss_mb_total: peakRssMb(),
      prefill_s: (firstToken - start) / 1000,
      gen_tokens_per_s: (generated - 1) / ((end - firstToken) / 1000),
      losses,
    }) + "\n",
  );
}

void main(JSON.parse(process.argv[2]) as WorkerJob);
