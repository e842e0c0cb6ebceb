/** Visualisation: the display protocol, Plotly figure builders and tables, all as MIME bundles (no I/O). */
export {
  JUPYTER_DISPLAY,
  PLOT_CLASS,
  describeFigure,
  displayFigure,
  figureStaticSvg,
  htmlEscape,
  isDisplayable,
  plotlyBundle,
  plotlyHtml,
  plotlyJsSource,
  plotlyLibraryHtml,
  scriptSafeJson,
  STATIC_CLASS,
  staticFigureHtml,
} from "./display";
export { figureSvg, xmlEscape } from "./svg";
export type { SvgFigure, SvgOptions } from "./svg";
export { niceTicks, tickLabel } from "./svg-axis";
export type { Displayable, DisplayOptions, MimeBundle, PlotlyFigure, PlotlyHtmlOptions } from "./display";
export { barChart, binValues, confusionHeatmap, histogram, lossCurve } from "./figures";
export type { BarChartOptions, Bins, ConfusionHeatmapOptions, HistogramOptions, LossCurveOptions, LossPoint, LrPoint } from "./figures";
export { dataPreview, formatCell, formatExp, htmlTable, textTable } from "./table";
export type { ColumnSummary, DataPreviewOptions, TableOptions } from "./table";
