/**
 * The emitted .d.ts files must be readable by TypeScript 5.0, the compiler tslab checks notebook cells with
 * (@tslab/typescript-for-tslab 5.0.4), while the package itself is built with TypeScript 5.9.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";

const repo = path.resolve(__dirname, "..", "..", "..");
const dist = path.join(repo, "dist");

type Ts = typeof import("typescript");
/** tslab's own TypeScript (resolved from tslab, the instance its kernel uses). */
const ts: Ts = createRequire(require.resolve("tslab/dist/converter"))("@tslab/typescript-for-tslab");

function declarationFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".d.ts"))
    .map((f) => path.join(dir, f));
}

test("tslab's compiler is TypeScript 5.0", () => {
  assert.match(ts.version, /^5\.0\./);
});

test("every emitted SDK and kernel .d.ts type-checks under TypeScript 5.0 (skipLibCheck off)", { timeout: 120_000 }, () => {
  const roots = [...declarationFiles(path.join(dist, "sdk")), ...declarationFiles(path.join(dist, "kernel"))];
  assert.ok(
    roots.some((f) => f.endsWith(path.join("kernel", "index.d.ts"))),
    "dist/kernel/index.d.ts missing: build first",
  );

  // A consumer outside the repo, importing the package by name like a notebook does.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-dts-"));
  try {
    fs.mkdirSync(path.join(tmp, "node_modules"));
    fs.symlinkSync(repo, path.join(tmp, "node_modules", "tunelab"), "dir");
    const hasIndex = fs.existsSync(path.join(dist, "sdk", "index.d.ts"));
    const consumer = path.join(tmp, "use.ts");
    fs.writeFileSync(
      consumer,
      [
        'import { display, newDisplayId, type MimeBundle } from "tunelab/kernel";',
        hasIndex ? 'import * as tunelab from "tunelab";\nexport const sdk: object = tunelab;' : "",
        'const bundle: MimeBundle = { "text/plain": "x" };',
        "export const id: string = newDisplayId();",
        "export const shown: Promise<unknown> = display(bundle, { raw: true });",
      ].join("\n"),
    );
    const program = ts.createProgram([consumer, ...roots], {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2022.d.ts"],
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      esModuleInterop: true,
      typeRoots: [path.join(repo, "node_modules", "@types")],
      types: ["node"],
    });
    const ours = ts.getPreEmitDiagnostics(program).filter((d) => {
      const file = d.file ? fs.realpathSync(d.file.fileName) : "";
      return file === "" || file.startsWith(dist + path.sep) || file === fs.realpathSync(consumer);
    });
    const text = ours.map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      return `${d.file ? path.relative(repo, fs.realpathSync(d.file.fileName)) : "(global)"}${where ? `:${where.line + 1}:${where.character + 1}` : ""} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
    assert.deepEqual(text, [], `TypeScript ${ts.version} cannot read these emitted declarations:\n${text.join("\n")}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
