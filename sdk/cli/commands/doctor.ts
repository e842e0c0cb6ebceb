/**
 * `tunelab doctor [--json]`: what this machine can run, one line per item, with the exact command that fixes
 * each missing piece. Execution providers are tried for real (a tiny graph per provider, in a child process
 * so that a crashing GPU driver cannot take doctor down with it).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CliCommand } from "../command";
import { parseFlags } from "../command";
import { defaultDataDirs, findKernelSpecs } from "../../../kernel/index";
import { packageRoot } from "../../util/package";
import type { probeProvider } from "../../runtime/probe";

/** What probeProvider() resolves to (it runs in a child process, so only its type is imported here). */
type ProbeResult = Awaited<ReturnType<typeof probeProvider>>;

/** One line of the report. */
export interface DoctorItem {
  /** Stable key, e.g. "node", "provider:webgpu", "jupyter". */
  id: string;
  /** What was checked, as shown. */
  label: string;
  ok: boolean;
  /** Optional items do not affect the exit status (everything beyond CPU training). */
  optional: boolean;
  /** What was found, or why it failed. */
  detail: string;
  /** For a failed item: the command (or step) that fixes it. */
  fix?: string;
  /** For provider probes: wall time of the probe in milliseconds. */
  ms?: number;
}

/** The whole report (what `--json` prints). */
export interface DoctorReport {
  /** True when everything required for CPU use is there: Node, onnxruntime-node and the cpu provider. */
  ok: boolean;
  platform: string;
  items: DoctorItem[];
}

/** The providers doctor tries, in order; only cpu is required. */
export const PROVIDERS = ["cpu", "webgpu", "cuda"] as const;
type ProviderName = (typeof PROVIDERS)[number];

const MIN_NODE: [number, number] = [20, 19];

/** Runs every check; never throws (a check that crashes becomes a failed item). */
export async function runDoctor(options: { probeTimeoutMs?: number } = {}): Promise<DoctorReport> {
  const items: DoctorItem[] = [];
  items.push(checkNode());
  const ort = checkOnnxruntime();
  items.push(ort);
  for (const p of PROVIDERS) items.push(ort.ok ? probeInChild(p, options.probeTimeoutMs ?? 120_000) : skippedProvider(p));
  const jupyter = findJupyter();
  items.push(jupyter.item);
  items.push(checkKernel(jupyter.dataDirs));
  items.push(checkChromium());
  return { ok: items.every((i) => i.ok || i.optional), platform: `${process.platform}-${process.arch}`, items };
}

function checkNode(): DoctorItem {
  const [major, minor] = process.versions.node.split(".").map(Number);
  const ok = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return {
    id: "node",
    label: "Node.js",
    ok,
    optional: false,
    detail: ok ? `${process.version} (>= ${MIN_NODE.join(".")})` : `${process.version} is older than the required ${MIN_NODE.join(".")}`,
    fix: ok ? undefined : "install Node.js 20.19 or newer, e.g. `nvm install 22` (https://nodejs.org)",
  };
}

/** Folder of the onnxruntime-node package this tunelab uses, or null when it is not installed. */
function onnxruntimeDir(): string | null {
  try {
    return path.dirname(require.resolve("onnxruntime-node/package.json"));
  } catch {
    return null;
  }
}

function checkOnnxruntime(): DoctorItem {
  const base = { id: "onnxruntime", label: "onnxruntime-node", optional: false };
  const dir = onnxruntimeDir();
  if (!dir) return { ...base, ok: false, detail: "not installed", fix: `cd ${packageRoot()} && npm ci` };
  const version = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version as string;
  try {
    // Loading the package loads its native binding: this is what fails when the binaries are missing.
    require("onnxruntime-node");
  } catch (err) {
    return { ...base, ok: false, detail: `${version} is installed but does not load: ${firstLine(err)}`, fix: `cd ${packageRoot()} && npm ci` };
  }
  return { ...base, ok: true, detail: `${version} (${dir})` };
}

function skippedProvider(p: ProviderName): DoctorItem {
  return {
    id: `provider:${p}`,
    label: `provider ${p}`,
    ok: false,
    optional: p !== "cpu",
    detail: "not tried: onnxruntime-node does not load",
    fix: providerFix(p),
  };
}

