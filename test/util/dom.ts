/** The few DOM types that tests use inside page.evaluate callbacks (run in the browser; the tests compile without lib "dom"). */
export interface DomElement {
  textContent: string;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): DomElement[] & { length: number };
}
