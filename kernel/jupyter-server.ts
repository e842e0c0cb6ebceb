/**
 * A private, local Jupyter server (jupyter_server, or Debian's notebook 6) for headless runs: 127.0.0.1, a free
 * port, a random token, its own data/config/runtime folders, extra kernelspec folders first on JUPYTER_PATH.
 * `stop()` always shuts it down (REST shutdown, then SIGTERM, then SIGKILL) and removes its temporary folders.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** The Python that has Jupyter: TUNELAB_JUPYTER_PYTHON, else Debian's /usr/bin/python3, else python3 on PATH. */
export function jupyterPython(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TUNELAB_JUPYTER_PYTHON) return env.TUNELAB_JUPYTER_PYTHON;
  return fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

/** The server module `python` can run (jupyter_server first, then notebook), or why none can. */
export function jupyterServerModule(python: string = jupyterPython()): { module: "jupyter_server" | "notebook" } | { missing: string } {
  for (const module of ["jupyter_server", "notebook"] as const) {
    const r = spawnSync(python, ["-c", `import ${module}`], { stdio: "ignore" });
    if (r.status === 0) return { module };
  }
  return { missing: `${python} has neither jupyter_server nor notebook (pip install jupyter_server, or Debian: apt-get install jupyter-notebook)` };
}

/** A running local server. */
export interface JupyterServer {
  baseUrl: string;
  token: string;
  /** The folder the server serves (session paths are relative to it; kernels start in it). */
  rootDir: string;
  /** Everything the server printed so far (for failure messages). */
  log(): string;
  /** Shuts the server down and removes its temporary folders; safe to call twice. */
  stop(): Promise<void>;
}

/** Options of startJupyterServer(). */
export interface StartJupyterOptions {
  /** The folder to serve. */
  rootDir: string;
  /** Kernelspec data folders searched before the usual ones (each holds kernels/NAME/kernel.json). */
  jupyterPath?: string[];
  /** Which server module; default the first one `python` has. */
  module?: "jupyter_server" | "notebook";
  /** The Python to run it with; default jupyterPython(). */
  python?: string;
  /** How long to wait for its REST API; default 60 s. */
  timeoutMs?: number;
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

/** Starts a server serving `rootDir`; resolves when its REST API answers, throws with its log when it does not. */
export async function startJupyterServer(options: StartJupyterOptions): Promise<JupyterServer> {
  const python = options.python ?? jupyterPython();
  let module = options.module;
  if (!module) {
    const found = jupyterServerModule(python);
    if ("missing" in found) throw new Error(`cannot start a Jupyter server: ${found.missing}`);
    module = found.module;
  }
  const rootDir = path.resolve(options.rootDir);
  if (!fs.statSync(rootDir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`Jupyter root folder ${rootDir} does not exist`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-jupyter-"));
  for (const d of ["data", "config", "runtime"]) fs.mkdirSync(path.join(tmp, d));

  const port = await freePort();
  const token = randomBytes(16).toString("hex");
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
  if (process.getuid?.() === 0) args.push("--allow-root");
  const jupyterPathDirs = [...(options.jupyterPath ?? []), ...(process.env.JUPYTER_PATH ?? "").split(path.delimiter).filter(Boolean)];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_PATH: jupyterPathDirs.join(path.delimiter),
    JUPYTER_DATA_DIR: path.join(tmp, "data"),
    JUPYTER_CONFIG_DIR: path.join(tmp, "config"),
    JUPYTER_RUNTIME_DIR: path.join(tmp, "runtime"),
    JUPYTER_PLATFORM_DIRS: "0",
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
  };
  const proc: ChildProcess = spawn(python, args, { cwd: rootDir, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.once("error", (e) => (output += `\n${e.message}`));
  const baseUrl = `http://127.0.0.1:${port}/`;
  // If this process exits without stop() (process.exit on a signal, an uncaught error such as EPIPE), the server
  // must not outlive it: kill() is synchronous, so it works in an "exit" listener.
  const killOnExit = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
  };
  process.on("exit", killOnExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off("exit", killOnExit);
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
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

  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    const ok = await fetch(`${baseUrl}api/status`, { headers: { Authorization: `token ${token}` } })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { baseUrl, token, rootDir, log: () => output, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`Jupyter server (${python} -m ${module}) did not come up within ${timeoutMs / 1000} s:\n${output.slice(-4000)}`);
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  const done = await Promise.race([p.then(() => true), t]);
  clearTimeout(timer);
  return done;
}
