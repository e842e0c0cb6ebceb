/** This package's own metadata: where it is installed and its version (for the CLI, the kernel and run manifests). */
import * as fs from "node:fs";
import * as path from "node:path";

/** The root folder of this tunelab package (holds package.json), found by walking up from this file. */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, "utf8")).name === "tunelab") return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`tunelab package.json not found above ${__dirname}`);
  }
}

/** The tunelab package version from package.json. */
export function packageVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")).version as string;
}
