/**
 * Makes `import ... from "tunelab"` (and "tunelab/kernel") work in a notebook in any folder, both when tslab
 * type-checks the cell and when the compiled cell runs. The kernel always serves its own tunelab package, so
 * the types a cell is checked against are the code it runs.
 *
 * - Runtime: cells are compiled to CommonJS and call `require`, which ends in Module._resolveFilename; requests
 *   for "tunelab[/...]" are resolved from inside this package (Node's package self-reference through "exports").
 * - Type-checking: tslab's TypeScript 5.0 resolves modules with `moduleResolution: node10` through `ts.sys`.
 *   Paths under `<notebook dir>/node_modules/tunelab/` are forwarded to this package, the same trick tslab uses
 *   to make `import "tslab"` resolvable everywhere. Subpath exports are mapped to their "types" files because
 *   node10 resolution ignores package.json "exports".
 */
import * as fs from "node:fs";
import Module from "node:module";
import * as path from "node:path";

const PACKAGE = "tunelab";

type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string;

/** Routes runtime `require("tunelab[/sub]")` from any module to this package. Idempotent. */
export function hookRuntimeResolution(): void {
  const mod = Module as unknown as { _resolveFilename: ResolveFilename & { __tunelab?: boolean } };
  if (mod._resolveFilename.__tunelab) return;
  const original = mod._resolveFilename;
  const patched: ResolveFilename & { __tunelab?: boolean } = function (this: unknown, request, parent, isMain, options) {
    if (request === PACKAGE || request.startsWith(PACKAGE + "/")) {
      // `module` is this file, inside the tunelab package: Node resolves the name through our own "exports".
      return original.call(this, request, module, isMain, options);
    }
    return original.call(this, request, parent, isMain, options);
  };
  patched.__tunelab = true;
  mod._resolveFilename = patched;
}

/** The part of TypeScript's `sys` that module resolution reads. */
export interface TsSysLike {
  fileExists(path: string): boolean;
  directoryExists?(path: string): boolean;
  readFile(path: string, encoding?: string): string | undefined;
  realpath?(path: string): string;
  getDirectories?(path: string): string[];
  readDirectory?(path: string, ...rest: never[]): string[];
}

/**
 * Forwards `<cwd>/node_modules/tunelab/**` in a TypeScript `sys` object to `pkgRoot` (mutates `sys`).
 * `cwd` is the folder tslab compiles cells in (the kernel's working directory).
 */
export function hookTypeScriptSys(sys: TsSysLike, cwd: string, pkgRoot: string): void {
  const tagged = sys as TsSysLike & { __tunelabForward?: boolean };
  if (tagged.__tunelabForward) return;
  tagged.__tunelabForward = true;
  const virtualRoot = path.join(cwd, "node_modules", PACKAGE);
  const subpathTypes = exportTypes(pkgRoot);

  /** The real path for a path under the virtual package folder, or null when `p` is elsewhere. */
  const forward = (p: string): string | null => {
    const rel = path.relative(virtualRoot, p);
    if (rel.startsWith("..") || path.isAbsolute(rel)) return null;
    // node10 tries "<pkg>/kernel.d.ts" for "tunelab/kernel": answer with the "types" of exports["./kernel"].
    const mapped = subpathTypes.get(rel.split(path.sep).join("/"));
    return mapped ?? path.join(pkgRoot, rel);
  };

  const fileExists = sys.fileExists.bind(sys);
  sys.fileExists = (p) => fileExists(forward(p) ?? p);
  const readFile = sys.readFile.bind(sys);
  sys.readFile = (p, enc) => readFile(forward(p) ?? p, enc);
  if (sys.directoryExists) {
    const directoryExists = sys.directoryExists.bind(sys);
    const nodeModules = path.join(cwd, "node_modules");
    sys.directoryExists = (p) => p === nodeModules || directoryExists(forward(p) ?? p);
  }
  if (sys.realpath) {
    const realpath = sys.realpath.bind(sys);
    sys.realpath = (p) => realpath(forward(p) ?? p);
  }
  if (sys.getDirectories) {
    const getDirectories = sys.getDirectories.bind(sys);
    sys.getDirectories = (p) => getDirectories(forward(p) ?? p);
  }
}

/** Maps "<subpath>.d.ts" (as node10 resolution asks for it) to the absolute "types" file of each subpath export. */
function exportTypes(pkgRoot: string): Map<string, string> {
  const out = new Map<string, string>();
  let pj: { exports?: Record<string, unknown> };
  try {
    pj = JSON.parse(fs.readFileSync(path.join(pkgRoot, "package.json"), "utf8"));
  } catch {
    return out;
  }
  for (const [key, target] of Object.entries(pj.exports ?? {})) {
    if (key === "." || !key.startsWith("./") || typeof target !== "object" || target === null) continue;
    const types = (target as { types?: unknown }).types;
    if (typeof types === "string") out.set(key.slice(2) + ".d.ts", path.join(pkgRoot, types));
  }
  return out;
}
