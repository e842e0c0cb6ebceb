/**
 * PyTorch export checked by Debian's python3-torch: torch.load(weights_only=True) reads the state_dict, and
 * Hugging Face's Llama/Qwen2 forward (test/models/reference.py) on those weights gives tunelab's logits.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { exportModel } from "../../sdk/export/export";
import { expectedWeights } from "../../sdk/io/config";
import { writeTorchStateDict } from "../../sdk/export/pytorch";
import { PYTHON, pythonHas } from "../util/python";
import { randomAdapter, tempDir, tinyModel, tunelabLastLogits } from "./helpers";

const hasTorch = pythonHas("torch");
const script = path.join(__dirname, "../../../test/export/torch_logits.py");
const skip = hasTorch ? false : "python3-torch is not installed";

interface TorchView {
  type: string;
  keys: string[];
  dtypes: string[];
  logits: number[][];
}

function torchLogits(dir: string, inputIds: number[][]): TorchView {
  return JSON.parse(execFileSync(PYTHON, [script], { input: JSON.stringify({ dir, input_ids: inputIds }), encoding: "utf8" })) as TorchView;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const rows = [
  [72, 101, 108, 108, 111, 32, 116, 104, 101, 114, 101],
  [84, 117, 110, 101, 32, 109, 101, 32, 117, 112, 33],
];

for (const c of [
  { arch: "llama" as const, tied: false, lora: true, dtype: "float32" as const, tol: 2e-4 },
  { arch: "qwen2" as const, tied: true, lora: false, dtype: "float32" as const, tol: 2e-4 },
  { arch: "llama" as const, tied: false, lora: true, dtype: "float16" as const, tol: 0.05 },
]) {
  test(
    `pytorch ${c.arch} ${c.dtype}${c.lora ? " with a LoRA merged" : ""}: torch.load(weights_only=True) reads it and the HF forward gives tunelab's logits`,
    { skip },
    async () => {
      const model = tinyModel(c.arch, { tied: c.tied });
      const adapter = c.lora ? randomAdapter(model) : null;
      const out = path.join(tempDir(), "pt");
      const result = await exportModel(model, adapter, out, { format: "pytorch", dtype: c.dtype });
      assert.ok(
        result.files.includes("pytorch_model.bin") && result.files.includes("config.json") && result.files.includes("tokenizer.json"),
        `${result.files}`,
      );
      const view = torchLogits(out, rows);
      assert.equal(view.type, "OrderedDict");
      assert.deepEqual(view.keys, [...expectedWeights(model.config).keys()]);
      assert.deepEqual(view.dtypes, [`torch.${c.dtype}`]);
      const ours = await tunelabLastLogits(model, adapter, rows);
      for (let r = 0; r < rows.length; r++) {
        const d = maxAbsDiff(view.logits[r], ours[r]);
        assert.ok(d < c.tol, `row ${r}: logits differ by ${d} (tolerance ${c.tol})`);
        console.log(`${c.arch} ${c.dtype} row ${r}: max logit difference ${d.toExponential(2)}`);
      }
      if (adapter) {
        const base = await tunelabLastLogits(model, null, rows);
        const effect = maxAbsDiff(base[0], ours[0]);
        assert.ok(effect > 10 * c.tol, `the adapter changes the logits by ${effect}, well past the tolerance, so the comparison above checks the merge`);
      }
    },
  );
}

test("pytorch: zip64 records (forced on a small file) are read by torch.load too", { skip }, () => {
  const dir = tempDir();
  const file = path.join(dir, "pytorch_model.bin");
  const data = Float32Array.from({ length: 96 }, (_, i) => i / 7 - 3);
  writeTorchStateDict(
    file,
    ["a.weight", "b.bias"],
    (n) => (n === "a.weight" ? { shape: [8, 12], data } : { shape: [3], data: Float32Array.of(1.5, -2, 1e-3) }),
    "float32",
    true,
  );
  const code = [
    "import sys, json, torch, zipfile",
    "assert zipfile.ZipFile(sys.argv[1]).testzip() is None",
    "sd = torch.load(sys.argv[1], weights_only=True)",
    "print(json.dumps({k: [list(v.shape), v.flatten().tolist()] for k, v in sd.items()}))",
  ].join("\n");
  const got = JSON.parse(execFileSync(PYTHON, ["-c", code, file], { encoding: "utf8" })) as Record<string, [number[], number[]]>;
  assert.deepEqual(got["a.weight"][0], [8, 12]);
  assert.deepEqual(got["a.weight"][1], Array.from(data));
  assert.deepEqual(got["b.bias"], [[3], Array.from(Float32Array.of(1.5, -2, 1e-3))]);
});
