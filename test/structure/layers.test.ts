/** The dependency rules of DESIGN.md, checked by dependency-cruiser (.dependency-cruiser.cjs) on the sources. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";

const root = path.resolve(__dirname, "../../..");

interface Cruise {
  modules: { source: string; dependencies: { resolved: string; coreModule: boolean; couldNotResolve: boolean }[] }[];
  summary: { violations: { from: string; to: string; rule: { name: string }; cycle?: { name: string }[] }[] };
}

function cruise(): Cruise {
  const bin = path.join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
  const out = execFileSync(process.execPath, [bin, "--config", ".dependency-cruiser.cjs", "--output-type", "json", "sdk", "kernel"], {
    cwd: root,
    maxBuffer: 256 << 20,
  });
  return JSON.parse(out.toString("utf8")) as Cruise;
}

const result = cruise();

test("no import breaks a dependency rule (layers downward, kernel through the public surface, no cycles)", () => {
  const lines = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.cycle ? v.cycle.map((c) => c.name).join(" -> ") : v.to}`);
  assert.deepEqual(lines, []);
});

test("every sdk folder is a layer the rules know", () => {
  const config = createRequire(__filename)(path.join(root, ".dependency-cruiser.cjs")) as { forbidden: { name: string }[] };
  const ruled = new Set(config.forbidden.map((r) => r.name.replace(/-imports-downward$/, "")));
  const folders = fs
    .readdirSync(path.join(root, "sdk"), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  assert.deepEqual(
    folders.filter((f) => !ruled.has(f)),
    [],
  );
});

test("no two folders (sdk layers, kernel) import each other, directly or through others", () => {
  const edges = new Map<string, Set<string>>();
  for (const m of result.modules) {
    const from = folderOf(m.source);
    for (const d of m.dependencies) {
      if (d.coreModule || d.couldNotResolve || !/^(sdk|kernel)\//.test(d.resolved)) continue;
      const to = folderOf(d.resolved);
      if (to !== from) (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(to);
    }
  }
  assert.ok(edges.size > 10, `expected the folder graph of sdk/ and kernel/, got ${edges.size} folders`);
  assert.ok(edges.get("sdk/cli")?.has("kernel"), "the graph should see the CLI's use of the kernel");
  assert.deepEqual(folderCycles(edges), []);
});

/** A module's folder at layer granularity: sdk/data/read/csv.ts -> sdk/data; sdk/index.ts -> sdk; kernel/x.ts -> kernel. */
function folderOf(file: string): string {
  const parts = file.split("/");
  return parts[0] === "sdk" && parts.length > 2 ? `sdk/${parts[1]}` : parts.length > 1 ? parts[0] : file;
}

/** The strongly connected components with more than one folder (Tarjan). */
function folderCycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return cycles;
}
