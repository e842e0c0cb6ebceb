#!/usr/bin/env node
/** Entry point that kernel.json runs: `node dist/kernel/main.js {connection_file}`. */
import { startKernel } from "./server";

const connectionFile = process.argv[2];
if (!connectionFile || connectionFile.startsWith("-")) {
  console.error("usage: node dist/kernel/main.js CONNECTION_FILE  (started by Jupyter; install with `tunelab kernel install`)");
  process.exit(2);
}
startKernel(connectionFile).catch((err: unknown) => {
  console.error("tunelab kernel failed to start:", err);
  process.exit(1);
});
