import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { resolveRecipe } from "../../sdk/train/recipe";
import { train } from "../../sdk/train/trainer";

const root = path.join(__dirname, "../../..");
const tmp = mkdtempSync(path.join(tmpdir(), "tunelab-fp16-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const modelDir = path.join(tmp, "model");
createTinyModel({ arch: "llama", out: modelDir, seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, initStd: 0.2 });

let runs = 0;

async function losses(device: "cpu" | "webgpu", fp16: boolean, steps: number, bf16 = false): Promise<number[]> {
  const outputDir = path.join(tmp, `${device}-${fp16}-${++runs}`);
  const recipe = resolveRecipe({
    model_name_or_path: modelDir,
    dataset_path: path.join(root, "data/arithmetic.txt"),
    output_dir: outputDir,
    stage: "pt",
    learning_rate: 1e-2,
    warmup_steps: 0,
    max_steps: steps,
    per_device_train_batch_size: 8,
    save_steps: 0,
    lora_rank: 8,
    device,
    fp16,
    bf16,
  });
  lastLog = () => readFileSync(path.join(outputDir, "train.log"), "utf8");
  return (await train(recipe)).history.map((h) => h.loss);
}
let lastLog = () => "";

test("fp16 compute with float32 master tensors and loss scaling follows the float32 run (cpu)", async () => {
  const full = await losses("cpu", false, 10);
  const half = await losses("cpu", true, 10);
  full.forEach((l, i) => assert.ok(Math.abs(half[i] - l) < 5e-3 * l, `step ${i + 1}: fp16 ${half[i]} vs fp32 ${l}`));
  assert.ok(half.at(-1)! < half[0], "fp16 loss did not fall");
});

const hasVulkan = existsSync("/usr/share/vulkan/icd.d") && readdirSync("/usr/share/vulkan/icd.d").length > 0;

test("fp16 training on webgpu agrees with float32 on cpu", { skip: hasVulkan ? false : "no Vulkan driver installed" }, async () => {
  const full = await losses("cpu", false, 4);
  const gpu = await losses("webgpu", true, 4);
  full.forEach((l, i) => assert.ok(Math.abs(gpu[i] - l) < 1e-2 * l, `step ${i + 1}: webgpu fp16 ${gpu[i]} vs cpu fp32 ${l}`));
});

test("the one-block transformer's float32 training steps on webgpu agree with cpu", { skip: hasVulkan ? false : "no Vulkan driver installed" }, async () => {
  const cpu = await losses("cpu", false, 4);
  const gpu = await losses("webgpu", false, 4);
  cpu.forEach((l, i) => assert.ok(Math.abs(gpu[i] - l) < 1e-4 * l, `step ${i + 1}: webgpu ${gpu[i]} vs cpu ${l}`));
});

test("bf16 says once that it trains in float32 and gives the float32 run's losses; bf16 with fp16 is refused", async () => {
  const full = await losses("cpu", false, 3);
  const bf16 = await losses("cpu", false, 3, true);
  assert.deepEqual(bf16, full);
  assert.equal(lastLog().match(/bf16: onnxruntime has no bfloat16 matrix kernels .* trains in float32/g)?.length, 1);
  assert.throws(
    () => resolveRecipe({ model_name_or_path: modelDir, dataset_path: "x.txt", output_dir: tmp, fp16: true, bf16: true }),
    /bf16 must be false when fp16 is true/,
  );
});

test(
  "webgpu trains LoRA on every linear of a two-layer model (28 trainable tensors) as the cpu does",
  { skip: hasVulkan ? false : "no Vulkan driver installed" },
  async () => {
    // One Split per update with more outputs than a shader's storage buffers failed on webgpu; the update now splits in a tree.
    const deep = path.join(tmp, "two-layers");
    createTinyModel({ arch: "qwen2", out: deep, seed: 2, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.2 });
    const run = async (device: "cpu" | "webgpu") => {
      const recipe = resolveRecipe({
        model_name_or_path: deep,
        dataset_path: path.join(root, "data/arithmetic.txt"),
        output_dir: path.join(tmp, `all-linear-${device}`),
        stage: "pt",
        learning_rate: 1e-2,
        warmup_steps: 0,
        max_steps: 3,
        per_device_train_batch_size: 8,
        save_steps: 0,
        lora_rank: 4,
        lora_target: "all",
        device,
      });
      return (await train(recipe)).history.map((h) => h.loss);
    };
    const cpu = await run("cpu");
    const gpu = await run("webgpu");
    cpu.forEach((l, i) => assert.ok(Math.abs(gpu[i] - l) < 1e-4 * l, `step ${i + 1}: webgpu ${gpu[i]} vs cpu ${l}`));
  },
);

test("fp16 overflow lowers the loss scale and retries the step instead of stopping", async () => {
  // Weights of std 1 give float16 gradients that overflow at the initial scale of 65536.
  const big = path.join(tmp, "big-weights");
  createTinyModel({ arch: "llama", out: big, seed: 1, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, initStd: 1 });
  const out = path.join(tmp, "overflow");
  const result = await train(
    resolveRecipe({
      model_name_or_path: big,
      dataset_path: path.join(root, "data/arithmetic.txt"),
      output_dir: out,
      stage: "pt",
      learning_rate: 1e-3,
      warmup_steps: 0,
      max_steps: 4,
      per_device_train_batch_size: 8,
      save_steps: 0,
      lora_rank: 8,
      fp16: true,
    }),
  );
  assert.equal(result.stoppedBy, "max_steps");
  assert.deepEqual(
    result.history.map((h) => h.step),
    [1, 2, 3, 4],
  );
  assert.ok(result.history.every((h) => Number.isFinite(h.loss)));
  const log = readFileSync(path.join(out, "train.log"), "utf8");
  assert.match(log, /float16 gradients overflowed at step 1; loss scale lowered to 32768/);
  assert.equal(log.match(/fp16 on the cpu device: .* no float16 matrix kernels/g)?.length, 1, "the CPU's lack of float16 kernels is said once");
  const state = JSON.parse(readFileSync(path.join(out, "checkpoint-4", "trainer_state.json"), "utf8"));
  assert.ok(state.lossScale < 65536 && state.lossScale >= 1, `loss scale ${state.lossScale}`);
});
