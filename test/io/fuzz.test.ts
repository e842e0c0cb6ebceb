/** Seeded fuzzing of every file loader: each damaged file loads, or fails with an Error naming the file. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { judge, type CaseLine } from "./fuzz-cases";

const RUNNER = path.join(__dirname, "fuzz-cases.js");
const LIMIT_MS = 50_000;

test("fuzzed data and model files: success or an Error naming the file, no crash or hang", (t) => {
  // A child process, so that a hang or a crash is caught and blamed on the case that was running.
  const child = spawnSync(process.execPath, [RUNNER], { timeout: LIMIT_MS, maxBuffer: 64 << 20, encoding: "utf8" });
  const lines = child.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as CaseLine);
  const ends = lines.filter((l) => l.event === "end");
  const counts: Record<string, number> = {};
  for (const l of ends) counts[l.kind] = (counts[l.kind] ?? 0) + 1;
  for (const [kind, n] of Object.entries(counts)) t.diagnostic(`${kind}: ${n} cases`);
  const failed = ends.filter((l) => l.problem !== undefined).map((l) => `${l.kind} ${l.mutation} seed ${l.seed}: ${l.problem}: ${l.error}`);
  const last = lines.at(-1);
  const unhandled = lines.find((l) => l.event === "unhandled");
  if (last?.event === "unhandled" && lines.at(-2)?.event === "start") {
    const c = lines.at(-2)!;
    failed.push(`${c.kind} ${c.mutation} seed ${c.seed}: unhandled rejection: ${unhandled!.error}`);
  } else if (unhandled) failed.push(`unhandled rejection between cases: ${unhandled.error}`);
  else if (last?.event === "start") {
    const how = child.error ? `hung (killed after ${LIMIT_MS} ms)` : `crashed (status ${child.status}, signal ${child.signal}): ${child.stderr.slice(-2000)}`;
    failed.push(`${last.kind} ${last.mutation} seed ${last.seed}: ${how}`);
  }
  assert.deepEqual(failed, []);
  assert.equal(child.status, 0, child.stderr);
  assert.ok(ends.length >= 300, `only ${ends.length} cases ran`);
  assert.ok(Object.keys(counts).length >= 11, `kinds: ${Object.keys(counts).join(", ")}`);
});

test("the fuzz rule itself: which outcomes pass and which are reported", async () => {
  const file = "/tmp/x/d.jsonl";
  assert.deepEqual(await judge(() => 1, file), {});
  assert.equal(
    (
      await judge(
        () => {
          throw new Error(`${file}:3: bad`);
        },
        file,
        3,
      )
    ).problem,
    undefined,
  );
  assert.match(
    (
      await judge(
        () => {
          throw new Error(`${file}:2: bad`);
        },
        file,
        3,
      )
    ).problem!,
    /does not name line 3/,
  );
  assert.match(
    (
      await judge(() => {
        throw new TypeError("Cannot read properties of undefined (reading 'x')");
      }, file)
    ).problem!,
    /does not name d\.jsonl/,
  );
  assert.match(
    (
      await judge(() => {
        throw new Error(`d.jsonl: x is not a function`);
      }, file)
    ).problem!,
    /internal error text/,
  );
  assert.match(
    (
      await judge(() => {
        throw new Error(`d.jsonl: ${"x".repeat(5000)}`);
      }, file)
    ).problem!,
    /message of 5009 characters/,
  );
  assert.match((await judge(() => Promise.reject("text"), file)).problem!, /non-Error/);
});
