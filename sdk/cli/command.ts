/** One `tunelab <name>` subcommand. Each lives in sdk/cli/commands/<name>.ts and is listed in sdk/cli/main.ts. */
export interface CliCommand {
  /** The word after `tunelab`, e.g. "doctor". */
  name: string;
  /** One line for `tunelab --help`. */
  summary: string;
  /** Runs the command with the arguments after its name; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** Parses `--key value`, `--key=value` and `--flag` arguments; positional ones land in `_`. */
export function parseFlags(argv: string[]): { _: string[]; [key: string]: string | boolean | string[] } {
  const out: { _: string[]; [key: string]: string | boolean | string[] } = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      out._.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    if (eq > 0) out[arg.slice(2, eq)] = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) out[arg.slice(2)] = argv[++i];
    else out[arg.slice(2)] = true;
  }
  return out;
}

/** Throws on any `--key` not in `allowed`, naming it, with the command's usage. */
export function rejectUnknownFlags(flags: ReturnType<typeof parseFlags>, allowed: ReadonlySet<string>, usage: string): void {
  for (const key of Object.keys(flags)) if (key !== "_" && !allowed.has(key)) throw new Error(`unknown option --${key}\n${usage}`);
}
