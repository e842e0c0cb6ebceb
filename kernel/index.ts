/**
 * `tunelab/kernel`: rich and live display for notebooks, and the kernelspec helpers behind
 * `tunelab kernel install`. Importing this does not start or load the kernel itself (see ./server).
 */
export {
  display,
  updateDisplay,
  newDisplayId,
  inJupyterKernel,
  isDisplayable,
  toMimeBundle,
  normalizeBundle,
  plainText,
  JUPYTER_DISPLAY,
  type MimeBundle,
  type Displayable,
  type DisplayOptions,
  type DisplayHandle,
  type DisplayMessage,
  type RenderOptions,
} from "./display";
export {
  DEFAULT_KERNEL_NAME,
  installKernelSpec,
  uninstallKernelSpec,
  findKernelSpecs,
  makeKernelSpec,
  defaultDataDirs,
  kernelsDirFor,
  type KernelSpec,
  type FoundKernelSpec,
  type InstallOptions,
} from "./spec";
export { runNotebook, NotebookCellError, type RunNotebookOptions, type RunNotebookResult, type RunManifest } from "./run-notebook";
export { startJupyterServer, jupyterServerModule, jupyterPython, freePort, type JupyterServer, type StartJupyterOptions } from "./jupyter-server";
export {
  readNotebook,
  writeNotebook,
  serializeNotebook,
  injectParameters,
  injectedSource,
  declaredParameters,
  parseParameterArgs,
  parseParameterValue,
  sourceText,
  PARAMETERS_TAG,
  INJECTED_TAG,
  type Notebook,
  type NotebookCell,
  type NotebookOutput,
} from "./notebook";
export { plotlyStaticImages, findChromium } from "./plotly-images";
