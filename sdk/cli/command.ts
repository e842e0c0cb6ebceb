/** One `tunelab <name>` subcommand. Each lives in sdk/cli/commands/<name>.ts and is listed in sdk/cli/main.ts. */
export interface CliCommand {
  /** The word after `tunelab`, e.g. "doctor". */
  name: string;
  /** One line for `tunelab --help`. */
  summary: string;
  /** Runs the command with the arguments after its name; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** Parsed flags: `--key value` / `--key=value` / `--switch` by key, and the words that are not flags in `_`. */
export type CliFlags = { _: string[]; [key: string]: string | boolean | string[] };

/** Parses `--key value`, `--key=value` and `--flag` arguments; positional ones land in `_`. */
export function parseFlags(argv: string[]): CliFlags {
  const out: CliFlags = { _: [] };
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
export function rejectUnknownFlags(flags: CliFlags, allowed: ReadonlySet<string>, usage: string): void {
  for (const key of Object.keys(flags)) if (key !== "_" && !allowed.has(key)) throw new Error(`unknown option --${key}\n${usage}`);
}

/** A command's flags with unknown ones refused; null when `--help` asked for the usage, which is then printed. */
export function commandFlags(argv: string[], allowed: ReadonlySet<string>, usage: string): CliFlags | null {
  const flags = parseFlags(argv);
  rejectUnknownFlags(flags, allowed, usage);
  if (!flags.help) return flags;
  console.log(usage);
  return null;
}

/** Flag `name`'s string value (undefined when absent); a bare `--name` or an empty value is an error naming it. */
export function stringFlag(flags: CliFlags, name: string, usage: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") throw new Error(`--${name} needs a value\n${usage}`);
  return v;
}
