/** `tunelab train RECIPE.yaml [--key value ...]`: runs a recipe (LLaMA-Factory option names), as fit() does. */
import { parseFlags, type CliCommand, type CliFlags } from "../command";
import { readRecipeInput, resolveRecipe, type RecipeInput } from "../../train/recipe";
import { valueFromText } from "../../train/recipe-check";
import { train } from "../../train/trainer";
import { liveProgress } from "../../plan/lora";
import { ctrlCStopsTraining } from "../interrupt";

const USAGE = "usage: tunelab train RECIPE.yaml [--option value ...]   (options override the recipe, e.g. --max_steps 100)";

/** Turns "--max_steps 100" overrides into typed recipe values (as the recipe schema types each option). */
function overrides(flags: CliFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(flags)) if (key !== "_") out[key] = valueFromText(key, raw);
  return out;
}

export const command: CliCommand = {
  name: "train",
  summary: "fine-tune with LoRA from a YAML recipe (LLaMA-Factory option names)",
  async run(argv) {
    const flags = parseFlags(argv);
    if (flags.help || flags._.length !== 1) {
      console.error(USAGE);
      return flags.help ? 0 : 2;
    }
    const file = flags._[0];
    // Overrides replace the file's keys before anything is read, so one notice line is said per LLaMA-Factory key.
    const notice = (line: string) => process.stderr.write(`notice: ${line}\n`);
    const recipe = resolveRecipe({ ...readRecipeInput(file), ...overrides(flags) } as RecipeInput, file, { notice });
    const interrupt = ctrlCStopsTraining();
    const callbacks = [interrupt.callbacks, ...(process.stderr.isTTY ? [liveProgress()] : [])];
    // The Ctrl-C listener stays until the result is printed: a second Ctrl-C after the run has stopped then still
    // says what it does instead of meeting Node's default action before the summary is out.
    try {
      const result = await train(recipe, { echo: (line) => process.stderr.write(line + "\n"), callbacks, signal: interrupt.signal });
      console.log(`adapter written to ${result.outputDir} after ${result.steps} steps (${result.stoppedBy})`);
      if (result.val)
        console.log(
          `val: ${Object.entries(result.val.metrics)
            .map(([k, v]) => `${k} ${v.toFixed(4)}`)
            .join(", ")}`,
        );
      if (result.test)
        console.log(
          `test: ${Object.entries(result.test.metrics)
            .map(([k, v]) => `${k} ${v.toFixed(4)}`)
            .join(", ")}`,
        );
      return result.stoppedBy === "non_finite_loss" ? 1 : 0;
    } finally {
      interrupt.dispose();
    }
  },
};
