/**
 * Cross-check against an independent implementation: Debian's python3 with numpy and torch parses the
 * files we write (header by hand, values through numpy float16 and torch bfloat16 conversions), and
 * writes a file by hand that we read. Skipped where that python is not installed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SafetensorsFile, toFloat32, writeSafetensors } from "../../sdk/io/safetensors";
import { Rng } from "../../sdk/util/random";
import { tempDir } from "./tmp";

const PYTHON = "/usr/bin/python3";

function pythonWithTorch(): boolean {
  if (!fs.existsSync(PYTHON)) return false;
  // find_spec does not import torch (slow); the read script below does, once.
  const r = spawnSync(PYTHON, ["-c", "import importlib.util as u, sys; sys.exit(0 if u.find_spec('numpy') and u.find_spec('torch') else 1)"], {
    encoding: "utf8",
  });
  return r.status === 0;
}

const available = pythonWithTorch();

function runPython(script: string, args: string[]): string {
  const r = spawnSync(PYTHON, ["-c", script, ...args], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const READ_SCRIPT = `
import json, struct, sys
import numpy as np, torch
path = sys.argv[1]
raw = open(path, "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n].decode("utf-8"))
data = raw[8 + n:]
np_types = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "F16": np.float16, "BF16": np.uint16}
out = {"meta": header.pop("__metadata__", {}), "tensors": {}}
for name, e in header.items():
    b, end = e["data_offsets"]
    arr = np.frombuffer(data[b:end], dtype=np_types[e["dtype"]]).reshape(e["shape"])
    out["tensors"][name] = {"dtype": e["dtype"], "shape": list(arr.shape), "bits": arr.view(np.uint16).ravel().tolist() if e["dtype"] in ("F16", "BF16") else None}
src = np.frombuffer(data[header["src"]["data_offsets"][0]:header["src"]["data_offsets"][1]], dtype=np.float32)
out["numpy_f16_bits"] = src.astype(np.float16).view(np.uint16).tolist()
out["torch_bf16_bits"] = torch.from_numpy(src.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).tolist()
out["src"] = src.tolist()
print(json.dumps(out))
`;

const WRITE_SCRIPT = `
import json, struct, sys
import numpy as np
path = sys.argv[1]
a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
b = np.array([-1.5, 2.25, 65504.0], dtype=np.float16)
c = np.array([[1, -2], [3, 4]], dtype=np.int64)
parts, header, off = [], {"__metadata__": {"format": "pt"}}, 0
for name, arr, dt in (("a", a, "F32"), ("b", b, "F16"), ("c", c, "I64")):
    by = arr.tobytes()
    header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(by)]}
    parts.append(by)
    off += len(by)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(parts))
print(json.dumps({"a": a.ravel().tolist()}))
`;

test(
  "python (numpy + torch) reads what we write, and our float16/bfloat16 rounding matches theirs",
  { skip: !available && "needs /usr/bin/python3 with numpy and torch" },
  () => {
    const file = path.join(tempDir("tunelab-py-"), "x.safetensors");
    const rng = new Rng(3);
    // Values spread over many binades, including half-precision subnormals and overflow.
    const src = Float32Array.from({ length: 2000 }, () => (rng.next() - 0.5) * 2 ** (rng.int(40) - 26));
    src[0] = 65519.99;
    src[1] = 1 + 2 ** -11;
    src[2] = 2 ** -25;
    writeSafetensors(
      file,
      {
        src: { dtype: "F32", shape: [2000], data: src },
        h: { dtype: "F16", shape: [40, 50], data: src },
        b: { dtype: "BF16", shape: [2000], data: src },
        i: { dtype: "I64", shape: [2], data: BigInt64Array.from([-3n, 2n ** 40n]) },
      },
      { format: "pt" },
    );
    const out = JSON.parse(runPython(READ_SCRIPT, [file]));
    assert.deepEqual(out.meta, { format: "pt" });
    assert.deepEqual(out.tensors.h.shape, [40, 50]);
    assert.deepEqual(out.tensors.i.shape, [2]);
    assert.deepEqual(out.src, Array.from(src));
    assert.deepEqual(out.tensors.h.bits, out.numpy_f16_bits, "float16 bits equal numpy's astype(float16)");
    assert.deepEqual(out.tensors.b.bits, out.torch_bf16_bits, "bfloat16 bits equal torch's .to(bfloat16)");
  },
);

test("we read a file written by hand in python", { skip: !available && "needs /usr/bin/python3 with numpy and torch" }, () => {
  const file = path.join(tempDir("tunelab-py-"), "y.safetensors");
  const out = JSON.parse(runPython(WRITE_SCRIPT, [file]));
  const st = SafetensorsFile.open(file);
  assert.deepEqual(st.metadata, { format: "pt" });
  const a = st.read("a");
  assert.deepEqual(a.shape, [3, 4]);
  assert.deepEqual(
    Array.from(a.data as Float32Array),
    out.a.map((x: number) => Math.fround(x)),
  );
  assert.deepEqual(Array.from(toFloat32(st.read("b"))), [-1.5, 2.25, 65504]);
  assert.deepEqual(Array.from(st.read("c").data as BigInt64Array), [1n, -2n, 3n, 4n]);
  st.close();
});
