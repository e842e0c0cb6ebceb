/** `tunelab show DIR [--json]`: a training folder's summary and loss history, whether tunelab or LLaMA-Factory wrote it. */
import { parseFlags, rejectUnknownFlags, type CliCommand } from "../command";
import { RunLogs } from "../../plan/run-logs";
import { textTable } from "../../viz/table";

const USAGE = "usage: tunelab show DIR [--json]   (DIR: a tunelab output_dir or a LLaMA-Factory output folder)";
const FLAGS = new Set(["json", "help"]);

const fmt = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(2) : x.toFixed(4));

export const command: CliCommand = {
  name: "show",
  summary: "summary and loss history of a training folder (tunelab's or LLaMA-Factory's)",
  async run(argv) {
    const flags = parseFlags(argv);
    rejectUnknownFlags(flags, FLAGS, USAGE);
    if (flags.help || flags._.length !== 1) {
      (flags.help ? console.log : console.error)(USAGE);
      return flags.help ? 0 : 2;
    }
    const logs = RunLogs.read(flags._[0]);
    if (flags.json) {
      console.log(JSON.stringify(logs.data, null, 2));
      return 0;
    }
    console.log(textTable(["run", ""], logs.rows()));
    const evalAt = new Map(logs.evals.map((e) => [e.step, e.loss]));
    const steps = [...new Set([...logs.history.map((h) => h.step), ...evalAt.keys()])].sort((a, b) => a - b);
    if (steps.length > 0) {
      const byStep = new Map(logs.history.map((h) => [h.step, h]));
      const rows = steps.map((s) => [s, fmt(byStep.get(s)?.loss), fmt(evalAt.get(s)), fmt(byStep.get(s)?.learningRate)]);
      console.log();
      console.log(textTable(["step", "loss", "eval_loss", "lr"], rows));
    }
    return 0;
  },
};
