/** Code habits checked on every run: file names in one style, typescript-eslint's rules, and the formatter. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.resolve(__dirname, "../../..");
const SOURCE_DIRS = ["sdk", "kernel", "test", "bench", "scripts"];

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const sources = SOURCE_DIRS.flatMap((d) => files(path.join(root, d))).map((f) => path.relative(root, f));

test("TypeScript file names are kebab-case, Python's snake_case (importable modules)", () => {
  const bad = sources.filter((f) => {
    const name = path.basename(f);
    if (name.endsWith(".ts")) return !/^[a-z0-9]+(-[a-z0-9]+)*(\.test)?\.ts$/.test(name);
    if (name.endsWith(".py")) return !/^[a-z0-9]+(_[a-z0-9]+)*\.py$/.test(name);
    return false;
  });
  assert.ok(sources.length > 100, `expected the project's sources, found ${sources.length} files`);
  assert.deepEqual(bad, []);
});

function run(bin: string, args: string[]) {
  const res = spawnSync(process.execPath, [path.join(root, "node_modules", bin), ...args], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
  return { status: res.status, output: `${res.stdout}${res.stderr}`.trim() };
}

test("typescript-eslint finds nothing (eslint.config.mjs)", () => {
  const res = run("eslint/bin/eslint.js", ["--max-warnings", "0", ...SOURCE_DIRS]);
  assert.equal(res.status, 0, res.output);
});

test("sources are formatted (prettier --check; fix with npm run format)", () => {
  const res = run("prettier/bin/prettier.cjs", ["--check", ...SOURCE_DIRS.map((d) => `${d}/**/*.ts`)]);
  assert.equal(res.status, 0, res.output);
});
