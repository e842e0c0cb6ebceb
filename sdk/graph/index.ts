/** The graph IR, op builders, ONNX serialisation and autodiff. */
export * from "./ir";
export { Builder, toArray, toHalf } from "./ops";
export { toOnnx, OPSET } from "./onnx";
export { broadcastShapes } from "./shape";
export { gradients, GRAD_RULES } from "./autodiff";
