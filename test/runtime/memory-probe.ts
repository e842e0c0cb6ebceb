/**
 * Child process of shared-weights.test.ts: opens a model's train, eval and generation sessions one after another,
 * runs each once, and prints the proportional set size (PSS: shared pages counted once) after each as JSON.
 */
import * as fs from "node:fs";
import { loraModules, loraTrainables, makeLoraConfig } from "../../sdk/models/lora";
import { openModel } from "../../sdk/models/model";
import { causalLMForward } from "../../sdk/models/tasks";
import { ForwardPass } from "../../sdk/infer/forward-pass";
import { Generator } from "../../sdk/infer/generate";
import { StepEngine } from "../../sdk/train/engine";
import type { HostTensor } from "../../sdk/runtime/session";

/** PSS of this process in bytes. */
function pss(): number {
  return Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/self/smaps_rollup", "utf8"))![1]) * 1024;
}

async function main(dir: string): Promise<void> {
  const model = openModel(dir);
  const modules = loraModules(model.config, makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear" }));
  const trainable = loraTrainables(modules, 0);
  const ctx = { config: model.config, weights: model.weights, lora: modules, loraDropout: 0 };
  const engine = StepEngine.create({
    forward: causalLMForward(ctx),
    trainable,
    optimizer: { name: "adamw", beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
    maxGradNorm: 1,
  });
  const seq = 16;
  const ids: HostTensor = { dtype: "int64", shape: [1, seq], data: BigInt64Array.from({ length: seq }, (_, i) => BigInt(3 + i)) };
  const batch = { input_ids: ids, attention_mask: { dtype: "int64", shape: [1, seq], data: new BigInt64Array(seq).fill(1n) } as HostTensor, labels: ids };
  const marks: Record<string, number> = { opened: pss() };
  await engine.train([batch], 1e-3);
  marks.train = pss();
  await new ForwardPass(causalLMForward(ctx), trainable).run(batch, engine.values());
  marks.eval = pss();
  const generator = new Generator(model);
  await generator.generate([3, 4, 5], { maxNewTokens: 4 });
  marks.generation = pss();
  process.stdout.write(JSON.stringify(marks) + "\n");
}

void main(process.argv[2]);
