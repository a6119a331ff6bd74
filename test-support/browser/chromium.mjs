// The workspace's browser driver for the screen tests written in JavaScript (the customer and
// staff journeys in tests/browser/, every app screen in ui/e2e/): Debian's chromium started by
// the caller's playwright-core (no browser download), and a page's script errors collected.
// The caller passes its own `chromium` (this folder has no node_modules of its own).

/** Debian's chromium, unless CHROMIUM (or CHROMIUM_PATH) names another. */
export const CHROMIUM = process.env.CHROMIUM || process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Root in a container, no GPU, nothing fetched in the background. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Starts Debian's chromium with `chromium` (playwright-core's). */
export function launchChromium(chromium) {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * Collects the page's uncaught script errors into `errors`, and, unless `console` is false, its
 * console errors too: 4xx answers (validation errors are 422) log "Failed to load resource",
 * which is not one; a CSP violation is.
 */
export function collectErrors(page, errors, { console = true } = {}) {
  if (console) {
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
    });
  }
  page.on("pageerror", (e) => errors.push(String(e)));
  return errors;
}
