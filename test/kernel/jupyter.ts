/**
 * Test helper: the product's private Jupyter server (kernel/jupyter-server.ts: Debian's notebook 6 or
 * jupyter_server on 127.0.0.1 with a random port and token) on a temporary root folder, with the tunelab
 * kernelspec installed by the real CLI into a temporary folder first on JUPYTER_PATH. Always stopped by stop().
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KernelManager, ServerConnection, type Kernel } from "@jupyterlab/services";
import {
  jupyterPython,
  jupyterServerModule as serverModule,
  startJupyterServer as startProductServer,
  type JupyterServer as ProductServer,
} from "../../kernel/index";

/** The Python that has Jupyter (Debian's; the python3 first on PATH may be another one). */
export const JUPYTER_PYTHON = jupyterPython();

/** Which server module that Python can run, or why none (callers skip their tests with this reason). */
export function jupyterServerModule(): { module: "jupyter_server" | "notebook" } | { missing: string } {
  return serverModule(JUPYTER_PYTHON);
}

/** A running server (the product's, see kernel/jupyter-server.ts). */
export type JupyterServer = ProductServer;

const repoRoot = path.resolve(__dirname, "..", "..", "..");

/** Installs the tunelab kernelspec with the real CLI into `prefix` (so JUPYTER_PATH=prefix/share/jupyter finds it). */
export function installKernelWithCli(prefix: string): void {
  const cli = path.join(repoRoot, "dist", "sdk", "cli", "main.js");
  const r = spawnSync(process.execPath, [cli, "kernel", "install", "--prefix", prefix], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tunelab kernel install failed (${r.status}): ${r.stderr}${r.stdout}`);
}

/**
 * Starts the product's private server (kernel/jupyter-server.ts) on a fresh temporary root folder outside the repo,
 * with the tunelab kernelspec installed there by the real CLI; stop() removes the folders too.
 */
export async function startJupyterServer(module: "jupyter_server" | "notebook", timeoutMs = 60_000): Promise<JupyterServer> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-jupyter-test-"));
  const rootDir = path.join(tmp, "root");
  const prefix = path.join(tmp, "prefix");
  fs.mkdirSync(rootDir);
  installKernelWithCli(prefix);
  let server: ProductServer;
  try {
    server = await startProductServer({ rootDir, module, python: JUPYTER_PYTHON, jupyterPath: [path.join(prefix, "share", "jupyter")], timeoutMs });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return {
    ...server,
    async stop() {
      try {
        await server.stop();
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    },
  };
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
