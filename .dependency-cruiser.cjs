/**
 * The dependency rules of DESIGN.md ("Layout"): sdk layers import only downward, kernel uses only the SDK's public
 * surface, nothing imports the CLI, and there are no cycles. Checked by test/structure/layers.test.ts.
 */
const LAYERS = ["util", "viz", "graph", "runtime", "io", "models", "data", "infer", "eval", "train", "export", "plan", "cli"];

const upward = LAYERS.map((layer, i) => ({
  name: `${layer}-imports-downward`,
  comment: `sdk/${layer} may import only the layers below it: ${LAYERS.slice(0, i).join(", ") || "none"}`,
  severity: "error",
  from: { path: `^sdk/${layer}/` },
  to: { path: `^sdk/(${LAYERS.slice(i + 1).join("|") || "(?!)"})/` },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "sdk-imports-no-kernel",
      comment: "the SDK knows nothing of Jupyter (the kernel registers a display sink); only the CLI, beside the kernel, installs it",
      severity: "error",
      from: { path: "^sdk/", pathNot: "^sdk/cli/" },
      to: { path: "^kernel/" },
    },
    {
      name: "layers-do-not-import-the-public-index",
      comment: "sdk/index.ts is the public surface, for users and the kernel; layers import each other directly",
      severity: "error",
      from: { path: "^sdk/[^/]+/" },
      to: { path: "^sdk/index\\.ts$" },
    },
    {
      name: "kernel-uses-the-public-surface",
      comment: "kernel/ imports only sdk/index.ts (what `import \"tunelab\"` gives a user)",
      severity: "error",
      from: { path: "^kernel/" },
      to: { path: "^sdk/", pathNot: "^sdk/index\\.ts$" },
    },
    {
      name: "cli-uses-the-kernel-entry",
      comment: "the CLI reaches the kernel through kernel/index.ts (the `tunelab/kernel` export) only",
      severity: "error",
      from: { path: "^sdk/cli/" },
      to: { path: "^kernel/", pathNot: "^kernel/index\\.ts$" },
    },
    {
      name: "no-cycles",
      comment: "no module imports itself through others (and so no two folders import each other)",
      severity: "error",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    includeOnly: "^(sdk|kernel)/",
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    moduleSystems: ["cjs", "es6"],
  },
};
