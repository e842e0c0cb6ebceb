import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FILE_VERSION, TensorBoardWriter, crc32c, maskCrc, maskedCrc32c, tfRecord } from "../../sdk/train/log";

// ---- an independent reader: bit-by-bit CRC32C, TFRecord framing, and a generic protobuf walk ----

function crc32cBitwise(data: Uint8Array): number {
  let crc = ~0 >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}
const masked = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

function readRecords(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    assert.ok(off + 12 <= buf.length, `truncated header at ${off}`);
    const len = Number(buf.readBigUInt64LE(off));
    assert.equal(buf.readUInt32LE(off + 8), masked(crc32cBitwise(buf.subarray(off, off + 8))), `length CRC at ${off}`);
    const data = buf.subarray(off + 12, off + 12 + len);
    assert.equal(data.length, len, `truncated data at ${off}`);
    assert.equal(buf.readUInt32LE(off + 12 + len), masked(crc32cBitwise(data)), `data CRC at ${off}`);
    out.push(data);
    off += 12 + len + 4;
  }
  return out;
}

type Field = { no: number; wire: number; value: bigint | Buffer };
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let off = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[off++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (off < buf.length) {
    const key = Number(varint());
    const no = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      out.push({ no, wire, value: buf.subarray(off, off + size) });
      off += size;
    } else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, value: buf.subarray(off, off + len) });
      off += len;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

interface Decoded {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Array<{ tag: string; value: number }>;
}
function decodeEvent(data: Buffer): Decoded {
  const e: Decoded = { wallTime: NaN, step: 0, scalars: [] };
  for (const f of fields(data)) {
    if (f.no === 1 && f.wire === 1) e.wallTime = (f.value as Buffer).readDoubleLE(0);
    else if (f.no === 2 && f.wire === 0) e.step = Number(f.value);
    else if (f.no === 3 && f.wire === 2) e.fileVersion = (f.value as Buffer).toString("utf8");
    else if (f.no === 5 && f.wire === 2) {
      for (const v of fields(f.value as Buffer)) {
        assert.equal(v.no, 1, "Summary.value is field 1");
        const s = { tag: "", value: NaN };
        for (const g of fields(v.value as Buffer)) {
          if (g.no === 1) s.tag = (g.value as Buffer).toString("utf8");
          if (g.no === 2 && g.wire === 5) s.value = (g.value as Buffer).readFloatLE(0);
        }
        e.scalars.push(s);
      }
    } else throw new Error(`unexpected Event field ${f.no}/${f.wire}`);
  }
  return e;
}

// ---- tests ----

test("CRC32C matches the standard check value and the bitwise reference", () => {
  assert.equal(crc32c(Buffer.from("123456789", "ascii")), 0xe3069283);
  assert.equal(crc32cBitwise(Buffer.from("123456789", "ascii")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) B.4 test vector: 32 bytes of zeros -> 0x8A9136AA
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff);
  assert.equal(crc32c(bytes), crc32cBitwise(bytes));
  assert.equal(maskCrc(0), 0xa282ead8);
  assert.equal(maskedCrc32c(bytes), masked(crc32cBitwise(bytes)));
});

test("tfRecord framing", () => {
  const rec = tfRecord(Buffer.from("hello"));
  assert.equal(rec.length, 8 + 4 + 5 + 4);
  assert.deepEqual(
    readRecords(rec).map((d) => d.toString()),
    ["hello"],
  );
});

test("event file: name, version record, scalars that an independent reader decodes", () => {
  const dir = mkdtempSync(join(tmpdir(), "tunelab-tb-"));
  try {
    let clock = 1_700_000_000.25;
    const w = new TensorBoardWriter(join(dir, "runs", "train"), { hostname: "box", now: () => clock });
    assert.equal(w.path, join(dir, "runs", "train", "events.out.tfevents.1700000000.box"));
    clock += 1;
    w.addScalar("loss", 2.15, 500);
    w.addScalars({ loss: 1.87, learning_rate: 3e-5, grad_norm: undefined }, 1000);
    w.addScalar("loss", NaN, 2 ** 40); // big steps and NaN survive
    // nothing closed yet: every record must already be on disk
    const events = readRecords(readFileSync(w.path)).map(decodeEvent);
    assert.equal(events.length, 4);
    assert.deepEqual(events[0], { wallTime: 1_700_000_000.25, step: 0, fileVersion: FILE_VERSION, scalars: [] });
    assert.equal(events[1].step, 500);
    assert.equal(events[1].wallTime, 1_700_000_001.25);
    assert.equal(events[1].scalars[0].tag, "loss");
    assert.equal(events[1].scalars[0].value, Math.fround(2.15));
    assert.deepEqual(
      events[2].scalars.map((s) => s.tag),
      ["loss", "learning_rate"],
    );
    assert.equal(events[2].scalars[1].value, Math.fround(3e-5));
    assert.equal(events[3].step, 2 ** 40);
    assert.ok(Number.isNaN(events[3].scalars[0].value));
    w.close();
    assert.throws(() => w.addScalar("loss", 1, 1), /closed/);
    // a second writer in the same second gets its own file
    const w2 = new TensorBoardWriter(join(dir, "runs", "train"), { hostname: "box", now: () => 1_700_000_000.5 });
    w2.close();
    assert.deepEqual(readdirSync(join(dir, "runs", "train")).sort(), ["events.out.tfevents.1700000000.box", "events.out.tfevents.1700000000.box.1"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad scalars are refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "tunelab-tb-"));
  try {
    const w = new TensorBoardWriter(dir);
    assert.throws(() => w.addScalar("loss", 1, -1), /step must be a non-negative integer/);
    assert.throws(() => w.addScalar("loss", 1, 1.5), /step must be a non-negative integer/);
    assert.throws(() => w.addScalar("", 1, 1), /tag must be a non-empty string/);
    w.close();
    assert.equal(readRecords(readFileSync(w.path)).length, 1, "refused events write nothing");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const hasTensorboard = spawnSync("/usr/bin/python3", ["-c", "import tensorboard"]).status === 0;

test("TensorBoard itself reads the scalars", { skip: hasTensorboard ? false : "the tensorboard Python package is not importable by /usr/bin/python3" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tunelab-tb-"));
  try {
    const w = new TensorBoardWriter(dir);
    for (let s = 1; s <= 3; s++) w.addScalar("loss", 3 - s * 0.5, s * 10);
    w.close();
    const py = spawnSync(
      "/usr/bin/python3",
      [
        "-c",
        "import sys\nfrom tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n" +
          "a=EventAccumulator(sys.argv[1]); a.Reload()\nprint(' '.join('%d:%.2f' % (e.step, e.value) for e in a.Scalars('loss')))",
        dir,
      ],
      { encoding: "utf8" },
    );
    assert.equal(py.status, 0, py.stderr);
    assert.equal(py.stdout.trim(), "10:2.50 20:2.00 30:1.50");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
