/**
 * Static images drawn by Plotly itself: every figure in a notebook's outputs is rendered by plotly.js in headless
 * Chromium (playwright-core driving Debian's chromium) with `Plotly.toImage(..., {format: "svg"})`, and its static
 * <img> (and a figure bundle's image/svg+xml) is replaced by that SVG. Optional: where playwright-core or Chromium is
 * missing, the images of tunelab's own renderer stay, and the caller is told why.
 */
import * as fs from "node:fs";
import { viz } from "../sdk/index";
import type { Notebook } from "./notebook";

/** Where Chromium is looked for: TUNELAB_CHROMIUM, then the usual Debian/Ubuntu paths. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const p of [env.TUNELAB_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) if (p && fs.existsSync(p)) return p;
  return null;
}

/** One figure found in an output's HTML: its plot div id, its figure, and the pixel height of its div. */
interface FoundFigure {
  id: string;
  figure: viz.PlotlyFigure;
  height: number;
}

/** The figures that plotlyHtml wrote into `html` (div id, CSS height, and the figure JSON of its draw script). */
function figuresIn(html: string): FoundFigure[] {
  const out: FoundFigure[] = [];
  const divs = new Map<string, number>();
  for (const m of html.matchAll(/<div id="([\w-]+)" class="tunelab-plot" style="width:100%;height:(\d+(?:\.\d+)?)px;">/g)) divs.set(m[1], Number(m[2]));
  for (const m of html.matchAll(/var fig = (\{.*\});\n[\s\S]*?document\.getElementById\("([\w-]+)"\)/g)) {
    const height = divs.get(m[2]);
    if (height === undefined) continue;
    out.push({ id: m[2], figure: JSON.parse(m[1]) as viz.PlotlyFigure, height });
  }
  return out;
}

/**
 * Replaces the static images of every figure in `nb` with Plotly's own SVG export. Resolves to the number of figures
 * drawn, or to the reason nothing was (playwright-core or Chromium missing).
 */
export async function plotlyStaticImages(nb: Notebook, chromiumPath: string | null = findChromium()): Promise<{ figures: number } | { skipped: string }> {
  if (!chromiumPath) return { skipped: "no Chromium found (set TUNELAB_CHROMIUM, or apt-get install chromium)" };
  let playwright: typeof import("playwright-core");
  try {
    playwright = await import("playwright-core");
  } catch {
    return { skipped: "playwright-core is not installed (npm install playwright-core)" };
  }
  const browser = await playwright.chromium.launch({ executablePath: chromiumPath, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
  let figures = 0;
  try {
    const page = await browser.newPage();
    await page.route("**/*", (route) => route.abort());
    await page.setContent(`<!doctype html><html><body>${viz.plotlyLibraryHtml()}</body></html>`, { waitUntil: "load" });
    const render = async (figure: viz.PlotlyFigure, height: number): Promise<string> => {
      const width = typeof figure.layout.width === "number" ? figure.layout.width : 700;
      const url = await page.evaluate(
        async ({ figure, width, height }) => {
          const P = (globalThis as unknown as { Plotly: { toImage(f: unknown, o: unknown): Promise<string> } }).Plotly;
          return P.toImage({ data: figure.data, layout: figure.layout }, { format: "svg", width, height });
        },
        { figure, width, height },
      );
      // toImage gives "data:image/svg+xml,<url-encoded svg>".
      return decodeURIComponent(url.slice(url.indexOf(",") + 1));
    };
    for (const cell of nb.cells) {
      for (const o of cell.outputs ?? []) {
        const html = o.data?.["text/html"];
        if (typeof html !== "string" || !html.includes(`class="${viz.PLOT_CLASS}"`)) continue;
        let next = html;
        for (const f of figuresIn(html)) {
          const svg = await render(f.figure, f.height);
          const img = new RegExp(
            `(<div id="${f.id}" class="tunelab-plot" style="[^"]*"><img class="${viz.STATIC_CLASS}" alt="[^"]*" src=")data:image/svg\\+xml;base64,[A-Za-z0-9+/=]*`,
          );
          next = next.replace(img, `$1data:image/svg+xml;base64,${Buffer.from(svg, "utf8").toString("base64")}`);
          if (o.data?.["image/svg+xml"] !== undefined && o.data?.["application/vnd.plotly.v1+json"] !== undefined) o.data["image/svg+xml"] = svg;
          figures++;
        }
        o.data!["text/html"] = next;
      }
    }
  } finally {
    await browser.close();
  }
  return { figures };
}
