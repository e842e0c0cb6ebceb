/**
 * Test helper: a real, private Jupyter server (Debian's notebook 6 or jupyter_server) on 127.0.0.1 with a
 * random port and token, a temporary root folder, and Jupyter paths pointing into a temporary folder where
 * the tunelab kernelspec is installed by the real CLI. Always stopped by stop(), even after failures.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { KernelManager, ServerConnection, type Kernel } from "@jupyterlab/services";

/** The Python that has Jupyter (Debian's; the python3 first on PATH may be another one). */
export const JUPYTER_PYTHON = fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** Which server module that Python can run, or null (callers skip their tests with this reason). */
export function jupyterServerModule(): { module: "jupyter_server" | "notebook" } | { missing: string } {
  for (const module of ["jupyter_server", "notebook"] as const) {
    const r = spawnSync(JUPYTER_PYTHON, ["-c", `import ${module}`], { stdio: "ignore" });
    if (r.status === 0) return { module };
  }
  return { missing: `${JUPYTER_PYTHON} has neither jupyter_server nor notebook (Debian: apt-get install jupyter-notebook)` };
}

/** A running server. */
export interface JupyterServer {
  baseUrl: string;
  token: string;
  /** The server's root folder (notebooks and kernels start here): a fresh temp folder outside the repo. */
  rootDir: string;
  /** Everything the server printed so far (for failure messages). */
  log(): string;
  /** Shuts the server down (REST shutdown, then SIGTERM, then SIGKILL) and removes the temp folders. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (asked from the OS). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const repoRoot = path.resolve(__dirname, "..", "..", "..");

/** Installs the tunelab kernelspec with the real CLI into `prefix` (so JUPYTER_PATH=prefix/share/jupyter finds it). */
export function installKernelWithCli(prefix: string): void {
  const cli = path.join(repoRoot, "dist", "sdk", "cli", "main.js");
  const r = spawnSync(process.execPath, [cli, "kernel", "install", "--prefix", prefix], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tunelab kernel install failed (${r.status}): ${r.stderr}${r.stdout}`);
}

/** Starts a server with the tunelab kernel installed; resolves when its REST API answers. */
export async function startJupyterServer(module: "jupyter_server" | "notebook", timeoutMs = 60_000): Promise<JupyterServer> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-jupyter-"));
  const rootDir = path.join(tmp, "root");
  const prefix = path.join(tmp, "prefix");
  for (const d of [rootDir, prefix, path.join(tmp, "data"), path.join(tmp, "config"), path.join(tmp, "runtime")]) fs.mkdirSync(d, { recursive: true });
  installKernelWithCli(prefix);

  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const isRoot = process.getuid?.() === 0;
  const args =
    module === "jupyter_server"
      ? [
          "-m",
          "jupyter_server",
          "--ServerApp.ip=127.0.0.1",
          `--ServerApp.port=${port}`,
          "--ServerApp.port_retries=0",
          `--ServerApp.token=${token}`,
          `--ServerApp.root_dir=${rootDir}`,
          "--ServerApp.open_browser=False",
        ]
      : ["-m", "notebook", "--no-browser", "--ip=127.0.0.1", `--port=${port}`, "--port-retries=0", `--NotebookApp.token=${token}`, `--notebook-dir=${rootDir}`];
  if (isRoot) args.push("--allow-root");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_PATH: path.join(prefix, "share", "jupyter"),
    JUPYTER_DATA_DIR: path.join(tmp, "data"),
    JUPYTER_CONFIG_DIR: path.join(tmp, "config"),
    JUPYTER_RUNTIME_DIR: path.join(tmp, "runtime"),
    JUPYTER_PLATFORM_DIRS: "0",
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
  };
  const proc: ChildProcess = spawn(JUPYTER_PYTHON, args, { cwd: rootDir, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const baseUrl = `http://127.0.0.1:${port}/`;

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (proc.exitCode === null && proc.signalCode === null) {
      // Ask politely first: the server then shuts its kernels down too.
      await fetch(`${baseUrl}api/shutdown`, { method: "POST", headers: { Authorization: `token ${token}` } }).catch(() => undefined);
      if (!(await within(exited, 10_000))) {
        proc.kill("SIGTERM");
        if (!(await within(exited, 5_000))) {
          proc.kill("SIGKILL");
          await within(exited, 5_000);
        }
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  };

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    const ok = await fetch(`${baseUrl}api/status`, { headers: { Authorization: `token ${token}` } })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { baseUrl, token, rootDir, log: () => output, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`Jupyter server (${module}) did not come up within ${timeoutMs / 1000} s:\n${output}`);
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  const done = await Promise.race([p.then(() => true), t]);
  clearTimeout(timer);
  return done;
}

/** A running server with one started tunelab kernel, and how to stop both. */
export interface KernelSession {
  server: JupyterServer;
  manager: KernelManager;
  kernel: Kernel.IKernelConnection;
  /** Shuts the kernel, the manager's polling and the server down (always all three). */
  stop(): Promise<void>;
}

/** Starts a server and a tunelab kernel in it, with a real client (@jupyterlab/services). */
export async function startKernelSession(module: "jupyter_server" | "notebook"): Promise<KernelSession> {
  const server = await startJupyterServer(module);
  const serverSettings = ServerConnection.makeSettings({ baseUrl: server.baseUrl, token: server.token, appendToken: true });
  const manager = new KernelManager({ serverSettings });
  await manager.ready;
  const kernel = await manager.startNew({ name: "tunelab" });
  return {
    server,
    manager,
    kernel,
    async stop() {
      try {
        if (!kernel.isDisposed) await kernel.shutdown().catch(() => undefined);
        kernel.dispose();
        manager.dispose();
      } finally {
        await server.stop();
      }
    },
  };
}