/** Runs sdk/runtime/probe's probeProvider(p) in a child Node process and turns its answer into an item. */
function probeInChild(p: ProviderName, timeoutMs: number): DoctorItem {
  const base = { id: `provider:${p}`, label: `provider ${p}`, optional: p !== "cpu" };
  const probeModule = require.resolve("../../runtime/probe");
  const script =
    `require(${JSON.stringify(probeModule)}).probeProvider(${JSON.stringify(p)})` +
    `.then((r) => { process.stdout.write("\\n@@probe " + JSON.stringify(r) + "\\n"); process.exit(0); },` +
    ` (e) => { process.stdout.write("\\n@@probe " + JSON.stringify({ ok: false, detail: String(e && e.message || e), ms: 0 }) + "\\n"); process.exit(0); });`;
  const started = Date.now();
  const res = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: timeoutMs, env: probeEnv() });
  const ms = Date.now() - started;
  const line = (res.stdout ?? "").split("\n").find((l) => l.startsWith("@@probe "));
  if (line) {
    const r = JSON.parse(line.slice("@@probe ".length)) as ProbeResult;
    return { ...base, ok: r.ok, detail: r.ok ? r.detail : explainProviderFailure(p, r.detail), ms: r.ms, fix: r.ok ? undefined : providerFix(p) };
  }
  const why = res.error
    ? (res.error as NodeJS.ErrnoException).code === "ETIMEDOUT"
      ? `the probe did not finish within ${timeoutMs / 1000} s`
      : res.error.message
    : res.signal
      ? `the probe process was killed by ${res.signal}`
      : `the probe process exited with status ${res.status}: ${lastLine(res.stderr)}`;
  return { ...base, ok: false, detail: explainProviderFailure(p, why), ms, fix: providerFix(p) };
}

/** The environment for probes: Dawn (WebGPU) on Vulkan wants XDG_RUNTIME_DIR; give it a private one if unset. */
function probeEnv(): NodeJS.ProcessEnv {
  if (process.env.XDG_RUNTIME_DIR || process.platform !== "linux") return process.env;
  const dir = path.join(os.tmpdir(), `xdg-${process.getuid?.() ?? "user"}`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return { ...process.env, XDG_RUNTIME_DIR: dir };
  } catch {
    return process.env;
  }
}

/** Adds what we know about the usual cause to a provider's failure message. */
function explainProviderFailure(p: ProviderName, detail: string): string {
  if (p === "cuda") {
    const dir = onnxruntimeDir();
    const lib = dir && path.join(dir, "bin", "napi-v6", process.platform, process.arch, "libonnxruntime_providers_cuda.so");
    if (process.platform === "linux" && lib && !fs.existsSync(lib)) return `CUDA provider binaries are not installed (${detail})`;
    if (!hasNvidiaGpu()) return `no NVIDIA GPU/driver found (${detail})`;
  }
  if (p === "webgpu" && process.platform === "linux" && !hasVulkanIcd()) return `no Vulkan driver found (${detail})`;
  return detail;
}

/** The exact command that makes provider `p` work. */
export function providerFix(p: ProviderName): string {
  switch (p) {
    case "cpu":
      return `cd ${packageRoot()} && npm ci`;
    case "webgpu":
      if (process.platform === "linux") {
        return isDebianLike()
          ? "sudo apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1  (Debian 12; Ubuntu: sudo apt-get install mesa-vulkan-drivers libvulkan1), or your GPU vendor's Vulkan driver"
          : "install a Vulkan loader and driver (Mesa's mesa-vulkan-drivers + libvulkan1, or your GPU vendor's driver)";
      }
      return process.platform === "darwin" ? "update macOS (WebGPU uses Metal)" : "update the GPU driver (WebGPU uses Direct3D 12)";
    case "cuda": {
      const dir = onnxruntimeDir() ?? path.join(packageRoot(), "node_modules", "onnxruntime-node");
      const inRepo = path.resolve(process.cwd()) === packageRoot() && dir === path.join(packageRoot(), "node_modules", "onnxruntime-node");
      const cmd = inRepo ? "npm run install-cuda" : `cd ${dir} && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install`;
      return `${cmd}  (downloads onnxruntime's CUDA 12 provider; needs an NVIDIA GPU with a CUDA 12 driver, the CUDA 12 runtime and cuDNN 9)`;
    }
  }
}

function hasVulkanIcd(): boolean {
  const dirs = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];
  return dirs.some((d) => {
    try {
      return fs.readdirSync(d).some((f) => f.endsWith(".json"));
    } catch {
      return false;
    }
  });
}

function hasNvidiaGpu(): boolean {
  return fs.existsSync("/dev/nvidia0") || fs.existsSync("/proc/driver/nvidia/version");
}

function isDebianLike(): boolean {
  try {
    return /^(ID|ID_LIKE)=.*debian/m.test(fs.readFileSync("/etc/os-release", "utf8"));
  } catch {
    return false;
  }
}

/** Jupyter as found: the command, its server package version and its data folders. */
interface JupyterFound {
  item: DoctorItem;
  dataDirs: string[];
}

/** Candidate commands for Jupyter, in order: `jupyter` on PATH, then Debian's system Python. */
function jupyterCandidates(): string[][] {
  const out: string[][] = [["jupyter"]];
  for (const py of ["/usr/bin/python3", "python3"]) out.push([py, "-m", "jupyter"]);
  return out;
}

