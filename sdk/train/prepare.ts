/** From a recipe's data options to tokenised splits ready for batching, with every drop counted. */
import { packExamples } from "../data/batch";
import { Dataset, type SplitDatasets } from "../data/dataset";
import { runDataSteps } from "../data/steps";
import { LabelVocab, tokenizeDataset, type TokenizedExample } from "../data/tokenize";
import type { Row, RowKind } from "../data/types";
import type { Tokenizer } from "../io/tokenizer";
import type { Recipe } from "./recipe";
import { recipeDataSteps } from "./recipe-data";

/** Tokenised train/val/test examples and what was learned on the way. */
export interface PreparedData {
  splits: SplitDatasets<Row>;
  train: TokenizedExample[];
  val: TokenizedExample[];
  test: TokenizedExample[];
  /** Classification labels (stage cls), in class-index order. */
  labels: readonly string[] | null;
  /** Rows truncated to cutoff_len, over all splits. */
  truncated: number;
}

const STAGE_KIND: Record<Recipe["stage"], RowKind> = { pt: "pretrain", sft: "chat", cls: "classification" };

/** Loads, splits and (optionally) augments a recipe's data; rows must suit the recipe's stage. */
export async function loadSplits(recipe: Recipe, data?: Dataset<Row>): Promise<SplitDatasets<Row>> {
  const [load, ...rest] = recipeDataSteps(recipe);
  const ds = data ?? ((await runDataSteps([load])) as Dataset<Row>);
  const want = STAGE_KIND[recipe.stage];
  const wrong = ds.rows.find((r) => r.kind !== want);
  if (wrong) {
    throw new Error(
      `${wrong.provenance.source}:${wrong.provenance.line}: stage ${recipe.stage} needs ${want} rows, this one is ${wrong.kind} (set stage or formatting)`,
    );
  }
  return (await runDataSteps(rest, ds)) as SplitDatasets<Row>;
}

/** Tokenises the splits for the recipe's stage (labels from train for cls; packing for pt/sft when asked). */
export function tokenizeSplits(recipe: Recipe, splits: SplitDatasets<Row>, tokenizer: Tokenizer): PreparedData {
  const labelVocab = recipe.stage === "cls" ? LabelVocab.fromDataset(splits.train) : undefined;
  const options = {
    cutoffLen: recipe.cutoff_len,
    labelVocab,
    trainOnPrompt: recipe.train_on_prompt,
    templateOptions: {
      ...(recipe.enable_thinking === undefined ? {} : { enableThinking: recipe.enable_thinking }),
      ...(recipe.template === undefined ? {} : { templateName: recipe.template }),
    },
  };
  let truncated = 0;
  const run = (ds: Dataset<Row>) => {
    const t = tokenizeDataset(ds, tokenizer, options);
    truncated += t.truncated;
    return t.examples;
  };
  let train = run(splits.train);
  if (train.length === 0) throw new Error(`no training examples left after loading ${recipe.dataset_path} (see the data report)`);
  if (recipe.packing && recipe.stage !== "cls") train = packExamples(train, { cutoffLen: recipe.cutoff_len, mode: recipe.stage === "pt" ? "concat" : "bins" });
  return { splits, train, val: run(splits.val), test: run(splits.test), labels: labelVocab ? labelVocab.labels : null, truncated };
}
