/**
 * An Ollama Modelfile for an exported GGUF: FROM the file, the sampling defaults of generation_config.json as
 * PARAMETERs, every end-of-sequence token as a stop, and for ChatML models the chat format as a Go TEMPLATE
 * (other templates: Ollama falls back to the tokenizer.chat_template the GGUF carries).
 */
import type { BaseModel } from "../models/model";

/** Ollama's Go-template form of the ChatML format (system, then each turn, then the assistant's prompt). */
const CHATML_TEMPLATE = `{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
`;

/** Quotes a Modelfile string value (Ollama reads Go-style escapes inside double quotes). */
function quote(s: string): string {
  return JSON.stringify(s);
}

/** The Modelfile text for `ggufName` (a file beside it) made from `model`. */
export function ollamaModelfile(ggufName: string, model: BaseModel): string {
  const lines = [`# Ollama Modelfile written by tunelab: ollama create NAME -f Modelfile`, `FROM ./${ggufName}`];
  const template = model.tokenizer.chatTemplates.default ?? "";
  if (template.includes("<|im_start|>") && template.includes("<|im_end|>")) lines.push(`TEMPLATE """${CHATML_TEMPLATE}"""`);
  const g = model.generationConfig;
  if (g?.temperature !== undefined) lines.push(`PARAMETER temperature ${g.temperature}`);
  if (g?.topP !== undefined) lines.push(`PARAMETER top_p ${g.topP}`);
  if (g?.topK !== undefined) lines.push(`PARAMETER top_k ${g.topK}`);
  if (g?.repetitionPenalty !== undefined) lines.push(`PARAMETER repeat_penalty ${g.repetitionPenalty}`);
  const stops = new Set<string>();
  for (const id of model.tokenizer.eosTokenIds) {
    const tok = model.tokenizer.idToToken(id);
    if (tok) stops.add(tok);
  }
  for (const s of stops) lines.push(`PARAMETER stop ${quote(s)}`);
  return lines.join("\n") + "\n";
}
