/** Export: a model plus adapter in the formats other programs load (PEFT, merged HF, ONNX, PyTorch, GGUF). */
export { exportModel, EXPORT_FORMATS, type ExportFormat, type ExportOptions, type ExportResult } from "./export";
export { DEFAULT_ONNX_OPSET, optimumNames } from "./onnx";
export { GGUF_OUTTYPES, type GgufOuttype } from "./gguf";
export type { TorchDtype } from "./pytorch";
export type { QuantMethod } from "./quantized";
