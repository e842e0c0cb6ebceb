/**
 * A TensorBoard event-file writer for scalars, with no TensorFlow dependency: the protobuf is
 * encoded by hand (only the few fields we write) and framed as TFRecords.
 *
 * Wire format (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto):
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 * TFRecord: uint64 length (LE), uint32 masked CRC32C(length bytes), data, uint32 masked CRC32C(data).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, writeSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { join } from "node:path";
import { maskedCrc32c } from "./crc32c";

/** The version string of the first event of every file. */
export const FILE_VERSION = "brain.Event:2";

/** One scalar value of a summary. */
export interface ScalarValue {
  tag: string;
  value: number;
}

/** The fields of an Event that this writer produces. */
export interface EventFields {
  /** Seconds since the Unix epoch (fractional). */
  wallTime: number;
  step?: number;
  fileVersion?: string;
  scalars?: readonly ScalarValue[];
}

/** Appends a protobuf varint of a non-negative integer up to 2^53 (arithmetic, not 32-bit bitwise ops). */
function pushVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

function pushKey(out: number[], field: number, wireType: number): void {
  pushVarint(out, (field << 3) | wireType);
}

function pushBytes(out: number[], field: number, bytes: Uint8Array | number[]): void {
  pushKey(out, field, 2);
  pushVarint(out, bytes.length);
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i]);
}

function encodeValue(v: ScalarValue): number[] {
  const out: number[] = [];
  pushBytes(out, 1, Buffer.from(v.tag, "utf8"));
  pushKey(out, 2, 5); // fixed32
  const f = Buffer.alloc(4);
  f.writeFloatLE(v.value);
  out.push(...f);
  return out;
}

/** Serialises an Event message (proto3: zero step is omitted, like protoc does). */
export function encodeEvent(e: EventFields): Uint8Array {
  if (!Number.isFinite(e.wallTime)) throw new Error(`TensorBoard event: wallTime must be a finite number, got ${e.wallTime}`);
  const step = e.step ?? 0;
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`TensorBoard event: step must be a non-negative integer, got ${e.step}`);
  const out: number[] = [];
  pushKey(out, 1, 1); // fixed64 double
  const d = Buffer.alloc(8);
  d.writeDoubleLE(e.wallTime);
  out.push(...d);
  if (step !== 0) {
    pushKey(out, 2, 0);
    pushVarint(out, step);
  }
  if (e.fileVersion !== undefined) pushBytes(out, 3, Buffer.from(e.fileVersion, "utf8"));
  if (e.scalars && e.scalars.length) {
    const summary: number[] = [];
    for (const v of e.scalars) {
      if (typeof v.tag !== "string" || v.tag === "") throw new Error(`TensorBoard event: scalar tag must be a non-empty string, got ${JSON.stringify(v.tag)}`);
      if (typeof v.value !== "number") throw new Error(`TensorBoard event: scalar "${v.tag}" must be a number, got ${typeof v.value}`);
      pushBytes(summary, 1, encodeValue(v));
    }
    pushBytes(out, 5, summary);
  }
  return Uint8Array.from(out);
}

/** Frames bytes as one TFRecord: length, masked CRC of the length, data, masked CRC of the data. */
export function tfRecord(data: Uint8Array): Buffer {
  const rec = Buffer.alloc(8 + 4 + data.length + 4);
  rec.writeBigUInt64LE(BigInt(data.length), 0);
  rec.writeUInt32LE(maskedCrc32c(rec.subarray(0, 8)), 8);
  rec.set(data, 12);
  rec.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return rec;
}

/** Options for TensorBoardWriter. */
export interface TensorBoardWriterOptions {
  /** Host name in the file name; default os.hostname(). */
  hostname?: string;
  /** Clock in seconds since the epoch; default Date.now() / 1000. */
  now?: () => number;
  /** fsync after every record (survives power loss, not only a crash); default false. */
  fsync?: boolean;
}

/**
 * Writes scalars to `<logDir>/events.out.tfevents.<unix seconds>.<hostname>`. Every record goes to
 * the OS as soon as it is added, so a crash keeps everything written so far.
 */
export class TensorBoardWriter {
  /** The event file's path. */
  readonly path: string;
  private fd: number | undefined;
  private readonly now: () => number;
  private readonly fsync: boolean;

  constructor(logDir: string, opts: TensorBoardWriterOptions = {}) {
    this.now = opts.now ?? (() => Date.now() / 1000);
    this.fsync = opts.fsync ?? false;
    mkdirSync(logDir, { recursive: true });
    const t = this.now();
    const host = (opts.hostname ?? osHostname()).replace(/[/\\]/g, "_");
    const base = join(logDir, `events.out.tfevents.${Math.floor(t)}.${host}`);
    // Two writers in one second (a quick resume) must not interleave records in one file.
    let path = base;
    for (let n = 1; existsSync(path); n++) path = `${base}.${n}`;
    this.path = path;
    this.fd = openSync(path, "wx");
    this.writeEvent({ wallTime: t, fileVersion: FILE_VERSION });
  }

  private writeEvent(e: EventFields): void {
    if (this.fd === undefined) throw new Error(`TensorBoardWriter: ${this.path} is closed`);
    const rec = tfRecord(encodeEvent(e));
    writeSync(this.fd, rec, 0, rec.length);
    if (this.fsync) fsyncSync(this.fd);
  }

  /** Records one scalar at a step. */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.writeEvent({ wallTime: wallTime ?? this.now(), step, scalars: [{ tag, value }] });
  }

  /** Records several scalars at one step, in one event (undefined values are skipped). */
  addScalars(values: Readonly<Record<string, number | undefined>>, step: number, wallTime?: number): void {
    const scalars = Object.entries(values)
      .filter((kv): kv is [string, number] => kv[1] !== undefined)
      .map(([tag, value]) => ({ tag, value }));
    if (scalars.length) this.writeEvent({ wallTime: wallTime ?? this.now(), step, scalars });
  }

  /** Closes the file; later writes throw. */
  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
