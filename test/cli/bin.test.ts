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

test("the bin's shebang starts Node with PROCESS_ENV, and the kernelspec carries the same environment", async () => {
  const { PROCESS_ENV } = await import("../../sdk/runtime/process-env");
  const { makeKernelSpec } = await import("../../kernel/spec");
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { bin: { tunelab: string } };
  const shebang = fs.readFileSync(path.join(root, pkg.bin.tunelab), "utf8").split("\n")[0];
  const assignments = Object.entries(PROCESS_ENV).map(([k, v]) => `${k}=${v}`);
  assert.equal(shebang, `#!/usr/bin/env -S ${assignments.join(" ")} node`);
  assert.deepEqual(makeKernelSpec().env, PROCESS_ENV);
});
