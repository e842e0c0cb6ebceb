/**
 * `tunelab model create` must not replace files it did not write: into a non-empty folder that is not a
 * tunelab model it refuses (both --arch and --preset), leaving every file byte-identical, unless --overwrite.
 * A folder tunelab wrote may be rewritten.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { command } from "../../sdk/cli/commands/model";

/** Runs the command in-process, returning its exit code and what it printed. */
async function run(args: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await command.run(args), text: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Every file of a folder with the SHA-256 of its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort())
    out[f] = crypto
      .createHash("sha256")
      .update(fs.readFileSync(path.join(dir, f)))
      .digest("hex");
  return out;
}

/** A folder that looks like a downloaded model (weights that must survive) plus a user's notes. */
function someonesModel(root: string): string {
  const dir = path.join(root, "downloaded");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ architectures: ["Qwen2ForCausalLM"], hidden_size: 8 }));
  fs.writeFileSync(path.join(dir, "model-00001-of-00002.safetensors"), crypto.randomBytes(4096));
  fs.writeFileSync(path.join(dir, "model-00002-of-00002.safetensors"), crypto.randomBytes(4096));
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), "{}");
  fs.writeFileSync(path.join(dir, "notes.txt"), "mine");
  return dir;
}

const tiny = ["--arch", "llama", "--seed", "1", "--hidden-size", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1"];

test("model create refuses a non-empty folder it did not write, for --arch and --preset, leaving it untouched", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-create-"));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = someonesModel(root);
  const before = snapshot(dir);
  for (const args of [
    ["create", ...tiny, "--out", dir],
    ["create", "--preset", "qwen2.5-0.5b-instruct", "--out", dir, "--seed", "0"],
  ]) {
    const r = await run(args);
    assert.equal(r.code, 1, r.text);
    assert.match(r.text, /not empty and was not written by tunelab model create.*--overwrite/s);
    assert.deepEqual(snapshot(dir), before, `${args.join(" ")} changed the folder`);
  }

  // With --overwrite the model files are replaced (stale shards and index removed); other files stay.
  const r = await run(["create", ...tiny, "--out", dir, "--overwrite"]);
  assert.equal(r.code, 0, r.text);
  const after = snapshot(dir);
  assert.equal(after["notes.txt"], before["notes.txt"]);
  assert.ok(after["model.safetensors"] && !after["model-00001-of-00002.safetensors"] && !after["model.safetensors.index.json"]);
  // Now it is tunelab's: writing it again needs no --overwrite.
  assert.equal((await run(["create", ...tiny, "--out", dir])).code, 0);
});

test("model create writes into a missing or empty folder, and rejects flags a preset fixes", async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-create-"));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, "empty"));
  assert.equal((await run(["create", ...tiny, "--out", path.join(root, "empty")])).code, 0);
  assert.equal((await run(["create", ...tiny, "--out", path.join(root, "new", "nested")])).code, 0);
  const bad = await run(["create", "--preset", "qwen2.5-0.5b-instruct", "--hidden-size", "8", "--out", path.join(root, "x"), "--seed", "0"]);
  assert.equal(bad.code, 1);
  assert.match(bad.text, /--hidden-size cannot be combined with --preset/);
  const unknown = await run(["create", "--preset", "gpt-5", "--out", path.join(root, "x"), "--seed", "0"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.text, /--preset must be one of deepseek-r1-distill-qwen-1\.5b/);
  assert.ok(!fs.existsSync(path.join(root, "x")));
});