function findJupyter(): JupyterFound {
  const base = { id: "jupyter", label: "Jupyter", optional: true };
  for (const cmd of jupyterCandidates()) {
    const paths = run(cmd[0], [...cmd.slice(1), "--paths", "--json"]);
    if (paths === null) continue;
    let dataDirs: string[];
    try {
      dataDirs = (JSON.parse(paths) as { data: string[] }).data;
    } catch {
      continue;
    }
    const versions = run(cmd[0], [...cmd.slice(1), "--version"]) ?? "";
    const server = ["jupyterlab", "notebook", "jupyter_server"]
      .map((name) => {
        const m = versions.match(new RegExp(`^${name}\\s*:\\s*(\\S+)`, "m"));
        return m && /^\d/.test(m[1]) ? `${name} ${m[1]}` : null;
      })
      .filter((s): s is string => s !== null);
    if (server.length === 0) {
      return {
        item: { ...base, ok: false, detail: `\`${cmd.join(" ")}\` works but no notebook server is installed`, fix: jupyterFix() },
        dataDirs,
      };
    }
    return { item: { ...base, ok: true, detail: `\`${cmd.join(" ")}\` (${server.join(", ")})` }, dataDirs };
  }
  return {
    item: { ...base, ok: false, detail: "not found (tried jupyter, /usr/bin/python3 -m jupyter, python3 -m jupyter)", fix: jupyterFix() },
    dataDirs: defaultDataDirs(),
  };
}

function jupyterFix(): string {
  return isDebianLike() ? "sudo apt-get install jupyter-notebook python3-nbconvert  (or: pip install notebook)" : "pip install notebook";
}

function checkKernel(dataDirs: string[]): DoctorItem {
  const base = { id: "kernel", label: "tunelab kernel", optional: true };
  const fix = "npx tunelab kernel install --user";
  const specs = findKernelSpecs([...new Set([...dataDirs, ...defaultDataDirs()])]).filter((s) => s.isTunelab);
  const good = specs.find((s) => s.runnable);
  if (good) {
    const entry = (good.spec.argv as string[]).find((a) => a.endsWith("main.js")) ?? "";
    const other = path.resolve(entry, "..", "..", "..") !== packageRoot();
    return {
      ...base,
      ok: true,
      detail: `"${good.name}" in ${good.dir}${other ? ` (runs another tunelab copy: ${path.resolve(entry, "..", "..", "..")})` : ""}`,
    };
  }
  if (specs.length > 0) return { ...base, ok: false, detail: `"${specs[0].name}" in ${specs[0].dir} points to a missing node or dist/kernel/main.js`, fix };
  return { ...base, ok: false, detail: "not installed", fix };
}

/** The browser tunelab's own browser tests launch (test/viz, test/notebooks); tunelab itself never starts a browser. */
const TEST_CHROMIUM = "/usr/bin/chromium";

function checkChromium(): DoctorItem {
  const base = { id: "chromium", label: "Chromium", optional: true };
  const version = fs.existsSync(TEST_CHROMIUM)
    ? run(TEST_CHROMIUM, ["--version"])
        ?.split("\n")
        .find((l) => /\d+\.\d+/.test(l))
        ?.trim()
    : undefined;
  if (version) return { ...base, ok: true, detail: `${version} (${TEST_CHROMIUM}); used only by tunelab's browser tests (npm test)` };
  const fix = isDebianLike() ? "sudo apt-get install chromium" : `only tunelab's browser tests need it; they run ${TEST_CHROMIUM} and are skipped without it`;
  return { ...base, ok: false, detail: `${TEST_CHROMIUM} not found; only the browser tests need it`, fix };
}

/** Runs a command quickly; its stdout, or null when it cannot run or fails. */
function run(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return null;
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

function lastLine(text: string | null | undefined): string {
  const lines = (text ?? "").trim().split("\n");
  return lines[lines.length - 1] || "(no output)";
}

/** Formats the report as the lines doctor prints. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.items.map((i) => i.label.length));
  const lines = report.items.map((i) => {
    const mark = i.ok ? "✓" : "✗";
    const tag = i.optional && !i.ok ? " (optional)" : "";
    const time = i.ms !== undefined ? ` [${i.ms} ms]` : "";
    const head = `${mark} ${i.label.padEnd(width)}  ${i.detail}${time}${tag}`;
    return i.ok || !i.fix ? head : `${head}\n    fix: ${i.fix}`;
  });
  lines.push(
    report.ok
      ? "Ready for CPU training." + (report.items.some((i) => !i.ok) ? " Items marked ✗ (optional) add GPUs, notebooks or the browser tests." : "")
      : "Not ready: fix the items marked ✗ that are not optional.",
  );
  return lines.join("\n");
}

export const command: CliCommand = {
  name: "doctor",
  summary: "check Node, onnxruntime and its providers (cpu, webgpu, cuda), Jupyter, the kernel, Chromium",
  async run(argv: string[]): Promise<number> {
    const flags = parseFlags(argv);
    if (flags.help || flags.h) {
      console.log("usage: tunelab doctor [--json]\n\nChecks what this machine can run; exit status 0 when CPU training works.");
      return 0;
    }
    for (const key of Object.keys(flags)) {
      if (key !== "_" && key !== "json") {
        console.error(`tunelab doctor: unknown option --${key} (usage: tunelab doctor [--json])`);
        return 2;
      }
    }
    if (flags._.length > 0) {
      console.error(`tunelab doctor: unexpected argument "${flags._[0]}" (usage: tunelab doctor [--json])`);
      return 2;
    }
    const report = await runDoctor();
    console.log(flags.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return report.ok ? 0 : 1;
  },
};
