/**
 * Writes the smallest real preset (Qwen2.5-0.5B-Instruct, 988 MB of bf16) in a child process and checks the
 * folder against the published layout, reads it back with tunelab's loaders, and bounds the child's peak
 * memory far below the model's size (the writer streams). The folder is removed afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { expectedWeights, readModelConfig } from "../../sdk/io/config";
import { MODEL_MARKER } from "../../sdk/io/model-marker";
import { PRESETS } from "../../sdk/io/presets";
import { SafetensorsFile, toFloat32 } from "../../sdk/io/safetensors";
import { openModel } from "../../sdk/models/model";
import { tempDir } from "./tmp";

/** Peak RSS allowed for the writer: a quarter of the file it writes (measured: about 220 MiB). */
const PEAK_BOUND_MIB = 250;

test("qwen2.5-0.5b-instruct: streamed in a child process, as published, loadable, peak RSS far below its size", (t) => {
  const out = path.join(tempDir("tunelab-preset-"), "qwen");
  const presets = path.join(__dirname, "../../sdk/io/presets.js");
  const script =
    `const { createPresetModel } = require(${JSON.stringify(presets)});` +
    `const info = createPresetModel({ preset: "qwen2.5-0.5b-instruct", out: ${JSON.stringify(out)}, seed: 5 });` +
    `const hwm = /VmHWM:\\s+(\\d+) kB/.exec(require("node:fs").readFileSync("/proc/self/status", "utf8"))[1];` +
    `console.log(JSON.stringify({ totalSize: info.totalSize, files: info.files, parameters: info.parameters, hwmKb: Number(hwm) }));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const child = JSON.parse(r.stdout.trim().split("\n").pop()!);
  try {
    const size = fs.statSync(path.join(out, "model.safetensors")).size;
    t.diagnostic(`writer peak RSS ${(child.hwmKb / 1024).toFixed(0)} MiB for ${(size / 2 ** 20).toFixed(0)} MiB of weights`);
    assert.ok(child.hwmKb / 1024 < PEAK_BOUND_MIB, `writer peak RSS ${(child.hwmKb / 1024).toFixed(0)} MiB for a ${(size / 2 ** 20).toFixed(0)} MiB file`);

    // The published file set: one model.safetensors (no index), config, generation config, tokenizer.
    assert.deepEqual(
      fs.readdirSync(out).sort(),
      [MODEL_MARKER, "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].sort(),
    );
    assert.deepEqual(child.files, ["model.safetensors"]);
    assert.equal(child.parameters, 494_032_768); // Qwen2.5-0.5B's 0.49B parameters (tied embeddings)
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")), PRESETS["qwen2.5-0.5b-instruct"].config);

    const config = readModelConfig(out);
    const expected = expectedWeights(config);
    const file = SafetensorsFile.open(path.join(out, "model.safetensors"));
    try {
      assert.equal(file.metadata.format, "pt");
      assert.deepEqual(file.names().sort(), [...expected.keys()].sort());
      let total = 0;
      for (const [name, shape] of expected) {
        const t = file.info(name);
        assert.equal(t.dtype, "BF16", name);
        assert.deepEqual(t.shape, shape, name);
        total += t.byteLength;
      }
      assert.equal(total, child.totalSize);
      assert.equal(total, 988_065_536);
      // Linear weights: finite, mean ~0, std 0.02; norms exactly 1.
      const q = toFloat32(file.read("model.layers.23.self_attn.q_proj.weight"));
      let sum = 0;
      let sq = 0;
      for (const v of q) {
        assert.ok(Number.isFinite(v));
        sum += v;
        sq += v * v;
      }
      assert.ok(Math.abs(sum / q.length) < 1e-3);
      assert.ok(Math.abs(Math.sqrt(sq / q.length) - 0.02) < 1e-3);
      assert.ok(toFloat32(file.read("model.norm.weight")).every((v) => v === 1));
    } finally {
      file.close();
    }

    // tunelab's loader: config, lazily read weights, the real Qwen2.5 tokenizer and its chat template.
    const model = openModel(out);
    assert.equal(model.config.vocabSize, 151936);
    assert.equal(model.tokenizer.vocabSize, 151665);
    const ids = model.tokenizer.encodeChat([{ role: "user", content: "Hello" }], { addGenerationPrompt: true });
    assert.equal(ids[0], 151644); // <|im_start|>
    assert.equal(model.tokenizer.decode(ids).endsWith("<|im_start|>assistant\n"), true);
    assert.deepEqual(model.generationConfig?.eosTokenIds, [151645, 151643]);
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
});
