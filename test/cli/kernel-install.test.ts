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

/** Every file, folder and link under `dir`, with file bytes and link targets, to show that nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const full = path.join(dir, rel);
    const st = fs.lstatSync(full);
    if (st.isSymbolicLink()) out[rel] = `link -> ${fs.readlinkSync(full)}`;
    else if (st.isDirectory()) {
      out[rel] = "dir";
      for (const name of fs.readdirSync(full).sort()) walk(path.join(rel, name));
    } else out[rel] = fs.readFileSync(full).toString("base64");
  };
  walk(".");
  return out;
}

/** A prefix whose share/jupyter holds other things than kernels, as a real one does. */
function populatedPrefix(): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-kspec-"));
  const jupyter = path.join(tmp, "share", "jupyter");
  fs.mkdirSync(path.join(jupyter, "kernels", "python3"), { recursive: true });
  fs.writeFileSync(path.join(jupyter, "kernels", "python3", "kernel.json"), '{"argv": ["python3"], "display_name": "Python 3", "language": "python"}\n');
  fs.mkdirSync(path.join(jupyter, "nbextensions"), { recursive: true });
  fs.writeFileSync(path.join(jupyter, "nbextensions", "ext.js"), Buffer.from([0, 1, 2, 255]));
  fs.mkdirSync(path.join(jupyter, "lab", "settings"), { recursive: true });
  fs.writeFileSync(path.join(jupyter, "lab", "settings", "overrides.json"), "{}\n");
  // What an earlier `install --name ..` left behind: a kernel.json right in share/jupyter.
  fs.writeFileSync(path.join(jupyter, "kernel.json"), '{"argv": []}\n');
  fs.writeFileSync(path.join(tmp, "share", "kernel.json"), '{"argv": []}\n');
  return tmp;
}

test("kernel install/uninstall refuse names that are not a folder directly inside kernels/, and touch nothing", () => {
  const names = ["..", ".", "../..", "../evil", "a/b", "a\\b", "x/..", "", "tunelab/../../x"];
  for (const name of names) {
    for (const sub of ["install", "uninstall"]) {
      const tmp = populatedPrefix();
      try {
        const before = snapshot(tmp);
        const r = spawnSync(process.execPath, [cli, "kernel", sub, "--prefix", tmp, "--name", name], { encoding: "utf8" });
        assert.equal(r.status, 1, `${sub} --name ${JSON.stringify(name)}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /kernel name ".*" is invalid/, `${sub} --name ${JSON.stringify(name)}`);
        assert.deepEqual(snapshot(tmp), before, `${sub} --name ${JSON.stringify(name)} changed the prefix`);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  }
});

test("kernel install/uninstall refuse a kernels/NAME that is a link to a folder elsewhere", () => {
  const tmp = populatedPrefix();
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-kspec-elsewhere-"));
  try {
    fs.writeFileSync(path.join(elsewhere, "kernel.json"), '{"argv": ["keep me"]}\n');
    fs.symlinkSync(elsewhere, path.join(tmp, "share", "jupyter", "kernels", "linked"));
    const before = { prefix: snapshot(tmp), elsewhere: snapshot(elsewhere) };
    for (const sub of ["install", "uninstall"]) {
      const r = spawnSync(process.execPath, [cli, "kernel", sub, "--prefix", tmp, "--name", "linked"], { encoding: "utf8" });
      assert.equal(r.status, 1, `${sub}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /not a folder directly inside/);
      assert.deepEqual({ prefix: snapshot(tmp), elsewhere: snapshot(elsewhere) }, before, `${sub} changed files`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});

test("kernel install/uninstall of a valid name change only kernels/NAME (lower-cased, as Jupyter does)", () => {
  const tmp = populatedPrefix();
  try {
    const before = snapshot(tmp);
    const r = spawnSync(process.execPath, [cli, "kernel", "install", "--prefix", tmp, "--name", "TuneLab.Dev-1_x"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const after = snapshot(tmp);
    const added = Object.keys(after).filter((k) => !(k in before));
    assert.ok(added.length > 0 && added.every((k) => k.startsWith(path.join("share", "jupyter", "kernels", "tunelab.dev-1_x"))), added.join(", "));
    for (const [k, v] of Object.entries(before)) if (k !== "." && !k.endsWith("kernels")) assert.equal(after[k], v, k);
    const un = spawnSync(process.execPath, [cli, "kernel", "uninstall", "--prefix", tmp, "--name", "TuneLab.Dev-1_x"], { encoding: "utf8" });
    assert.equal(un.status, 0, un.stderr);
    assert.deepEqual(snapshot(tmp), before);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
