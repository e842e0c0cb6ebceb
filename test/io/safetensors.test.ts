import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  DTYPES,
  DTYPE_SIZE,
  SafetensorsFile,
  ShardedSafetensors,
  openWeights,
  toFloat32,
  toFloat64,
  writeModelWeights,
  writeSafetensors,
  type Dtype,
  type TensorInput,
} from "../../sdk/io/safetensors";
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from "../../sdk/util/float16";
import { Rng } from "../../sdk/util/random";
import { tempDir } from "./tmp";

function tmpdir(): string {
  return tempDir("tunelab-st-");
}

/** Writes a file with a hand-made header (object or raw text) and data area, bypassing our writer. */
function rawFile(file: string, header: unknown, data: Uint8Array, lengthOverride?: bigint): string {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const h = Buffer.from(text, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

/** Asserts that opening `file` throws an Error whose message names the file and matches `pattern`. */
function assertBad(file: string, pattern: RegExp): void {
  assert.throws(
    () => SafetensorsFile.open(file),
    (err: Error) => {
      assert.ok(err.message.includes(file), `message should name the file: ${err.message}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

/** A tensor of each dtype with values covering the type's range. */
function sampleTensors(): Record<string, TensorInput> {
  const rng = new Rng(7);
  const floats = Float32Array.from({ length: 24 }, () => (rng.next() - 0.5) * 100);
  return {
    f64: { dtype: "F64", shape: [2, 3], data: Float64Array.from([1e300, -2.5, Math.PI, 0, -0, 5e-324]) },
    f32: { dtype: "F32", shape: [4, 6], data: floats },
    f16: { dtype: "F16", shape: [2, 2], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001]) },
    bf16: { dtype: "BF16", shape: [3], data: Uint16Array.from([0x3f80, 0xc049, 0x0000]) },
    i64: { dtype: "I64", shape: [3], data: BigInt64Array.from([-(2n ** 62n), 0n, 2n ** 62n + 5n]) },
    i32: { dtype: "I32", shape: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
    i16: { dtype: "I16", shape: [2], data: Int16Array.from([-32768, 32767]) },
    i8: { dtype: "I8", shape: [3], data: Int8Array.from([-128, 0, 127]) },
    u8: { dtype: "U8", shape: [2, 1], data: Uint8Array.from([0, 255]) },
    bool: { dtype: "BOOL", shape: [4], data: Uint8Array.from([1, 0, 0, 1]) },
    scalar: { dtype: "F32", shape: [], data: Float32Array.from([42]) },
    empty: { dtype: "F32", shape: [0, 5], data: new Float32Array(0) },
  };
}

test("round trip of every dtype keeps dtype, shape and exact values", () => {
  const file = path.join(tmpdir(), "all.safetensors");
  const tensors = sampleTensors();
  writeSafetensors(file, tensors, { format: "pt", note: "hello" });
  const st = SafetensorsFile.open(file);
  try {
    assert.deepEqual(new Set(st.names()), new Set(Object.keys(tensors)));
    assert.deepEqual(st.metadata, { format: "pt", note: "hello" });
    for (const [name, t] of Object.entries(tensors)) {
      const r = st.read(name);
      assert.equal(r.dtype, t.dtype, name);
      assert.deepEqual(r.shape, [...t.shape], name);
      assert.equal(r.data.constructor.name, t.data.constructor.name, name);
      assert.deepEqual(Array.from(r.data as ArrayLike<number>), Array.from(t.data as unknown as ArrayLike<number>), name);
      // A fresh buffer per tensor: views are aligned and hold only this tensor's bytes.
      assert.equal(r.data.byteOffset, 0);
      assert.equal(r.data.buffer.byteLength, t.data.byteLength);
    }
  } finally {
    st.close();
  }
});

test("DTYPES covers the ten safetensors types with their sizes", () => {
  assert.deepEqual([...DTYPES].sort(), ["BF16", "BOOL", "F16", "F32", "F64", "I16", "I32", "I64", "I8", "U8"]);
  assert.deepEqual(
    DTYPES.map((d) => DTYPE_SIZE[d]),
    DTYPES.map((d) => ({ F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 })[d]),
  );
});

test("writer lays tensors out aligned to their element size and pads the header to 8 bytes", () => {
  const file = path.join(tmpdir(), "aligned.safetensors");
  writeSafetensors(file, sampleTensors());
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  for (const [name, e] of Object.entries(header) as [string, { dtype: Dtype; data_offsets: [number, number] }][]) {
    assert.equal((8 + n + e.data_offsets[0]) % DTYPE_SIZE[e.dtype], 0, `${name} is aligned`);
  }
  // No temporary files are left next to the output.
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ["aligned.safetensors"]);
});

test("float32 input is converted to F16/BF16/F64 on write and back with toFloat32/toFloat64", () => {
  const file = path.join(tmpdir(), "conv.safetensors");
  const values = Float32Array.from([1, -2, 0.5, 3.140625, 65504, -0.000061035156, 0]);
  writeSafetensors(file, {
    h: { dtype: "F16", shape: [7], data: values },
    b: { dtype: "BF16", shape: [7], data: values },
    d: { dtype: "F64", shape: [7], data: values },
  });
  const st = SafetensorsFile.open(file);
  // Every value above is exactly representable in half precision.
  assert.deepEqual(Array.from(toFloat32(st.read("h"))), Array.from(values));
  assert.deepEqual(Array.from(toFloat64(st.read("d"))), Array.from(values));
  const b = toFloat32(st.read("b"));
  for (let i = 0; i < values.length; i++) {
    // bfloat16 keeps 8 significant bits: relative error at most 2^-9.
    assert.ok(Math.abs(b[i] - values[i]) <= Math.abs(values[i]) * 2 ** -9, `bf16 ${values[i]} -> ${b[i]}`);
  }
  assert.equal(b[0], 1);
  assert.equal(b[3], 3.140625);
  st.close();
});

test("half-precision encoding rounds to nearest even and handles subnormals, overflow, NaN", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest half
    [65519, 0x7bff], // below the rounding boundary
    [65520, 0x7c00], // rounds to infinity
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exactly half of it: ties to even (zero)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 subnormal units: ties to even (2)
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1+2^-10: to even
    [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1+2^-10 and 1+2^-9: to even
    [-0, 0x8000],
  ];
  const bits = float32ToF16Bits(cases.map((c) => c[0]));
  cases.forEach(([v, want], i) => assert.equal(bits[i], want, `f16(${v}) = 0x${bits[i].toString(16)}`));
  assert.ok(Number.isNaN(f16BitsToFloat32(float32ToF16Bits([NaN]))[0]));
  // Every finite half pattern decodes and re-encodes to itself.
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = float32ToF16Bits(f16BitsToFloat32(all));
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaN payloads
    if (back[h] !== h) assert.fail(`f16 pattern 0x${h.toString(16)} did not round-trip (got 0x${back[h].toString(16)})`);
  }
  assert.equal(f16BitsToFloat32(Uint16Array.from([0x3555]))[0], 0.333251953125);
});

test("bfloat16 encoding rounds to nearest even and round-trips every pattern", () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [-3.140625, 0xc049],
    [1 + 2 ** -8, 0x3f80], // halfway: to even
    [1 + 3 * 2 ** -8, 0x3f82], // halfway: to even (up)
    [1 + 2 ** -8 + 2 ** -20, 0x3f81], // just above halfway: up
    [Infinity, 0x7f80],
  ];
  const bits = float32ToBf16Bits(cases.map((c) => c[0]));
  cases.forEach(([v, want], i) => assert.equal(bits[i], want, `bf16(${v})`));
  assert.ok(Number.isNaN(bf16BitsToFloat32(float32ToBf16Bits([NaN]))[0]));
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = float32ToBf16Bits(bf16BitsToFloat32(all));
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7f80) === 0x7f80 && h & 0x7f) continue;
    if (back[h] !== h) assert.fail(`bf16 pattern 0x${h.toString(16)} did not round-trip`);
  }
});

test("damaged files fail with an error naming the file and the problem", () => {
  const dir = tmpdir();
  const f = (name: string) => path.join(dir, name);
  const four = new Uint8Array(16);

  // Truncated: a valid file that lost its last bytes.
  const good = f("truncated.safetensors");
  writeSafetensors(good, { a: { dtype: "F32", shape: [2], data: Float32Array.from([1, 2]) }, b: { dtype: "F32", shape: [3], data: new Float32Array(3) } });
  fs.truncateSync(good, fs.statSync(good).size - 4);
  assertBad(good, /tensor "b".*run past the end/);

  assertBad(
    rawFile(f("hlen.safetensors"), { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, four, 1n << 40n),
    /header length 1099511627776 is larger/,
  );
  assertBad(rawFile(f("notjson.safetensors"), "{not json}", four), /not valid JSON/);
  assertBad(rawFile(f("array.safetensors"), "[1, 2, 3]", four), /must start with "\{"/);
  assertBad(rawFile(f("dtype.safetensors"), { a: { dtype: "F8", shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "a".*unknown dtype "F8"/);
  assertBad(rawFile(f("count.safetensors"), { a: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, four), /tensor "a".*hold 16 bytes.*needs 12 bytes/);
  assertBad(
    rawFile(f("range.safetensors"), { a: { dtype: "F32", shape: [250], data_offsets: [0, 1000] } }, four),
    /tensor "a".*\[0, 1000\] run past the end of the data area \(16 bytes\)/,
  );
  assertBad(
    rawFile(
      f("overlap.safetensors"),
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      },
      new Uint8Array(12),
    ),
    /tensor "b".*overlap tensor "a"/,
  );
  assertBad(
    rawFile(
      f("hole.safetensors"),
      {
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
      },
      new Uint8Array(12),
    ),
    /tensor "b" starts at data offset 8.*no holes/,
  );
  assertBad(rawFile(f("extra.safetensors"), { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)), /describes 4 bytes.*holds 8/);
  assertBad(rawFile(f("shape.safetensors"), { a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "a".*shape must be/);
  assertBad(rawFile(f("frac.safetensors"), { a: { dtype: "F32", shape: [1.5], data_offsets: [0, 6] } }, new Uint8Array(6)), /tensor "a".*shape must be/);
  assertBad(rawFile(f("offs.safetensors"), { a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, new Uint8Array(4)), /tensor "a".*data_offsets must be/);
  assertBad(rawFile(f("nooffs.safetensors"), { a: { dtype: "F32", shape: [1] } }, new Uint8Array(4)), /tensor "a".*data_offsets must be/);
  assertBad(
    rawFile(f("meta.safetensors"), { __metadata__: { n: 1 }, a: { dtype: "U8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
    /"__metadata__"."n" must be a string/,
  );
  assertBad(rawFile(f("entry.safetensors"), { a: 5 }, new Uint8Array(0)), /tensor "a".*must be an object/);
  fs.writeFileSync(f("tiny.safetensors"), Buffer.from([1, 2, 3]));
  assertBad(f("tiny.safetensors"), /smaller than the 8-byte header length/);
  assertBad(f("missing.safetensors"), /cannot open/);
});

test("a header length above 100 MB is refused before anything is allocated", () => {
  const file = path.join(tmpdir(), "huge.safetensors");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(150_000_000n);
  fs.writeFileSync(file, len);
  fs.truncateSync(file, 200_000_000); // sparse: the size is there, the bytes are not
  assertBad(file, /header length 150000000 exceeds the 100000000-byte limit/);
});

test("the writer refuses mismatched data and leaves an existing file untouched", () => {
  const dir = tmpdir();
  const file = path.join(dir, "w.safetensors");
  writeSafetensors(file, { a: { dtype: "U8", shape: [1], data: Uint8Array.from([9]) } });
  const before = fs.readFileSync(file);
  assert.throws(() => writeSafetensors(file, { a: { dtype: "F32", shape: [3], data: new Float32Array(2) } }), /tensor "a".*needs 12 bytes but data has 8/);
  assert.throws(() => writeSafetensors(file, { a: { dtype: "F16", shape: [3], data: new Float32Array(2) } }), /tensor "a".*3 elements but data has 2/);
  assert.throws(() => writeSafetensors(file, { a: { dtype: "I32", shape: [2], data: new Float32Array(2) } }), /I32 needs a Int32Array/);
  assert.throws(() => writeSafetensors(file, { a: { dtype: "I32", shape: [3], data: new Int32Array(2) } }), /needs 12 bytes but data has 8/);
  assert.throws(() => writeSafetensors(file, { a: { dtype: "F32", shape: [-2], data: new Float32Array(2) } }), /shape must be/);
  assert.throws(() => writeSafetensors(file, { a: { dtype: "Q4" as Dtype, shape: [2], data: new Float32Array(2) } }), /unknown dtype/);
  assert.throws(() => writeSafetensors(file, { __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }), /reserved/);
  assert.deepEqual(fs.readFileSync(file), before);
  assert.deepEqual(fs.readdirSync(dir), ["w.safetensors"]);
  // Raw little-endian bytes are accepted for any dtype.
  writeSafetensors(file, { a: { dtype: "F32", shape: [1], data: new Uint8Array(Float32Array.from([2.5]).buffer) } });
  assert.equal((SafetensorsFile.open(file).read("a").data as Float32Array)[0], 2.5);
});

test("reads are lazy: each read touches only that tensor's bytes", () => {
  const file = path.join(tmpdir(), "lazy.safetensors");
  writeSafetensors(file, {
    a: { dtype: "F32", shape: [2], data: Float32Array.from([1, 2]) },
    b: { dtype: "F32", shape: [2], data: Float32Array.from([3, 4]) },
  });
  const st = SafetensorsFile.open(file);
  const infoB = st.info("b");
  // Overwrite tensor b's bytes on disk after opening: a lazy reader sees the new bytes, a and the header are intact.
  const fd = fs.openSync(file, "r+");
  fs.writeSync(fd, new Uint8Array(Float32Array.from([7, 8]).buffer), 0, 8, infoB.byteOffset);
  fs.closeSync(fd);
  assert.deepEqual(Array.from(st.read("a").data as Float32Array), [1, 2]);
  assert.deepEqual(Array.from(st.read("b").data as Float32Array), [7, 8]);
  assert.throws(() => st.read("c"), /no tensor named "c"/);
  st.close();
  assert.throws(() => st.read("a"), /closed/);
});

test("sharded checkpoints are one view over all shards", () => {
  const dir = tmpdir();
  writeSafetensors(path.join(dir, "model-00001-of-00002.safetensors"), {
    "model.embed_tokens.weight": { dtype: "F32", shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
    "model.norm.weight": { dtype: "BF16", shape: [2], data: Float32Array.from([1, 0.5]) },
  });
  writeSafetensors(path.join(dir, "model-00002-of-00002.safetensors"), {
    "lm_head.weight": { dtype: "F16", shape: [2, 2], data: Float32Array.from([5, 6, 7, 8]) },
  });
  const index = {
    metadata: { total_size: 28 },
    weight_map: {
      "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.norm.weight": "model-00001-of-00002.safetensors",
      "lm_head.weight": "model-00002-of-00002.safetensors",
    },
  };
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify(index));
  const w = openWeights(dir);
  assert.ok(w instanceof ShardedSafetensors);
  assert.deepEqual(w.names().sort(), ["lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"]);
  assert.deepEqual(Array.from(toFloat32(w.read("lm_head.weight"))), [5, 6, 7, 8]);
  assert.deepEqual(Array.from(toFloat32(w.read("model.norm.weight"))), [1, 0.5]);
  assert.equal(w.info("lm_head.weight").file, path.join(dir, "model-00002-of-00002.safetensors"));
  assert.equal(w.metadata.total_size, "28");
  w.close();

  const bad = (weightMap: Record<string, string>, pattern: RegExp) => {
    fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
    assert.throws(
      () => openWeights(dir),
      (err: Error) => err.message.includes("model.safetensors.index.json") && pattern.test(err.message),
    );
  };
  bad({ "lm_head.weight": "model-00003-of-00002.safetensors" }, /shard "model-00003-of-00002.safetensors".*does not exist/);
  bad({ "x.weight": "model-00002-of-00002.safetensors" }, /puts tensor "x.weight" in "model-00002-of-00002.safetensors", but that shard has no such tensor/);
  bad({ "lm_head.weight": "../model-00002-of-00002.safetensors" }, /must be a shard file name in the same folder/);
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), "{}");
  assert.throws(() => openWeights(dir), /"weight_map" must be an object/);
});

test("openWeights finds model.safetensors and explains what is missing", () => {
  const dir = tmpdir();
  assert.throws(() => openWeights(dir), /no model weights found; expected model.safetensors or model.safetensors.index.json/);
  writeSafetensors(path.join(dir, "model.safetensors"), { x: { dtype: "I8", shape: [1], data: Int8Array.from([3]) } });
  const w = openWeights(dir);
  assert.deepEqual(w.names(), ["x"]);
  w.close();
  assert.throws(() => openWeights(path.join(dir, "nope")), /no such file or folder/);
});

test("writeModelWeights writes one file, or shards with an index that openWeights reads back", () => {
  const dir = tmpdir();
  const tensors: Record<string, TensorInput> = {};
  for (let i = 0; i < 5; i++) tensors[`layer.${i}.weight`] = { dtype: "F32", shape: [10], data: Float32Array.from({ length: 10 }, (_, j) => i * 10 + j) };
  assert.deepEqual(writeModelWeights(dir, tensors), ["model.safetensors"]);
  const files = writeModelWeights(dir, tensors, { maxShardBytes: 100 }); // 40 bytes each: two per shard
  assert.deepEqual(files, [
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
    "model.safetensors.index.json",
  ]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [...files].sort(), "the single file was replaced by the shards");
  const index = JSON.parse(fs.readFileSync(path.join(dir, "model.safetensors.index.json"), "utf8"));
  assert.equal(index.metadata.total_size, 200);
  const w = openWeights(dir);
  assert.ok(w instanceof ShardedSafetensors);
  for (let i = 0; i < 5; i++)
    assert.deepEqual(Array.from(w.read(`layer.${i}.weight`).data as Float32Array), Array.from(tensors[`layer.${i}.weight`].data as Float32Array));
  w.close();
  writeModelWeights(dir, tensors);
  assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"]);
});
