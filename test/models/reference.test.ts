import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { QUANTIZED_WEIGHT, type QuantConfig } from "../../sdk/io/quantize";
import { openWeights, toFloat32, writeSafetensors } from "../../sdk/io/safetensors";
import { dequantizedWeight } from "../../sdk/io/weight-cache";
import { openModel } from "../../sdk/models/model";
import { loraModules, loraNames, loraTrainables, makeLoraConfig } from "../../sdk/models/lora";
import { causalLMForward } from "../../sdk/models/tasks";
import { compileGradStep, names } from "../../sdk/train/step";
import type { HostTensor } from "../../sdk/runtime/session";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import { Rng } from "../../sdk/util/random";
import { PYTHON, pythonHas } from "../util/python";

const hasTorch = pythonHas("torch");
const script = path.join(__dirname, "../../../test/models/reference.py");

const batch = {
  inputIds: [
    [5, 72, 101, 108, 108, 111, 33, 9],
    [5, 84, 117, 110, 101, 0, 0, 0],
  ],
  attentionMask: [
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 0, 0, 0],
  ],
  labels: [
    [-100, -100, 101, 108, 108, 111, 33, 9],
    [-100, 84, 117, 110, 101, -100, -100, -100],
  ],
};
const int64 = (rows: number[][]) => ({ dtype: "int64" as const, shape: [rows.length, rows[0].length], data: BigInt64Array.from(rows.flat().map(BigInt)) });

// Llama 3.1-style rope scaling with a short original context, so all three frequency bands occur at head_dim 8 with rope_theta 10000 (wavelengths 6, 63, 628, 6283 against bands 16 and 64).
const llama3Rope = { rope_type: "llama3" as const, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };

/** QLoRA: the 4-bit model against PyTorch running the float32 model whose linears are the dequantised values. */
const nf4: QuantConfig = { type: "nf4", blockSize: 32, doubleQuant: true };

for (const [arch, ropeScaling, quant] of [
  ["llama", null, null],
  ["qwen2", null, null],
  ["llama", llama3Rope, null],
  ["qwen2", null, nf4],
] as const) {
  const label = `${arch}${ropeScaling ? " with llama3 rope_scaling" : ""}${quant ? " on an NF4 base (PyTorch on the dequantised weights)" : ""}`;
  test(`${label}: loss and LoRA gradients match an independent PyTorch implementation`, { skip: hasTorch ? false : "python3-torch is not installed" }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), `tunelab-ref-${arch}-`));
    createTinyModel({ arch, out: dir, seed: 11, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, tieWordEmbeddings: arch === "qwen2", initStd: 0.2, ropeScaling });
    const model = openModel(dir);
    const lora = makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear" });
    const modules = loraModules(model.config, lora);
    // B starts at zero in PEFT; give it random values so both A and B gradients are non-trivial.
    const rng = new Rng(5);
    const trainable = loraTrainables(modules, 3).map((t) => ({ ...t, init: t.name.endsWith("lora_B") ? Float32Array.from(t.init, () => rng.normal() * 0.1) : t.init }));

    const weights = model.weights.quantized(quant);
    const reference = quant ? dequantizedCopy(dir, weights.weightFile()) : dir;
    const session = await sessionForGraph(compileGradStep(causalLMForward({ config: model.config, weights, lora: modules, loraDropout: 0 }), trainable));
    const feeds: Record<string, HostTensor> = { input_ids: int64(batch.inputIds), attention_mask: int64(batch.attentionMask), labels: int64(batch.labels) };
    for (const t of trainable) feeds[names.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
    const out = await session.run(feeds);
    await session.release();
    const count = Number(out[names.count].data[0]);
    const loss = Number(out[names.lossSum].data[0]) / count;

    const spec = {
      model: reference,
      scaling: modules[0].scaling,
      lora: Object.fromEntries(trainable.map((t) => [t.name, chunk(Array.from(t.init), t.shape[1])])),
      input_ids: batch.inputIds,
      attention_mask: batch.attentionMask,
      labels: batch.labels,
    };
    const ref = JSON.parse(execFileSync(PYTHON, [script], { input: JSON.stringify(spec), encoding: "utf8" }));
    assert.ok(Math.abs(loss - ref.loss) < 1e-5 * Math.abs(ref.loss), `loss ${loss} vs reference ${ref.loss}`);
    assert.equal(count, 10); // labels[:, 1:] that are not -100: 6 + 4
    let worst = 0;
    for (const m of modules) {
      for (const name of [loraNames(m.path).A, loraNames(m.path).B]) {
        const got = out[names.grad(name)].data as Float32Array;
        const want: number[] = ref.grads[name];
        const scale = Math.max(...want.map(Math.abs));
        assert.ok(scale > 0, `${name}: reference gradient is all zero`);
        for (let i = 0; i < want.length; i++) {
          const err = Math.abs(got[i] / count - want[i]) / scale;
          worst = Math.max(worst, err);
          assert.ok(err < 2e-4, `${name}[${i}]: ${got[i] / count} vs reference ${want[i]}`);
        }
      }
    }
    assert.ok(existsSync(dir));
    console.log(`${label}: loss ${loss.toFixed(6)} (ref ${ref.loss.toFixed(6)}), worst relative gradient error ${worst.toExponential(2)}`);
  });
}

/** A copy of the model folder whose quantised linears hold their dequantised float32 values. */
function dequantizedCopy(dir: string, file: ReturnType<ReturnType<typeof openModel>["weights"]["weightFile"]>): string {
  const out = mkdtempSync(path.join(tmpdir(), "tunelab-ref-dequantized-"));
  const source = openWeights(dir);
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const name of source.names()) {
    const t = source.read(name);
    tensors[name] = { dtype: "F32", shape: t.shape, data: QUANTIZED_WEIGHT.test(name) ? dequantizedWeight(file, name) : Float32Array.from(toFloat32(t)) };
  }
  writeSafetensors(path.join(out, "model.safetensors"), tensors);
  copyFileSync(path.join(dir, "config.json"), path.join(out, "config.json"));
  return out;
}

function chunk(values: number[], cols: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < values.length; i += cols) rows.push(values.slice(i, i + cols));
  return rows;
}
