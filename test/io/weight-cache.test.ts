/** The weight file graphs memory-map: exact values, aligned slices, reuse, a new entry for a rewritten checkpoint. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openWeights, toFloat32 } from "../../sdk/io/safetensors";
import { createTinyModel } from "../../sdk/io/tiny";
import { weightFile } from "../../sdk/io/weight-cache";
import { float32ToF16Bits } from "../../sdk/util/float16";

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

test("float32 and float16 weight files hold every tensor exactly, 4 KiB aligned, and are reused", () => {
  const dir = tmp("tunelab-wc-model-");
  const cache = tmp("tunelab-wc-cache-");
  try {
    createTinyModel({ arch: "qwen2", out: dir, seed: 3, dtype: "bfloat16" });
    const source = openWeights(dir);
    for (const dtype of ["float32", "float16"] as const) {
      const file = weightFile(source, dtype, cache);
      const bytes = fs.readFileSync(file.file);
      assert.deepEqual([...file.tensors.keys()].sort(), source.names().sort());
      for (const name of source.names()) {
        const slice = file.tensors.get(name)!;
        assert.equal(slice.offset % 4096, 0, `${name} offset`);
        const want = dtype === "float32" ? toFloat32(source.read(name)) : float32ToF16Bits(toFloat32(source.read(name)));
        const got = new Uint8Array(bytes.buffer, bytes.byteOffset + slice.offset, slice.length);
        assert.deepEqual(got, new Uint8Array(want.buffer, want.byteOffset, want.byteLength), `${dtype} ${name}`);
      }
      const again = weightFile(source, dtype, cache);
      assert.equal(again.file, file.file);
    }
    assert.equal(fs.readdirSync(path.join(cache, "weights")).length, 2, "one entry per dtype");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

test("a rewritten checkpoint gets a new entry, and entries of deleted checkpoints are removed", () => {
  const dir = tmp("tunelab-wc-model-");
  const other = tmp("tunelab-wc-other-");
  const cache = tmp("tunelab-wc-cache-");
  try {
    createTinyModel({ arch: "llama", out: dir, seed: 1 });
    const first = weightFile(openWeights(dir), "float32", cache);
    createTinyModel({ arch: "llama", out: dir, seed: 2 }); // same names and sizes, other values
    const second = weightFile(openWeights(dir), "float32", cache);
    assert.notEqual(second.file, first.file);
    const name = "model.embed_tokens.weight";
    const slice = second.tensors.get(name)!;
    const data = fs.readFileSync(second.file).subarray(slice.offset, slice.offset + slice.length);
    const want = toFloat32(openWeights(dir).read(name));
    assert.deepEqual(new Uint8Array(data), new Uint8Array(want.buffer, want.byteOffset, want.byteLength));
    fs.rmSync(dir, { recursive: true, force: true });
    createTinyModel({ arch: "llama", out: other, seed: 4 });
    weightFile(openWeights(other), "float32", cache);
    assert.equal(fs.readdirSync(path.join(cache, "weights")).length, 1, "only the entry of the checkpoint that exists");
  } finally {
    for (const d of [dir, other, cache]) fs.rmSync(d, { recursive: true, force: true });
  }
});
