/** The `tunelab` bin as npx and npm's links run it: directly, by its shebang. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.resolve(__dirname, "../../..");

test("the package's bin is executable and runs by its shebang", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string; bin: { tunelab: string } };
  const bin = path.join(root, pkg.bin.tunelab);
  assert.ok(fs.statSync(bin).mode & 0o100, `${bin} lacks the execute bit (npx tunelab would fail with "Permission denied")`);
  assert.equal(execFileSync(bin, ["--version"], { encoding: "utf8" }).trim(), pkg.version);
});
