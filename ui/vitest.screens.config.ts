import { defineConfig } from 'vitest/config';

// Every screen in Debian's chromium (playwright-core, no browser download) with Tauri's IPC
// mocked; screenshots go to ui/test-results/screens/.
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    // The app ticks once a second on its own timer; on a loaded 2-core CI machine a tick plus
    // the mocked IPC round trip can take longer than expect.poll's default 1 s.
    expect: { poll: { timeout: 5_000 } },
  },
});
