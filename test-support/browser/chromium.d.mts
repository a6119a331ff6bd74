// Types of chromium.mjs, for the TypeScript screen tests (ui/e2e). Structural, so that this
// folder needs no playwright-core of its own: the caller's `chromium` and `Page` fit them.

interface Launcher<B> {
  launch(options: { executablePath: string; args: string[] }): Promise<B>;
}

interface ErrorSource {
  on(event: string, listener: (arg: any) => void): unknown;
}

export declare const CHROMIUM: string;
export declare const CHROMIUM_ARGS: string[];
export declare function launchChromium<B>(chromium: Launcher<B>): Promise<B>;
export declare function collectErrors(page: ErrorSource, errors: string[], opts?: { console?: boolean }): string[];
