/**
 * The tunelab kernelspec: where Jupyter looks for kernels, what kernel.json says, installing and finding it.
 * Pure file-system code (no Python needed); Jupyter's own search order is followed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { deflateSync } from "node:zlib";
import { packageRoot, packageVersion, PROCESS_ENV } from "../sdk/index";

/** The kernel name used when none is given (the folder name under `kernels/`). */
export const DEFAULT_KERNEL_NAME = "tunelab";

/** The contents of a kernel.json written by tunelab. */
export interface KernelSpec {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: "signal";
  /** Environment of the kernel process (Jupyter's kernelspec `env`): tunelab's PROCESS_ENV. */
  env: Record<string, string>;
  metadata: { tunelab: { version: string; packageRoot: string } };
}

/** A kernelspec found on disk. */
export interface FoundKernelSpec {
  name: string;
  /** The folder holding kernel.json. */
  dir: string;
  spec: { argv?: unknown; display_name?: unknown; language?: unknown; [key: string]: unknown };
  /** True when argv points at a tunelab kernel entry point (dist/kernel/main.js). */
  isTunelab: boolean;
  /** For a tunelab kernel: true when the node binary and the entry point it names both exist. */
  runnable: boolean;
}

/** The compiled kernel entry point that kernel.json runs. */
export function kernelEntryPoint(): string {
  return path.join(packageRoot(), "dist", "kernel", "main.js");
}

/** Jupyter's per-user data folder (JUPYTER_DATA_DIR, else the platform default jupyter_core uses). */
export function userDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.JUPYTER_DATA_DIR) return env.JUPYTER_DATA_DIR;
  const home = os.homedir();
  if (process.platform === "darwin") return path.join(home, "Library", "Jupyter");
  if (process.platform === "win32") return path.join(env.APPDATA ?? path.join(home, "AppData", "Roaming"), "jupyter");
  return path.join(env.XDG_DATA_HOME || path.join(home, ".local", "share"), "jupyter");
}

/** The system-wide Jupyter data folder that `jupyter kernelspec install` uses without --user. */
export function systemDataDir(): string {
  if (process.platform === "win32") return path.join(process.env.PROGRAMDATA ?? "C:\\ProgramData", "jupyter");
  return "/usr/local/share/jupyter";
}

/**
 * Jupyter data folders in Jupyter's search order when Jupyter itself cannot be asked: JUPYTER_PATH, the user
 * folder, then the usual system prefixes. `jupyter --paths --json` gives the authoritative list (doctor uses it).
 */
export function defaultDataDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.JUPYTER_PATH ?? "").split(path.delimiter).filter(Boolean);
  dirs.push(userDataDir(env));
  if (process.platform === "win32") dirs.push(systemDataDir());
  else dirs.push("/usr/local/share/jupyter", "/usr/share/jupyter");
  return [...new Set(dirs)];
}

/** Where to install: `--prefix DIR` -> DIR/share/jupyter, `--user` -> the user folder, else system (user if not root). */
export function kernelsDirFor(options: { user?: boolean; prefix?: string }): string {
  if (options.prefix) return path.join(path.resolve(options.prefix), "share", "jupyter", "kernels");
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (options.user || !root) return path.join(userDataDir(), "kernels");
  return path.join(systemDataDir(), "kernels");
}

/**
 * The folder of kernelspec `name` under `kernelsDir`, or an error when the name is not one Jupyter accepts
 * (jupyter_client: letters, digits, ".", "_", "-", case-insensitive, stored lower-cased) or when the folder,
 * links followed, would not sit directly inside `kernelsDir`.
 */
export function kernelSpecDir(kernelsDir: string, name: string): string {
  if (!/^[a-z0-9._-]+$/i.test(name) || name === "." || name === "..") {
    throw new Error(`kernel name "${name}" is invalid: use letters, digits, ".", "_" or "-", and not "." or ".." (Jupyter's rule)`);
  }
  const parent = path.resolve(kernelsDir);
  const dir = path.join(parent, name.toLowerCase());
  // kernels/NAME may be a link only to another folder directly inside kernels/ (a broken link leads nowhere).
  const target = isLink(dir) ? realPathOrNull(dir) : dir;
  if (path.dirname(dir) !== parent || (target !== dir && (target === null || path.dirname(target) !== fs.realpathSync(parent)))) {
    throw new Error(`kernel name "${name}": ${dir} is not a folder directly inside ${parent} (it leads to ${target ?? "a broken link"})`);
  }
  return dir;
}

/** The kernel.json for this package and this Node binary. */
export function makeKernelSpec(nodePath: string = process.execPath): KernelSpec {
  return {
    argv: [nodePath, kernelEntryPoint(), "{connection_file}"],
    display_name: "TypeScript (tunelab)",
    language: "typescript",
    interrupt_mode: "signal",
    env: { ...PROCESS_ENV },
    metadata: { tunelab: { version: packageVersion(), packageRoot: packageRoot() } },
  };
}

/** Options of installKernelSpec(). */
export interface InstallOptions {
  /** Install for the current user (the default when not root). */
  user?: boolean;
  /** Install under PREFIX/share/jupyter/kernels (e.g. a virtualenv or a test folder). */
  prefix?: string;
  /** Kernel name, i.e. the folder name; default "tunelab". */
  name?: string;
  /** Node binary written into argv; default the one running now. */
  nodePath?: string;
}

