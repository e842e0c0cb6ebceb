/** The normalised row types every loader produces, whatever the file format was. */

/** Where a row came from: the file, its 1-based line (for Parquet: the 1-based row number), and how it was made. */
export interface Provenance {
  /** Stable id, `file:line` for loaded rows, `<from>~<method><k>` for augmented ones. */
  readonly id: string;
  readonly source: string;
  readonly line: number;
  /** Present on rows made by `augment`: the id of the original (train) row and the method. */
  readonly augmented?: { readonly from: string; readonly method: AugmentMethod };
}

/** Names of augmentation methods, recorded in provenance. */
export type AugmentMethod = "synonyms" | "swap" | "delete" | "insert" | "template" | "backTranslation";

/** A chat role after normalisation (sharegpt human/gpt/... map onto these). */
export type ChatRole = "system" | "user" | "assistant";

/** One chat message. */
export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

/** A text with a class label (labels are kept as strings; numeric labels become their decimal text). */
export interface ClassificationRow {
  readonly kind: "classification";
  readonly text: string;
  readonly label: string;
  readonly provenance: Provenance;
}

/** Plain text for continued pre-training. */
export interface PretrainRow {
  readonly kind: "pretrain";
  readonly text: string;
  readonly provenance: Provenance;
}

/** A conversation for supervised fine-tuning; loss goes on assistant messages. */
export interface ChatRow {
  readonly kind: "chat";
  readonly messages: readonly ChatMessage[];
  readonly provenance: Provenance;
}

/** Any normalised row. */
export type Row = ClassificationRow | PretrainRow | ChatRow;

/** The kinds of row. */
export type RowKind = Row["kind"];

/** Source formats the loader understands. */
export type DataFormat = "classification" | "alpaca" | "sharegpt" | "openai" | "pretrain";

/** Which part of a split a dataset is; "all" before splitting. */
export type SplitRole = "all" | "train" | "val" | "test";
