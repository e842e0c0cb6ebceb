/** Debian's Python, which the tests use as an independent reference (numpy, torch). */
import { execFileSync } from "node:child_process";

/** The system Python: the `python3` on PATH may be another one, without Debian's packages. */
export const PYTHON = "/usr/bin/python3";

/** Whether `PYTHON` can import `module`. */
export function pythonHas(module: string): boolean {
  try {
    execFileSync(PYTHON, ["-c", `import ${module}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
