/** `tunelab doctor --json` run as a user runs it: the built CLI in a child process, probing providers for real. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { DoctorReport } from "../../sdk/cli/commands/doctor";

const repo = path.resolve(__dirname, "..", "..", "..");
const cli = path.join(repo, "dist", "sdk", "cli", "main.js");

/** The Mesa lavapipe (software Vulkan) driver that .ci/install-debian.sh installs. */
const hasLavapipe = (() => {
  try {
    return fs.readdirSync("/usr/share/vulkan/icd.d").some((f) => /^lvp_icd.*\.json$/.test(f));
  } catch {
    return false;
  }
})();

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: repo, encoding: "utf8", timeout: 180_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let jsonRun: ReturnType<typeof runCli> | undefined;
/** `doctor --json`, run once for the tests that read it (each run probes every provider). */
function doctorJson(): ReturnType<typeof runCli> {
  return (jsonRun ??= runCli(["doctor", "--json"]));
}

test("doctor --json: cpu runs a graph, the report is consistent with the exit status", { timeout: 200_000 }, () => {
  const r = doctorJson();
  let report: DoctorReport;
  try {
    report = JSON.parse(r.stdout) as DoctorReport;
  } catch {
    assert.fail(`doctor --json did not print JSON (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  const byId = new Map(report.items.map((i) => [i.id, i]));
  for (const id of ["node", "onnxruntime", "provider:cpu", "provider:webgpu", "provider:cuda", "jupyter", "kernel", "chromium"]) {
    assert.ok(byId.has(id), `item ${id} missing from ${[...byId.keys()].join(", ")}`);
  }
  const cpu = byId.get("provider:cpu")!;
  assert.equal(cpu.ok, true, `cpu provider failed: ${cpu.detail}`);
  assert.equal(cpu.optional, false);
  assert.ok(typeof cpu.ms === "number" && cpu.ms > 0, "the probe really ran and was timed");
  assert.equal(byId.get("node")!.ok, true);
  assert.match(byId.get("onnxruntime")!.detail, /^\d+\.\d+\.\d+/);
  for (const item of report.items) {
    if (!item.ok) assert.ok(item.fix && item.fix.length > 0, `${item.id} failed without a fix command`);
    if (item.id !== "node" && item.id !== "onnxruntime" && item.id !== "provider:cpu") assert.equal(item.optional, true, `${item.id} must be optional`);
  }
  // Exit status 0 exactly when every required item passed.
  const required = report.items.filter((i) => !i.optional);
  assert.equal(
    report.ok,
    required.every((i) => i.ok),
  );
  assert.equal(r.status, report.ok ? 0 : 1);
});

test(
  "doctor --json: webgpu runs a graph on the Vulkan driver",
  { skip: !hasLavapipe && "no lavapipe Vulkan ICD (/usr/share/vulkan/icd.d/lvp_icd*.json)", timeout: 200_000 },
  () => {
    const report = JSON.parse(doctorJson().stdout) as DoctorReport;
    const webgpu = report.items.find((i) => i.id === "provider:webgpu")!;
    assert.equal(webgpu.ok, true, `webgpu failed: ${webgpu.detail}`);
    assert.match(webgpu.detail, /max diff vs cpu/);
  },
);

test("doctor prints one ✓/✗ line per item and a fix line under each ✗", { timeout: 200_000 }, () => {
  const r = runCli(["doctor"]);
  const lines = r.stdout.trimEnd().split("\n");
  const items = lines.filter((l) => /^[✓✗] /.test(l));
  assert.equal(items.length, 8, r.stdout);
  lines.forEach((l, i) => {
    if (l.startsWith("✗ ")) assert.match(lines[i + 1] ?? "", /^ {4}fix: \S/, `no fix under: ${l}`);
  });
  assert.ok(
    items.some((l) => /^✓ provider cpu\b/.test(l)),
    r.stdout,
  );
  assert.doesNotMatch(r.stdout, /export/i, "tunelab has no figure or browser export to promise");
});

test("Chromium is reported as what the browser tests use, not as a feature; no doc promises figure export", { timeout: 200_000 }, () => {
  const report = JSON.parse(doctorJson().stdout) as DoctorReport;
  const chromium = report.items.find((i) => i.id === "chromium")!;
  assert.equal(chromium.optional, true);
  assert.doesNotMatch(`${chromium.detail} ${chromium.fix ?? ""}`, /export|CHROME_PATH/i);
  if (chromium.ok) assert.match(chromium.detail, /\(\/usr\/bin\/chromium\); used only by tunelab's browser tests/);
  else assert.match(chromium.detail, /\/usr\/bin\/chromium/);
  for (const file of ["README.md", "docs/install.md", "docs/dependencies.md", "docs/cli.md"]) {
    const text = fs.readFileSync(path.join(repo, file), "utf8");
    assert.doesNotMatch(text, /(figure|browser|image|static) export|CHROME_PATH/i, `${file} promises an export no code does`);
  }
});

test("unknown command and unknown option exit 2 with a clear message", () => {
  const unknown = runCli(["frobnicate"]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  assert.match(unknown.stderr, /doctor/, "the usage lists the commands");
  const badFlag = runCli(["doctor", "--jsn"]);
  assert.equal(badFlag.status, 2);
  assert.match(badFlag.stderr, /unknown option --jsn/);
});

test("--help lists every registered command", () => {
  const r = runCli(["--help"]);
  assert.equal(r.status, 0);
  for (const name of ["doctor", "kernel"]) assert.match(r.stdout, new RegExp(`^  ${name}\\b`, "m"));
});
