// Prints the gzipped size of the built JS (dist/assets/*.js) and fails over the 60 KB budget.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET = 60 * 1024;
const dir = join(import.meta.dirname, '..', 'dist', 'assets');
let js = 0;
let css = 0;
for (const f of readdirSync(dir)) {
  const gz = gzipSync(readFileSync(join(dir, f)), { level: 9 }).length;
  if (f.endsWith('.js')) js += gz;
  if (f.endsWith('.css')) css += gz;
}
console.log(`JS ${(js / 1024).toFixed(1)} KB gzipped (budget 60 KB); CSS ${(css / 1024).toFixed(1)} KB gzipped`);
if (js > BUDGET) {
  console.error('the JS bundle is over budget');
  process.exit(1);
}
