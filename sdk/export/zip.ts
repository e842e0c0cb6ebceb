/**
 * A streaming writer of uncompressed ("stored") zip archives, as torch.save writes them: each record's data starts
 * on a 64-byte boundary (padding in the local header's extra field), and zip64 records are used once sizes or
 * offsets pass 4 GiB, so multi-gigabyte checkpoints stay readable by zipfile, miniz and PyTorch.
 */
import * as fs from "node:fs";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE) of `bytes`, continuing from `crc` (0 for a fresh checksum). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const U32_MAX = 0xffffffff;

interface Entry {
  name: Buffer;
  offset: number;
  size: number;
  crc: number;
}

/** Writes a stored zip file record by record; call close() to write the central directory. */
export class ZipWriter {
  private readonly fd: number;
  private offset = 0;
  private readonly entries: Entry[] = [];

  /** @param align data alignment in bytes (torch.save uses 64); @param forceZip64 zip64 records even when small (tests). */
  constructor(
    readonly file: string,
    private readonly align = 64,
    private readonly forceZip64 = false,
  ) {
    this.fd = fs.openSync(file, "w");
  }

  private write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.offset + done);
    this.offset += bytes.length;
  }

  /** Adds one record `name` whose data is the concatenation of `chunks`. */
  add(name: string, chunks: readonly Uint8Array[]): void {
    const nameBytes = Buffer.from(name, "utf8");
    const size = chunks.reduce((n, c) => n + c.byteLength, 0);
    let crc = 0;
    for (const c of chunks) crc = crc32(c, crc);
    const zip64 = this.forceZip64 || size >= U32_MAX || this.offset >= U32_MAX;
    const headerOffset = this.offset;
    const z64 = zip64 ? 20 : 0; // zip64 extra: id, size, uncompressed, compressed
    const fixed = 30 + nameBytes.length + z64;
    const pad = (this.align - ((this.offset + fixed + 4) % this.align)) % this.align; // +4: the padding field's own header
    const extra = Buffer.alloc(z64 + 4 + pad);
    let e = 0;
    if (zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(size), 12);
      e = 20;
    }
    // "FB": the padding field torch.save uses.
    extra.writeUInt16LE(0x4246, e);
    extra.writeUInt16LE(pad, e + 2);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(zip64 ? 45 : 20, 4); // version needed
    h.writeUInt16LE(0x0800, 6); // flags: UTF-8 names
    h.writeUInt16LE(0, 8); // stored
    h.writeUInt16LE(0, 10); // time
    h.writeUInt16LE(0x21, 12); // date 1980-01-01
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(zip64 ? U32_MAX : size, 18);
    h.writeUInt32LE(zip64 ? U32_MAX : size, 22);
    h.writeUInt16LE(nameBytes.length, 26);
    h.writeUInt16LE(extra.length, 28);
    this.write(h);
    this.write(nameBytes);
    this.write(extra);
    if (this.offset % this.align !== 0) throw new Error(`zip: record "${name}" data is not ${this.align}-byte aligned`);
    for (const c of chunks) this.write(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
    this.entries.push({ name: nameBytes, offset: headerOffset, size, crc });
  }

  /** Writes the central directory (zip64 end records when needed) and closes the file. */
  close(): void {
    try {
      const cdStart = this.offset;
      for (const en of this.entries) {
        const needs = this.forceZip64 || en.size >= U32_MAX || en.offset >= U32_MAX;
        const extra = Buffer.alloc(needs ? 28 : 0);
        if (needs) {
          extra.writeUInt16LE(0x0001, 0);
          extra.writeUInt16LE(24, 2);
          extra.writeBigUInt64LE(BigInt(en.size), 4);
          extra.writeBigUInt64LE(BigInt(en.size), 12);
          extra.writeBigUInt64LE(BigInt(en.offset), 20);
        }
        const c = Buffer.alloc(46);
        c.writeUInt32LE(0x02014b50, 0);
        c.writeUInt16LE(needs ? 45 : 20, 4); // made by
        c.writeUInt16LE(needs ? 45 : 20, 6); // needed
        c.writeUInt16LE(0x0800, 8);
        c.writeUInt16LE(0, 10);
        c.writeUInt16LE(0, 12);
        c.writeUInt16LE(0x21, 14);
        c.writeUInt32LE(en.crc, 16);
        c.writeUInt32LE(needs ? U32_MAX : en.size, 20);
        c.writeUInt32LE(needs ? U32_MAX : en.size, 24);
        c.writeUInt16LE(en.name.length, 28);
        c.writeUInt16LE(extra.length, 30);
        c.writeUInt32LE(needs ? U32_MAX : en.offset, 42);
        this.write(c);
        this.write(en.name);
        this.write(extra);
      }
      const cdSize = this.offset - cdStart;
      const zip64End = this.forceZip64 || cdStart >= U32_MAX || this.entries.length >= 0xffff;
      if (zip64End) {
        const z = Buffer.alloc(56);
        const at = this.offset;
        z.writeUInt32LE(0x06064b50, 0);
        z.writeBigUInt64LE(44n, 4);
        z.writeUInt16LE(45, 12);
        z.writeUInt16LE(45, 14);
        z.writeBigUInt64LE(BigInt(this.entries.length), 24);
        z.writeBigUInt64LE(BigInt(this.entries.length), 32);
        z.writeBigUInt64LE(BigInt(cdSize), 40);
        z.writeBigUInt64LE(BigInt(cdStart), 48);
        this.write(z);
        const loc = Buffer.alloc(20);
        loc.writeUInt32LE(0x07064b50, 0);
        loc.writeBigUInt64LE(BigInt(at), 8);
        loc.writeUInt32LE(1, 16);
        this.write(loc);
      }
      const end = Buffer.alloc(22);
      end.writeUInt32LE(0x06054b50, 0);
      end.writeUInt16LE(zip64End ? 0xffff : this.entries.length, 8);
      end.writeUInt16LE(zip64End ? 0xffff : this.entries.length, 10);
      end.writeUInt32LE(zip64End ? U32_MAX : cdSize, 12);
      end.writeUInt32LE(zip64End ? U32_MAX : cdStart, 16);
      this.write(end);
    } finally {
      fs.closeSync(this.fd);
    }
  }
}
