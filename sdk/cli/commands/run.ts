/** `tunelab run NOTEBOOK.ipynb [-p key=value]… [-o OUT.ipynb]`: execute a notebook headless, papermill-style. */
import type { CliCommand } from "../command";
import { NotebookCellError, parseParameterArgs, runNotebook } from "../../../kernel/index";

const USAGE = `usage: tunelab run NOTEBOOK.ipynb [-p key=value]... [-o OUT.ipynb] [--server URL --token T] [--kernel NAME] [--cell-timeout SEC] [--no-plotly-js] [--plotly-images]

Runs every code cell in a Jupyter kernel and writes the executed notebook, with its outputs and a run manifest
(versions, parameters, seeds, data file hashes, device, seconds per cell) in metadata.tunelab.run.
  -p, --parameter key=value  injected after the cell tagged "parameters" as \`const key = value;\`; the value is
                             JSON where it parses (100, 2e-3, true, "text", [1,2]), else a string; repeatable
  -o, --output OUT.ipynb     where to write the executed notebook (default: NOTEBOOK.ipynb itself)
  --server URL --token T     use this Jupyter server (default: start a private local one, and stop it after)
  --kernel NAME              kernelspec (default: the notebook's, else tunelab)
  --cell-timeout SEC         fail a cell that runs longer
  --no-plotly-js             leave out the copy of plotly.js (4.6 MB) the kernel publishes once: a small notebook whose
                             figures show as their static SVG images (e.g. for committing to git)
  --plotly-images            draw the static images with plotly.js in headless Chromium (playwright-core and chromium
                             needed; without them tunelab's own SVG renderer's images stay, as by default)
Exits 1 when a cell fails, naming the cell (index and first line) and the error.`;

/** The parsed command line. */
interface RunArgs {
  notebook: string;
  output?: string;
  parameters: string[];
  server?: string;
  token?: string;
  kernel?: string;
  cellTimeout?: number;
  plotlyLibrary: boolean;
  plotlyImages: boolean;
}

function parseArgs(argv: string[]): RunArgs | "help" {
  const out: RunArgs = { notebook: "", parameters: [], plotlyLibrary: true, plotlyImages: false };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        return "help";
      case "-p":
      case "--parameter":
        out.parameters.push(value());
        break;
      case "-o":
      case "--output":
        out.output = value();
        break;
      case "--no-plotly-js":
        if (inline !== undefined) throw new Error(`--no-plotly-js takes no value\n${USAGE}`);
        out.plotlyLibrary = false;
        break;
      case "--plotly-images":
        if (inline !== undefined) throw new Error(`--plotly-images takes no value\n${USAGE}`);
        out.plotlyImages = true;
        break;
      case "--server":
        out.server = value();
        break;
      case "--token":
        out.token = value();
        break;
      case "--kernel":
        out.kernel = value();
        break;
      case "--cell-timeout": {
        const v = value();
        const n = Number(v);
        if (!(n > 0)) throw new Error(`--cell-timeout must be a positive number of seconds, got "${v}"`);
        out.cellTimeout = n;
        break;
      }
      default:
        if (arg.startsWith("-")) throw new Error(`unknown option ${arg}\n${USAGE}`);
        positional.push(arg);
    }
  }
  if (positional.length !== 1) throw new Error(`expected one notebook, got ${positional.length}\n${USAGE}`);
  out.notebook = positional[0];
  if (!/\.ipynb$/i.test(out.notebook)) throw new Error(`"${out.notebook}" is not a .ipynb file\n${USAGE}`);
  if ((out.server === undefined) !== (out.token === undefined)) throw new Error(`--server and --token go together\n${USAGE}`);
  return out;
}

export const command: CliCommand = {
  name: "run",
  summary: "execute a notebook headless with parameters (papermill-style) and record a run manifest",
  async run(argv) {
    let args: RunArgs | "help";
    try {
      args = parseArgs(argv);
    } catch (e) {
      console.error(`tunelab run: ${e instanceof Error ? e.message : String(e)}`);
      return 2;
    }
    if (args === "help") {
      console.log(USAGE);
      return 0;
    }
    // Ctrl-C or a kill: exit through process.exit, whose "exit" listeners stop the private Jupyter server.
    const onSignal = (signal: NodeJS.Signals): void => {
      console.error(`tunelab run: ${signal}, stopping`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      const result = await runNotebook({
        input: args.notebook,
        output: args.output,
        parameters: parseParameterArgs(args.parameters),
        server: args.server !== undefined && args.token !== undefined ? { url: args.server, token: args.token } : undefined,
        kernel: args.kernel,
        cellTimeoutSec: args.cellTimeout,
        plotlyLibrary: args.plotlyLibrary,
        staticImages: args.plotlyImages ? "plotly" : "tunelab",
        log: (line) => console.error(line),
      });
      console.log(`wrote ${result.output} (${result.manifest.cells.length} cells in ${result.manifest.seconds.toFixed(1)} s)`);
      return 0;
    } catch (e) {
      console.error(`tunelab run: ${e instanceof NotebookCellError ? e.message : e instanceof Error ? e.message : String(e)}`);
      return 1;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
};
