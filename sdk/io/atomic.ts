/** Atomic file writes: a crash or a failed write never leaves a half-written file under the final name. */
import * as fs from "node:fs";
import * as path from "node:path";

/** A temporary name next to `target` (same folder, so the final rename stays on one file system). */
function tempNameFor(target: string): string {
  const rand = Math.floor(Math.random() * 0x7fffffff).toString(36);
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${rand}.tmp`);
}

/**
 * Writes a file by streaming chunks into a temporary file, syncing it, then renaming it over `target`.
 * `write` receives a function that appends bytes; if it throws, the temporary file is removed and
 * `target` is left as it was.
 */
export function writeFileAtomicWith(target: string, write: (append: (bytes: Uint8Array) => void) => void): void {
  const tmp = tempNameFor(target);
  const fd = fs.openSync(tmp, "w", 0o644);
  let ok = false;
  try {
    const append = (bytes: Uint8Array): void => {
      let done = 0;
      while (done < bytes.byteLength) {
        // writeSync may write fewer bytes than asked (and at most 2 GiB at a time), so loop.
        const chunk = Math.min(bytes.byteLength - done, 1 << 30);
        done += fs.writeSync(fd, bytes, done, chunk);
      }
    };
    write(append);
    fs.fsyncSync(fd);
    ok = true;
  } finally {
    fs.closeSync(fd);
    if (!ok) fs.rmSync(tmp, { force: true });
  }
  try {
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Writes `data` (text is UTF-8) to `target` atomically. */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  writeFileAtomicWith(target, (append) => append(bytes));
}

/** Writes `value` as pretty JSON (2-space indent, trailing newline) to `target` atomically. */
export function writeJsonAtomic(target: string, value: unknown): void {
  writeFileAtomic(target, JSON.stringify(value, null, 2) + "\n");
}
