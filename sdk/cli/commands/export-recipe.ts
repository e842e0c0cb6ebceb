/**
 * `tunelab export-recipe RECIPE.yaml --to llamafactory --out DIR [--nodes N] [--gpus-per-node G]
 * [--deepspeed zero2|zero3|zero3-offload] [--model PATH] [--image IMAGE] [--overwrite]`: the recipe as a LLaMA-Factory job
 * (docs/scale-out.md).
 */
import { commandFlags, stringFlag, type CliCommand } from "../command";
import { DEEPSPEED_STAGES, exportLlamaFactory, type DeepSpeedStage } from "../../export/llamafactory";
import { readRecipe } from "../../train/recipe";

const USAGE =
  "usage: tunelab export-recipe RECIPE.yaml --to llamafactory --out DIR [--nodes N] [--gpus-per-node G] " +
  `[--deepspeed ${DEEPSPEED_STAGES.join("|")}] [--model PATH] [--image IMAGE] [--overwrite]`;
const FLAGS = new Set(["to", "out", "nodes", "gpus-per-node", "deepspeed", "model", "image", "overwrite", "help"]);

/** A whole-number flag, or an error naming it. */
function count(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "string" ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${flag} must be a positive whole number, got ${JSON.stringify(value)}\n${USAGE}`);
  return n;
}

export const command: CliCommand = {
  name: "export-recipe",
  summary: "write a recipe as a LLaMA-Factory job (YAML, data, DeepSpeed, torchrun/Slurm/Kubeflow launchers)",
  async run(argv) {
    const flags = commandFlags(argv, FLAGS, USAGE);
    if (!flags) return 0;
    if (flags._.length !== 1 || flags.to === undefined || flags.out === undefined) {
      console.error(USAGE);
      return 2;
    }
    if (flags.to !== "llamafactory") throw new Error(`--to must be llamafactory, got ${JSON.stringify(flags.to)}\n${USAGE}`);
    const deepspeed = stringFlag(flags, "deepspeed", USAGE);
    if (deepspeed !== undefined && !(DEEPSPEED_STAGES as readonly string[]).includes(deepspeed)) {
      throw new Error(`--deepspeed must be ${DEEPSPEED_STAGES.join(", ")}, got ${JSON.stringify(deepspeed)}`);
    }
    const file = flags._[0];
    const recipe = readRecipe(file, { notice: (line) => process.stderr.write(`notice: ${line}\n`) });
    const result = await exportLlamaFactory(recipe, {
      out: stringFlag(flags, "out", USAGE)!,
      nodes: count(flags.nodes, "nodes"),
      gpusPerNode: count(flags["gpus-per-node"], "gpus-per-node"),
      deepspeed: deepspeed as DeepSpeedStage | undefined,
      model: stringFlag(flags, "model", USAGE),
      image: stringFlag(flags, "image", USAGE),
      overwrite: flags.overwrite === true,
    });
    console.log(`LLaMA-Factory job written to ${result.dir}: ${result.files.join(", ")}`);
    console.log(`data: ${result.rows.train} train, ${result.rows.val} val, ${result.rows.test} test rows (test held out); see ${result.dir}/README.md`);
    if (!result.batchKept) console.log("note: the global batch changes with the number of GPUs (README.md says how)");
    return 0;
  },
};
