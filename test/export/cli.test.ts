/**
 * `tunelab export`: each format from the command line (peft round-trips the adapter, merged writes W + s·BA),
 * --json output, and bad input (missing or unknown options, options of another format, a non-empty --out) refused
 * with a message naming what is wrong.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../sdk/cli/main";
import { MergedWeights } from "../../sdk/export/merged-weights";
import { loadAdapter, saveAdapter } from "../../sdk/models/lora";
import { openModel } from "../../sdk/models/model";
import { randomAdapter, tempDir, tinyModel } from "./helpers";

/** Runs `tunelab ARGS` in-process: exit code (1 for a thrown error, as the bin does), and what it printed. */
async function tunelab(args: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await main(args), text: lines.join("\n") };
  } catch (err) {
    return { code: 1, text: [...lines, (err as Error).message].join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const model = tinyModel("llama");
const adapter = randomAdapter(model);
const adapterDir = tempDir();
saveAdapter(adapterDir, adapter);

test("tunelab export --format peft writes the adapter back as PEFT files that load unchanged", async () => {
  const out = path.join(tempDir(), "peft");
  const r = await tunelab(["export", "--model", model.dir, "--adapter", adapterDir, "--format", "peft", "--out", out]);
  assert.equal(r.code, 0, r.text);
  assert.deepEqual(fs.readdirSync(out).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  const back = loadAdapter(out);
  for (const [p, w] of Object.entries(adapter.lora)) {
    assert.deepEqual(back.lora[p].A, w.A);
    assert.deepEqual(back.lora[p].B, w.B);
  }
});

test("tunelab export --format merged --json: a HF folder whose adapted weights are W + scaling * B @ A", async () => {
  const out = path.join(tempDir(), "merged");
  const r = await tunelab(["export", "--model", model.dir, "--adapter", adapterDir, "--format", "merged", "--out", out, "--json"]);
  assert.equal(r.code, 0, r.text);
  const result = JSON.parse(r.text) as { format: string; dir: string; files: string[]; bytes: number };
  assert.equal(result.format, "merged");
  assert.ok(result.files.includes("model.safetensors") && result.files.includes("tokenizer.json"), `${result.files}`);
  const merged = openModel(out);
  const name = "model.layers.1.mlp.down_proj.weight";
  const expected = new MergedWeights(model, adapter).get(name).data;
  const base = model.weights.get(name).data;
  assert.deepEqual(merged.weights.get(name).data, expected);
  assert.notDeepEqual(expected, base);
});

test("tunelab export --format pytorch and gguf write their files and say where", async () => {
  const pt = path.join(tempDir(), "pt");
  const a = await tunelab(["export", "--model", model.dir, "--format", "pytorch", "--dtype", "bfloat16", "--out", pt]);
  assert.equal(a.code, 0, a.text);
  assert.match(a.text, /wrote pytorch to .*pytorch_model\.bin/);
  const gg = path.join(tempDir(), "gguf");
  const b = await tunelab(["export", "--model", model.dir, "--adapter", adapterDir, "--format", "gguf", "--outtype", "q8_0", "--out", gg]);
  assert.equal(b.code, 0, b.text);
  assert.deepEqual(fs.readdirSync(gg).sort(), ["Modelfile", "model-q8_0.gguf"]);
});

test("tunelab export refuses bad input with a message naming it", async () => {
  const out = path.join(tempDir(), "x");
  const cases: [string[], RegExp, number][] = [
    [["export", "--model", model.dir, "--out", out], /usage: tunelab export/, 2],
    [
      ["export", "--model", model.dir, "--format", "tflite", "--out", out],
      /--format must be one of peft, merged, onnx, quantized, pytorch, gguf, got "tflite"/,
      1,
    ],
    [["export", "--model", model.dir, "--format", "onnx", "--outtype", "q4_0", "--out", out], /outtype applies to --format gguf, not onnx/, 1],
    [
      ["export", "--model", model.dir, "--format", "gguf", "--outtype", "q3_k", "--out", out],
      /outtype must be one of f32, f16, q8_0, q4_0, q4_k_m, got "q3_k"/,
      1,
    ],
    [["export", "--model", model.dir, "--format", "onnx", "--opset", "seventeen", "--out", out], /--opset must be an integer/, 1],
    [["export", "--model", model.dir, "--format", "peft", "--out", out], /--format peft needs a PEFT adapter/, 1],
    [["export", "--model", model.dir, "--format", "onnx", "--out", out, "--quantize"], /unknown option --quantize/, 1],
    [["export", "--model", path.join(model.dir, "nope"), "--format", "onnx", "--out", out], /does not exist/, 1],
  ];
  for (const [args, message, code] of cases) {
    const r = await tunelab(args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.text}`);
    assert.match(r.text, message, args.join(" "));
  }
  // A non-empty --out is left alone unless --overwrite.
  const busy = tempDir();
  fs.writeFileSync(path.join(busy, "notes.txt"), "mine");
  const r = await tunelab(["export", "--model", model.dir, "--format", "pytorch", "--out", busy]);
  assert.equal(r.code, 1);
  assert.match(r.text, /already exists and is not empty; choose another folder, or pass --overwrite/);
  assert.equal(fs.readFileSync(path.join(busy, "notes.txt"), "utf8"), "mine");
  assert.equal((await tunelab(["export", "--model", model.dir, "--format", "pytorch", "--out", busy, "--overwrite"])).code, 0);
  assert.ok(!fs.existsSync(path.join(busy, "notes.txt")));
});
