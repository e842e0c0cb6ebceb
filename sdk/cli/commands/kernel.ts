/** `tunelab kernel install|uninstall|list`: the kernelspec that makes Jupyter offer "TypeScript (tunelab)". */
import type { CliCommand } from "../command";
import { parseFlags } from "../command";
import { DEFAULT_KERNEL_NAME, defaultDataDirs, findKernelSpecs, installKernelSpec, uninstallKernelSpec } from "../../../kernel/index";

const USAGE = `usage: tunelab kernel install [--user] [--prefix DIR] [--name ${DEFAULT_KERNEL_NAME}]
       tunelab kernel uninstall [--user] [--prefix DIR] [--name ${DEFAULT_KERNEL_NAME}]
       tunelab kernel list

install    writes the kernelspec (kernel.json runs this package's dist/kernel/main.js with this Node)
           --user: for the current user (default when not root); --prefix DIR: under DIR/share/jupyter/kernels
           --name: the folder under kernels/ (letters, digits, ".", "_", "-"; not "." or ".."; lower-cased)
uninstall  removes it again
list       kernelspecs found in Jupyter's data folders (JUPYTER_PATH, user, system)`;

/** Reads --user/--prefix/--name, rejecting values of the wrong kind. */
function installFlags(argv: string[]): { user: boolean; prefix?: string; name?: string } {
  const flags = parseFlags(argv);
  const known = new Set(["_", "user", "prefix", "name"]);
  for (const key of Object.keys(flags)) if (!known.has(key)) throw new Error(`unknown option --${key}\n${USAGE}`);
  if (flags._.length > 0) throw new Error(`unexpected argument "${flags._[0]}"\n${USAGE}`);
  for (const key of ["prefix", "name"] as const) {
    if (flags[key] !== undefined && typeof flags[key] !== "string") throw new Error(`--${key} needs a value\n${USAGE}`);
  }
  if (flags.user !== undefined && flags.user !== true) throw new Error(`--user takes no value\n${USAGE}`);
  return { user: flags.user === true, prefix: flags.prefix as string | undefined, name: flags.name as string | undefined };
}

export const command: CliCommand = {
  name: "kernel",
  summary: "install, uninstall or list the tunelab Jupyter kernel (TypeScript, on tslab)",
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
      console.log(USAGE);
      return sub === undefined ? 2 : 0;
    }
    try {
      switch (sub) {
        case "install": {
          const flags = installFlags(rest);
          const dir = installKernelSpec(flags);
          console.log(`Installed kernelspec "${flags.name ?? DEFAULT_KERNEL_NAME}" in ${dir}`);
          console.log(`Start Jupyter and choose the kernel "TypeScript (tunelab)".`);
          return 0;
        }
        case "uninstall": {
          const flags = installFlags(rest);
          const removed = uninstallKernelSpec(flags);
          console.log(removed ? `Removed kernelspec "${flags.name ?? DEFAULT_KERNEL_NAME}".` : "No such kernelspec installed there.");
          return removed ? 0 : 1;
        }
        case "list": {
          if (rest.length > 0) throw new Error(`"tunelab kernel list" takes no arguments\n${USAGE}`);
          const specs = findKernelSpecs(defaultDataDirs());
          for (const s of specs) {
            const tag = s.isTunelab ? (s.runnable ? " [tunelab]" : " [tunelab, broken: node or dist/kernel/main.js missing]") : "";
            console.log(`${s.name.padEnd(16)} ${s.dir}${tag}`);
          }
          if (specs.length === 0) console.log("no kernelspecs found");
          return 0;
        }
        default:
          console.error(`tunelab kernel: unknown subcommand "${sub}"\n${USAGE}`);
          return 2;
      }
    } catch (err) {
      console.error(`tunelab kernel ${sub}: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  },
};
