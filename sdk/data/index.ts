/** tunelab's data layer: loading, validation, shaping, augmentation, tokenising and batching (no training, no display). */

/** Normalised row types and provenance. */
export type {
  Row, RowKind, ClassificationRow, PretrainRow, ChatRow, ChatMessage, ChatRole, Provenance, DataFormat, SplitRole, AugmentMethod,
} from "./types";
/** Bad-data issues, the error carrying them, and the report counting every dropped row. */
export { DataError, DataReport, formatIssue, where, type DataIssue, type DropReason, type OnInvalid } from "./report";
/** Load a file (JSON/JSONL/CSV/TSV/Parquet/TXT) or a dataset_info.json entry into a validated Dataset. */
export { loadDataset, type LoadOptions } from "./load";
/** Read raw records with line numbers (no normalisation). */
export { readRecords, fileTypeOf, type FileType, type RawRecord, type ReadResult } from "./read";
/** Strict UTF-8 decoding that names the file, line and byte offset of a bad byte. */
export { decodeUtf8 } from "./read/utf8";
/** RFC 4180 CSV parsing. */
export { readCsv, parseCsvRows, type CsvOptions } from "./read/csv";
/** Format detection and column/tag mappings. */
export { detectFormat, type Detected } from "./formats/detect";
export { SHAREGPT_TAGS, OPENAI_TAGS, defaultColumns, type ColumnMap, type RoleTags } from "./formats/columns";
/** LLaMA-Factory dataset_info.json entries. */
export { readDatasetInfo, datasetInfoEntry, datasetInfoNames, type DatasetInfoEntry } from "./formats/dataset-info";
/** The immutable Dataset value type, splitting and label checks. */
export { Dataset, checkLabels, originId, type RowContent, type SplitOptions, type SplitDatasets } from "./dataset";
/** Data steps (load, split, augment, shuffle, sample, filter, map) and the one function that runs them, for plans and recipes. */
export { runDataSteps, isSplit, type DataStep, type Materialized } from "./steps";
/** Augmentation: EDA edits, synonyms (WordNet or any Lexicon), templates, back-translation. */
export { augment, type AugmentOptions, type TemplateAugmentOptions, type BackTranslationOptions } from "./augment";
export { WordNetLexicon, englishWordNet, type WordNetOptions } from "./augment/wordnet";
export { tableLexicon, ENGLISH_STOPWORDS, type Lexicon } from "./augment/lexicon";
export { synonymReplace, randomSwap, randomDelete, randomInsert } from "./augment/eda";
export { fillTemplate, templateSlots } from "./augment/template";
export { openAITranslator, chatTranslator, translationMessages, type Translator, type OpenAITranslatorOptions } from "./augment/translate";
export { splitWords, joinPieces, type Piece } from "./augment/words";
/** Tokenising rows against the minimal TextTokenizer interface; SFT label masking. */
export {
  IGNORE_INDEX, LabelVocab, encodePretrain, encodeClassification, encodeChat, tokenizeDataset,
  type TextTokenizer, type ChatTemplateOptions, type TokenizedExample, type TokenizeOptions, type TokenizedDataset,
  type ChatEncodeOptions, type PretrainEncodeOptions, type ClassificationEncodeOptions,
} from "./tokenize";
/** Token-length statistics and length filtering (cutoff_len). */
export {
  RECOMMENDED_TOKEN_RANGE, tokenLengths, rowTokenLength, tokenLengthStats, filterByLength,
  type TokenLengthStats, type LengthFilterOptions,
} from "./lengths";
/** Packing and length-grouped, padded int64 batches. */
export { packExamples, collate, makeBatches, maskToFloat32, type Batch, type BatchOptions, type PackOptions } from "./batch";