/** Writes kernel.json and logos; returns the kernelspec folder. Replaces an existing spec of the same name. */
export function installKernelSpec(options: InstallOptions = {}): string {
  const dir = kernelSpecDir(kernelsDirFor(options), options.name ?? DEFAULT_KERNEL_NAME);
  const entry = kernelEntryPoint();
  if (!fs.existsSync(entry)) throw new Error(`kernel entry point ${entry} does not exist: run \`npm run build\` first`);
  fs.mkdirSync(dir, { recursive: true });
  const spec = makeKernelSpec(options.nodePath);
  // Write then rename, so a Jupyter server listing kernels never reads half a file.
  const tmp = path.join(dir, `.kernel.json.${process.pid}`);
  fs.writeFileSync(tmp, JSON.stringify(spec, null, 2) + "\n");
  fs.renameSync(tmp, path.join(dir, "kernel.json"));
  fs.writeFileSync(path.join(dir, "logo-svg.svg"), LOGO_SVG);
  fs.writeFileSync(path.join(dir, "logo-64x64.png"), logoPng(64));
  fs.writeFileSync(path.join(dir, "logo-32x32.png"), logoPng(32));
  return dir;
}

/** Removes an installed kernelspec folder; returns whether one was there. */
export function uninstallKernelSpec(options: { user?: boolean; prefix?: string; name?: string } = {}): boolean {
  const dir = kernelSpecDir(kernelsDirFor(options), options.name ?? DEFAULT_KERNEL_NAME);
  if (!fs.existsSync(path.join(dir, "kernel.json"))) return false;
  fs.rmSync(dir, { recursive: true, force: true });
  return true;
}

/** Every kernelspec under `dataDirs` (first one wins per name, as in Jupyter), tunelab ones flagged. */
export function findKernelSpecs(dataDirs: string[] = defaultDataDirs()): FoundKernelSpec[] {
  const seen = new Map<string, FoundKernelSpec>();
  for (const data of dataDirs) {
    const kernels = path.join(data, "kernels");
    let names: string[];
    try {
      names = fs.readdirSync(kernels);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const file = path.join(kernels, name, "kernel.json");
      if (seen.has(name) || !fs.existsSync(file)) continue;
      let spec: FoundKernelSpec["spec"];
      try {
        spec = JSON.parse(fs.readFileSync(file, "utf8"));
      } catch {
        continue; // Jupyter skips unreadable specs too
      }
      const argv = Array.isArray(spec.argv) ? spec.argv.map(String) : [];
      const entry = argv.find((a) => /[\\/]dist[\\/]kernel[\\/]main\.js$/.test(a));
      // A stale spec whose package folder is gone still counts as tunelab's (by name) so doctor can say so.
      const isTunelab = entry !== undefined && (isTunelabPackage(path.resolve(path.dirname(entry), "..", "..")) || name.startsWith("tunelab"));
      const runnable = isTunelab && entry !== undefined && fs.existsSync(entry) && argv.length > 0 && fs.existsSync(argv[0]);
      seen.set(name, { name, dir: path.join(kernels, name), spec, isTunelab, runnable });
    }
  }
  return [...seen.values()];
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function realPathOrNull(p: string): string | null {
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}

function isTunelabPackage(dir: string): boolean {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).name === "tunelab";
  } catch {
    return false;
  }
}

/** The logo: a falling loss curve on a dark tile. */
const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">
<rect width="64" height="64" rx="12" fill="#1f3a5f"/>
<polyline points="10,14 20,34 30,42 42,47 54,50" fill="none" stroke="#f5b942" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"/>
</svg>
`;

/** Renders the same logo as an RGBA PNG of `size` x `size` pixels (tiny encoder: one IDAT, no filtering). */
function logoPng(size: number): Buffer {
  const pts: Array<[number, number]> = [
    [10, 14],
    [20, 34],
    [30, 42],
    [42, 47],
    [54, 50],
  ];
  const scale = size / 64;
  const raw = Buffer.alloc((size * 4 + 1) * size);
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter type: none
    for (let x = 0; x < size; x++) {
      const px = (x + 0.5) / scale;
      const py = (y + 0.5) / scale;
      let rgba = [0, 0, 0, 0];
      if (insideRoundedSquare(px, py, 64, 12)) rgba = [0x1f, 0x3a, 0x5f, 255];
      for (let i = 0; i + 1 < pts.length; i++) {
        if (distToSegment(px, py, pts[i], pts[i + 1]) <= 3) rgba = [0xf5, 0xb9, 0x42, 255];
      }
      raw.set(rgba, y * (size * 4 + 1) + 1 + x * 4);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(raw)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

function insideRoundedSquare(x: number, y: number, s: number, r: number): boolean {
  if (x < 0 || y < 0 || x > s || y > s) return false;
  const cx = Math.min(Math.max(x, r), s - r);
  const cy = Math.min(Math.max(y, r), s - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
}

function distToSegment(x: number, y: number, a: [number, number], b: [number, number]): number {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const t = Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - (a[0] + t * dx), y - (a[1] + t * dy));
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
