#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node
/**
 * The `tunelab` command: dispatches `tunelab <command> [args]` to one of the modules listed below. The shebang starts
 * Node with runtime/process-env.ts's PROCESS_ENV (a test keeps the two equal).
 */
import type { CliCommand } from "./command";
import { command as doctor } from "./commands/doctor";
import { command as kernel } from "./commands/kernel";
import { command as model } from "./commands/model";
import { command as train } from "./commands/train";
import { command as evaluate } from "./commands/eval";
import { command as demo } from "./commands/demo";
import { command as estimate } from "./commands/estimate";
import { command as exportRecipe } from "./commands/export-recipe";
import { command as show } from "./commands/show";
import { command as serve } from "./commands/serve";
import { command as runNotebook } from "./commands/run";
import { command as exportCmd } from "./commands/export";
import { packageVersion } from "../util/package";

/** Every subcommand, in the order `tunelab --help` lists them. */
export const commands: CliCommand[] = [demo, train, evaluate, show, estimate, runNotebook, serve, exportCmd, exportRecipe, model, doctor, kernel];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "usage: tunelab <command> [options]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `tunelab <command> --help` for a command's options.",
  ].join("\n");
}

/** Runs the CLI with `argv` (the words after `tunelab`); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    console.log(packageVersion());
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`tunelab: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return cmd.run(rest);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // A user gets the message; TUNELAB_DEBUG=1 shows where it came from.
      const debug = !!process.env.TUNELAB_DEBUG;
      console.error(err instanceof Error ? (debug ? (err.stack ?? err.message) : `tunelab: ${err.message}`) : String(err));
      process.exitCode = 1;
    },
  );
}
