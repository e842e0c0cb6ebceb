/** Temporary folders for the io tests, removed when the test file finishes. */
import { after } from "node:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const made: string[] = [];

// Registered when this module is first imported (at the top of a test file), so it runs after all its tests.
after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under os.tmpdir(). */
export function tempDir(prefix = "tunelab-io-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}
