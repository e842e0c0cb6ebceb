/** `tunelab kernel install` writes a kernelspec Jupyter can use, and doctor then finds it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findKernelSpecs } from "../../kernel/spec";

const repo = path.resolve(__dirname, "..", "..", "..");
const cli = path.join(repo, "dist", "sdk", "cli", "main.js");

test("kernel install --prefix writes kernel.json with absolute node and entry point, and logos", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-kspec-"));
  try {
    const r = spawnSync(process.execPath, [cli, "kernel", "install", "--prefix", tmp, "--name", "tunelab-test"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const dir = path.join(tmp, "share", "jupyter", "kernels", "tunelab-test");
    const spec = JSON.parse(fs.readFileSync(path.join(dir, "kernel.json"), "utf8"));
    assert.deepEqual(spec.argv, [process.execPath, path.join(repo, "dist", "kernel", "main.js"), "{connection_file}"]);
    assert.equal(spec.display_name, "TypeScript (tunelab)");
    assert.equal(spec.language, "typescript");
    for (const [file, size] of [
      ["logo-64x64.png", 64],
      ["logo-32x32.png", 32],
    ] as const) {
      const png = fs.readFileSync(path.join(dir, file));
      assert.equal(png.subarray(1, 4).toString("ascii"), "PNG");
      assert.equal(png.readUInt32BE(16), size, `${file} width`);
      assert.equal(png.readUInt32BE(20), size, `${file} height`);
    }
    const found = findKernelSpecs([path.join(tmp, "share", "jupyter")]);
    assert.equal(found.length, 1);
    assert.equal(found[0].isTunelab, true);
    assert.equal(found[0].runnable, true);

    // Same checks the real Jupyter makes: it lists the spec from JUPYTER_PATH (when jupyter_client is there).
    const py = fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    const list = spawnSync(py, ["-c", "import json,jupyter_client.kernelspec as k; print(json.dumps(k.KernelSpecManager().get_all_specs()))"], {
      encoding: "utf8",
      env: { ...process.env, JUPYTER_PATH: path.join(tmp, "share", "jupyter"), PYDEVD_DISABLE_FILE_VALIDATION: "1" },
    });
    if (list.status === 0) {
      const specs = JSON.parse(list.stdout.trim().split("\n").pop()!);
      assert.equal(specs["tunelab-test"]?.spec?.display_name, "TypeScript (tunelab)");
    }

    const un = spawnSync(process.execPath, [cli, "kernel", "uninstall", "--prefix", tmp, "--name", "tunelab-test"], { encoding: "utf8" });
    assert.equal(un.status, 0, un.stderr);
    assert.equal(fs.existsSync(dir), false);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("kernel install rejects bad input with a clear message", () => {
  const bad = spawnSync(process.execPath, [cli, "kernel", "install", "--name", "no spaces/please"], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /kernel name "no spaces\/please" is invalid/);
  const unknown = spawnSync(process.execPath, [cli, "kernel", "install", "--sys-prefix"], { encoding: "utf8" });
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown option --sys-prefix/);
});
