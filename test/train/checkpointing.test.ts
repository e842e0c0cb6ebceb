/** gradient_checkpointing: recomputing each layer in the backward pass gives the same gradients with fewer live bytes. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { loraModules, loraTrainables, makeLoraConfig } from "../../sdk/models/lora";
import { openModel } from "../../sdk/models/model";
import { causalLMForward } from "../../sdk/models/tasks";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import type { HostTensor } from "../../sdk/runtime/session";
import { peakActivationBytes } from "../../sdk/train/estimate";
import { compileGradStep, names } from "../../sdk/train/step";
import { Rng } from "../../sdk/util/random";

test("LoRA gradients with gradient checkpointing equal those of the stored-activation graph; fewer bytes are live", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-ckpt-"));
  try {
    createTinyModel({ arch: "qwen2", out: dir, seed: 5, numLayers: 3, initStd: 0.2 });
    const model = openModel(dir);
    const modules = loraModules(model.config, makeLoraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear", loraDropout: 0.1 }));
    const rng = new Rng(2);
    // Non-zero B so that both A and B get gradients; dropout on, so the recomputed masks must repeat the forward's.
    const trainable = loraTrainables(modules, 1).map((t) => ({
      ...t,
      init: t.name.endsWith("lora_B") ? Float32Array.from(t.init, () => rng.normal() * 0.1) : t.init,
    }));
    const graphs = [false, true].map((gradientCheckpointing) =>
      compileGradStep(causalLMForward({ config: model.config, weights: model.weights, lora: modules, loraDropout: 0.1, gradientCheckpointing }), trainable),
    );
    assert.equal(graphs[0].recompute.length, 0);
    assert.equal(graphs[1].recompute.length, model.config.numHiddenLayers, "one region per decoder layer");
    const withoutDropout = [false, true].map((gradientCheckpointing) =>
      compileGradStep(causalLMForward({ config: model.config, weights: model.weights, lora: modules, loraDropout: 0, gradientCheckpointing }), trainable),
    );
    const [stored, recomputed] = withoutDropout.map((g) => peakActivationBytes(g, { batch: 2, seq: 256 }));
    assert.ok(recomputed < 0.75 * stored, `peak live bytes ${stored} -> ${recomputed}`);

    const seq = 12;
    const ids = Array.from({ length: 2 * seq }, () => BigInt(3 + rng.int(200)));
    const batch: Record<string, HostTensor> = {
      input_ids: { dtype: "int64", shape: [2, seq], data: BigInt64Array.from(ids) },
      attention_mask: { dtype: "int64", shape: [2, seq], data: BigInt64Array.from(ids, (_, i) => (i === 2 * seq - 1 ? 0n : 1n)) },
      labels: { dtype: "int64", shape: [2, seq], data: BigInt64Array.from(ids) },
      dropout_seed: { dtype: "int64", shape: [], data: BigInt64Array.of(7n) },
    };
    for (const t of trainable) batch[names.param(t.name)] = { dtype: "float32", shape: t.shape, data: t.init };
    const outs = [];
    for (const graph of graphs) {
      const session = await sessionForGraph(graph);
      outs.push(await session.run(batch));
      await session.release();
    }
    assert.equal(outs[1][names.lossSum].data[0], outs[0][names.lossSum].data[0]);
    for (const t of trainable) {
      const [a, b] = outs.map((o) => o[names.grad(t.name)].data as Float32Array);
      const scale = Math.max(...a.map(Math.abs));
      assert.ok(scale > 0, `${t.name} has a gradient`);
      const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
      assert.ok(diff <= 1e-6 * scale, `${t.name}: max difference ${diff} (scale ${scale})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
