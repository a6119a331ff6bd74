// Every screen and error of the UI in Debian's chromium (playwright-core, executablePath
// /usr/bin/chromium: no browser download), with Tauri's IPC mocked (e2e/mock.ts), at both
// phone sizes. Screenshots land in ui/test-results/screens/ to be looked at.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockConfig } from './mock';
import type { TokenView } from '../src/api';
import { collectErrors, launchChromium } from '../../test-support/browser/chromium.mjs';

const UI = join(dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = join(UI, 'test-results', 'screens');
const SIZES = [
  { width: 360, height: 740 },
  { width: 390, height: 844 },
];

let server: ViteDevServer;
let browser: Browser;
let base: string;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await createServer({
    root: UI,
    configFile: false,
    logLevel: 'error',
    server: { port: 0, host: '127.0.0.1', strictPort: false, hmr: false },
  });
  await server.listen();
  base = server.resolvedUrls?.local[0] ?? '';
  browser = await launchChromium(chromium);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

function token(id: string, over: Partial<TokenView> = {}): TokenView {
  return {
    id,
    kind: 'bank',
    issuer: 'Example Bank',
    label: '999800000009',
    service_id: '10112231',
    user_id: '999800000009',
    algorithm: 'SHA1',
    digits: 6,
    period: 60,
    added_at: 1_795_000_000,
    clock_offset_secs: 0,
    clock_checked_at: 1_795_000_000,
    ...over,
  };
}

const NETWORK = {
  code: 'NETWORK',
  message_ja: 'サーバーに接続できません。通信環境をご確認ください。',
  message_en: 'Cannot reach the server. Please check your connection.',
};

// 2026-11-25 00:00:50 UTC: 10 seconds before a 60-second step ends.
const T50 = Date.UTC(2026, 10, 25, 0, 0, 50);

async function open(
  size: { width: number; height: number },
  config: MockConfig,
  opts: { dark?: boolean; at?: number; init?: () => void } = {},
): Promise<{ page: Page; ctx: BrowserContext }> {
  const ctx = await browser.newContext({
    viewport: size,
    deviceScaleFactor: 1,
    colorScheme: opts.dark ? 'dark' : 'light',
    locale: 'ja-JP',
    timezoneId: 'Asia/Tokyo',
  });
  const page = await ctx.newPage();
  // Uncaught errors only: the mocked shell's refusals are logged on purpose.
  const errors = collectErrors(page, [], { console: false });
  (page as Page & { jsErrors: string[] }).jsErrors = errors;
  if (opts.at !== undefined) {
    // Date.now() is pinned; timers run for real, so the ticker meets the new time within a second.
    await page.clock.setFixedTime(opts.at);
  }
  await page.addInitScript((c) => {
    (window as unknown as { __mockConfig: unknown }).__mockConfig = c;
  }, config);
  if (opts.init) await page.addInitScript(opts.init);
  await page.goto(`${base}e2e/harness.html`);
  return { page, ctx };
}

async function shot(page: Page, size: { width: number }, name: string) {
  // Two animation frames, so the screenshot shows the DOM as it is now (PLATFORM.md).
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: join(SHOTS, `${size.width}-${name}.png`), fullPage: true });
}

async function noHorizontalScroll(page: Page) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  expect(scroll, 'the layout fits the phone width').toBeLessThanOrEqual(inner);
}

/** Types a PIN on the lock screen and presses ロックを解除. */
async function sendPin(page: Page, pin: string) {
  await page.locator('#lock-pin').fill(pin);
  await page.locator('#unlock').click();
}

/** The app goes out of view ('hidden') or comes back ('visible'), as the WebView reports it. */
async function setVisibility(page: Page, v: 'hidden' | 'visible') {
  await page.evaluate((v) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => v });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => v === 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  }, v);
}

/** The bank's server now finds this offset (the mocked shell's next clock check reports it). */
async function setServerOffset(page: Page, secs: number) {
  await page.evaluate((secs) => {
    (window as unknown as { __mockConfig: MockConfig }).__mockConfig.clockOffset = secs;
  }, secs);
}

/** Where any of these codes is in the page: its digits in the text, the markup or a label. */
async function codeTraces(page: Page, codes: string[]): Promise<string[]> {
  return page.evaluate((codes) => {
    const app = document.getElementById('app') as HTMLElement;
    const html = app.outerHTML;
    const text = (app.textContent ?? '').replace(/\s+/g, '');
    const found: string[] = [];
    for (const c of codes) {
      const half = c.length / 2;
      if (html.includes(c)) found.push(`${c} in the markup`);
      if (html.includes(c.split('').join(' '))) found.push(`${c} spelled out`);
      if (html.includes(`${c.slice(0, half)} ${c.slice(half)}`)) found.push(`${c} grouped`);
      if (text.includes(c)) found.push(`${c} in the text`);
    }
    return found;
  }, codes);
}

/** Every data-code value in the page. */
async function dataCodes(page: Page): Promise<string[]> {
  return page.locator('[data-code]').evaluateAll((els) => els.map((e) => e.getAttribute('data-code') ?? ''));
}

async function calls(page: Page, cmd: string): Promise<Record<string, unknown>[]> {
  return page.evaluate(
    (c) =>
      (window as unknown as { __calls: { cmd: string; args: Record<string, unknown> }[] }).__calls
        .filter((x) => x.cmd === c)
        .map((x) => x.args),
    cmd,
  );
}

/** Whether the shell was asked `cmd` after the last `before` (and `before` was asked). */
async function askedAfter(page: Page, cmd: string, before: string): Promise<boolean> {
  const order = await page.evaluate(() =>
    (window as unknown as { __calls: { cmd: string }[] }).__calls.map((c) => c.cmd),
  );
  const last = order.lastIndexOf(before);
  return last >= 0 && order.lastIndexOf(cmd) > last;
}

/** From the code screen, a typed transfer's 取引認証 code shown; returns the code. */
async function showTxCode(page: Page): Promise<string> {
  await page.locator('#tx-open').click();
  await page.fill('#tx-bankCode', '0001');
  await page.fill('#tx-branchCode', '123');
  await page.fill('#tx-accountNumber', '1234567');
  await page.fill('#tx-amount', '150000');
  await page.locator('#tx-show').click();
  await page.locator('#tx-code[data-code]').waitFor();
  return (await page.locator('#tx-code').getAttribute('data-code'))!;
}

for (const size of SIZES) {
  describe(`phone ${size.width}×${size.height}`, () => {
    it('first run shows the manual’s initial setup, with labelled fields', async () => {
      const { page, ctx } = await open(size, {});
      await expect.poll(() => page.locator('h1').textContent()).toBe('初期設定');
      for (const label of ['サービスID', 'ユーザID', '利用開始パスワード', '上記の内容に同意する']) {
        expect(await page.getByLabel(label, { exact: false }).count(), label).toBe(1);
      }
      expect(await page.getByRole('button', { name: '送信' }).isVisible()).toBe(true);
      expect(await page.locator('#terms li').count()).toBeGreaterThan(3);
      expect(await page.locator('#activation_password').getAttribute('type')).toBe('password');
      await noHorizontalScroll(page);
      await shot(page, size, '01-setup');
      await ctx.close();
    });

    it('refuses an empty form field by field, and the unticked agreement', async () => {
      const { page, ctx } = await open(size, {});
      await page.getByRole('button', { name: '送信' }).click();
      await page.locator('#agreed-error').waitFor();
      expect(await page.locator('.field-error').count()).toBe(4);
      expect(await page.locator('#agreed-error').textContent()).toContain('上記の内容に同意する');
      expect(await page.locator('#service_id').getAttribute('aria-invalid')).toBe('true');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('service_id');
      expect(await calls(page, 'setup_token')).toHaveLength(0);
      await shot(page, size, '02-setup-required');
      await ctx.close();
    });

    it('the download page’s link fills service ID and user ID', async () => {
      const { page, ctx } = await open(size, { link: { service_id: '10112231', user_id: '999800000009' } });
      await page.locator('#link-filled').waitFor();
      expect(await page.locator('#service_id').inputValue()).toBe('10112231');
      expect(await page.locator('#user_id').inputValue()).toBe('999800000009');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('activation_password');
      await shot(page, size, '03-setup-from-link');
      await ctx.close();
    });

    it('a lone token’s code is in its screen’s first frame', async () => {
      // The start asks for the code as soon as the listing is in and builds the screen once
      // it is there: the first frame that shows the code screen shows the code. (Asked from
      // the screen, the code came a round trip after the screen's first paint.)
      const { page, ctx } = await open(
        size,
        { tokens: [token('tok-a')], frameDelayMs: 40 },
        {
          init: () => {
            const w = window as unknown as { __codeFrames: string[] };
            w.__codeFrames = [];
            const watch = () => {
              const el = document.getElementById('code');
              if (el) w.__codeFrames.push(el.dataset.code ?? '');
              if (w.__codeFrames.length < 3) requestAnimationFrame(watch);
            };
            requestAnimationFrame(watch);
          },
        },
      );
      await page.locator('#code[data-code]').waitFor();
      await expect
        .poll(() => page.evaluate(() => (window as unknown as { __codeFrames: string[] }).__codeFrames.length))
        .toBeGreaterThanOrEqual(3);
      const frames = await page.evaluate(() => (window as unknown as { __codeFrames: string[] }).__codeFrames);
      expect(frames[0], `the code screen's frames: ${JSON.stringify(frames)}`).toMatch(/^\d{6}$/);
      expect(await calls(page, 'code_frame'), 'one ask for the first code').toHaveLength(1);
      await ctx.close();
    });

    it('a start with a link asks a code it does not show, and a failed one is no stray error', async () => {
      const { page, ctx } = await open(size, {
        tokens: [token('tok-a')],
        link: { service_id: '10112231', user_id: '999800000009' },
        frameError: { code: 'SECRET_MISSING', message_ja: '鍵がありません。', message_en: 'The key is gone.' },
      });
      await page.locator('#link-filled').waitFor();
      await expect.poll(async () => (await calls(page, 'code_frame')).length).toBe(1);
      await page.evaluate(() => new Promise((r) => setTimeout(r, 100)));
      expect((page as Page & { jsErrors: string[] }).jsErrors).toEqual([]);
      await ctx.close();
    });

    it('a link that opened a locked app fills the setup once the PIN is given', async () => {
      const { page, ctx } = await open(size, {
        tokens: [token('tok-a')],
        pin: '2468',
        link: { service_id: '10112231', user_id: '999800000009' },
      });
      await page.locator('#lock-form').waitFor();
      expect(await page.locator('#link-filled').count(), 'no setup form over the lock').toBe(0);
      await sendPin(page, '2468');
      await page.locator('#link-filled').waitFor();
      expect(await page.locator('#user_id').inputValue()).toBe('999800000009');
      expect(await page.locator('#service_id').inputValue()).toBe('10112231');
      await ctx.close();
    });

    it('a link opened while the app is locked waits for the PIN', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468' });
      await page.locator('#lock-form').waitFor();
      await page.evaluate(() =>
        (window as unknown as { __openLink: (l: unknown) => Promise<void> }).__openLink({
          service_id: '10112231',
          user_id: '386495327794',
        }),
      );
      await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));
      expect(await page.locator('#lock-form').isVisible(), 'the lock screen stays').toBe(true);
      expect(await page.locator('#link-filled').count()).toBe(0);
      await sendPin(page, '2468');
      await page.locator('#link-filled').waitFor();
      expect(await page.locator('#user_id').inputValue()).toBe('386495327794');
      await ctx.close();
    });

    it('a link opened while the app runs fills a new setup', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] });
      await page.locator('#code[data-code]').waitFor();
      await page.evaluate(() =>
        (window as unknown as { __openLink: (l: unknown) => Promise<void> }).__openLink({
          service_id: '10112231',
          user_id: '386495327794',
        }),
      );
      await page.locator('#link-filled').waitFor();
      expect(await page.locator('#user_id').inputValue()).toBe('386495327794');
      expect(await calls(page, 'take_setup_link'), 'taken at start and on the event').toHaveLength(2);
      expect(await page.locator('#cancel-setup').isVisible(), 'back to the existing token').toBe(true);
      await ctx.close();
    });

    it('shows progress while sending, then the code', async () => {
      const { page, ctx } = await open(size, { setupDelayMs: 1500 });
      await page.locator('#service_id').fill('１０１１２２３１'); // full-width digits from an IME
      await page.locator('#user_id').fill('999800000009');
      await page.locator('#activation_password').fill('4815');
      await page.getByLabel('上記の内容に同意する').check();
      await page.getByRole('button', { name: '送信' }).click();
      await page.locator('#progress').waitFor();
      expect(await page.locator('#progress').textContent()).toContain('送信しています');
      expect(await page.locator('#submit').isDisabled()).toBe(true);
      await shot(page, size, '04-setup-sending');
      await page.locator('#lock-offer').waitFor({ timeout: 5000 });
      await page.locator('#offer-later').click();
      await page.locator('#code').waitFor({ timeout: 5000 });
      const sent = await calls(page, 'setup_token');
      expect(sent).toEqual([
        { serviceId: '10112231', userId: '999800000009', activationPassword: '4815', agreed: true },
      ]);
      await ctx.close();
    });

    it('puts a wrong activation password under its field and clears it', async () => {
      const { page, ctx } = await open(size, {
        link: { service_id: '10112231', user_id: '999800000009' },
        setupError: {
          code: 'WRONG_ACTIVATION_PASSWORD',
          message_ja: '利用開始パスワードが正しくありません。あと4回間違えると、このトークンは利用できなくなります。',
          message_en: 'The activation password is wrong. 4 attempts left.',
        },
      });
      await page.locator('#activation_password').fill('1111');
      await page.getByLabel('上記の内容に同意する').check();
      await page.getByRole('button', { name: '送信' }).click();
      await page.locator('#activation_password-error').waitFor();
      expect(await page.locator('#activation_password-error').textContent()).toContain('あと4回');
      expect(await page.locator('#activation_password').inputValue()).toBe('');
      expect(await page.locator('#service_id').inputValue()).toBe('10112231');
      await shot(page, size, '05-setup-wrong-password');
      await ctx.close();
    });

    it('shows a network error in Japanese, and in English after the toggle', async () => {
      const { page, ctx } = await open(size, { setupError: NETWORK });
      await page.locator('#service_id').fill('10112231');
      await page.locator('#user_id').fill('999800000009');
      await page.locator('#activation_password').fill('4815');
      await page.getByLabel('上記の内容に同意する').check();
      await page.getByRole('button', { name: '送信' }).click();
      await page.locator('#setup-error').waitFor();
      expect(await page.locator('#setup-error').textContent()).toBe(NETWORK.message_ja);
      expect(await page.locator('#setup-error').getAttribute('role')).toBe('alert');
      await shot(page, size, '06-setup-network-error');
      await page.locator('#lang').click();
      expect(await page.locator('#setup-error').textContent()).toBe(NETWORK.message_en);
      expect(await page.locator('h1').textContent()).toBe('Initial setup');
      expect(await page.getByLabel('Service ID', { exact: false }).inputValue()).toBe('10112231');
      expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
      await noHorizontalScroll(page);
      await shot(page, size, '07-setup-english');
      await ctx.close();
    });

    it('the code: two groups of three, a countdown in step with the clock, read politely', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] }, { at: T50 });
      await page.locator('#code[data-code]').waitFor();
      const first = await page.locator('#code').getAttribute('data-code');
      expect(first).toMatch(/^\d{6}$/);
      expect(await page.locator('#code').innerText()).toBe(`${first!.slice(0, 3)} ${first!.slice(3)}`);
      expect(await page.locator('#countdown').getAttribute('data-seconds-left')).toBe('10');
      expect(await page.locator('#countdown').getAttribute('role')).toBe('timer');
      expect(await page.locator('#countdown').getAttribute('aria-label')).toBe('次のパスワードまであと10秒（60秒ごとに更新）');
      expect(await page.locator('#token-label').textContent()).toBe('Example Bank (999800000009)');
      expect(await page.locator('#next-code').isVisible()).toBe(true);
      await noHorizontalScroll(page);
      await shot(page, size, '08-code');
      await page.clock.setFixedTime(T50 + 3000);
      await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe('7');
      expect(await page.locator('#announcer').textContent(), 'no announcement per second').toBe('');
      await page.clock.setFixedTime(T50 + 10_000);
      await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe('60');
      const second = await page.locator('#code').getAttribute('data-code');
      expect(second, 'a new step brings a new code').not.toBe(first);
      expect(await page.locator('#next-code').isVisible(), 'the next code shows only near the end').toBe(false);
      await expect.poll(() => page.locator('#announcer').textContent()).toBe('ワンタイムパスワードが新しくなりました。');
      await ctx.close();
    });

    it('the code screen asks the shell once per step, not once a second', async () => {
      // Each frame the shell makes reads the token's secret from the keystore (a Keystore or
      // Keychain call on a phone): the countdown runs on in the page, and the shell is asked
      // when the step ends, when the clock check may have moved the offset, or when the
      // device clock goes back.
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] }, { at: T50 });
      await page.locator('#code[data-code]').waitFor();
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(1);
      const first = await page.locator('#code').getAttribute('data-code');
      await page.clock.setFixedTime(T50 + 1000);
      await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe('9');
      const asked = (await calls(page, 'code_frame')).length;
      expect(asked, 'the first code; the clock check found the same offset').toBe(1);
      for (const [at, left] of [
        [T50 + 2000, '8'],
        [T50 + 3000, '7'],
        [T50 + 9000, '1'],
      ] as const) {
        await page.clock.setFixedTime(at);
        await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe(left);
      }
      await page.evaluate(() => new Promise((r) => setTimeout(r, 1500)));
      expect(await page.locator('#countdown').getAttribute('data-seconds-left')).toBe('1');
      expect(await page.locator('#code').getAttribute('data-code'), 'the same step, the same code').toBe(first);
      expect((await calls(page, 'code_frame')).length, 'no ask while the step runs').toBe(asked);
      await page.clock.setFixedTime(T50 + 10_000);
      await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe('60');
      expect(await page.locator('#code').getAttribute('data-code'), 'a new step, a new code').not.toBe(first);
      expect((await calls(page, 'code_frame')).length, 'one ask for the new step').toBe(asked + 1);
      // The device clock set back: the shell is asked again, and the old step's code is back.
      await page.clock.setFixedTime(T50 + 5000);
      await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe('5');
      expect(await page.locator('#code').getAttribute('data-code')).toBe(first);
      expect((await calls(page, 'code_frame')).length).toBe(asked + 2);
      await ctx.close();
    });

    it('取引認証: the typed transfer, checked large, then its 8-digit code; a wrong field is named', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] }, { at: T50 });
      await page.locator('#code[data-code]').waitFor();
      await page.locator('#tx-open').click();
      await page.locator('#tx-form').waitFor();
      await shot(page, size, '30-tx-input');
      await page.locator('.lang-btn').click();
      await expect.poll(() => page.locator('#tx-show').textContent()).toBe('Show transaction code');
      await shot(page, size, '30-tx-input-en');
      await page.locator('.lang-btn').click();
      await expect.poll(() => page.locator('#tx-show').textContent()).toBe('取引認証番号を表示');
      await page.fill('#tx-bankCode', '０００１');
      await page.fill('#tx-branchCode', '123');
      await page.fill('#tx-accountNumber', '123456');
      await page.fill('#tx-amount', '150,000');
      await page.locator('#tx-show').click();
      await expect.poll(() => page.locator('#tx-error').getAttribute('data-code')).toBe('TX_ACCOUNT_NUMBER');
      expect(await page.locator('#tx-error').textContent()).toBe('口座番号は半角数字7桁で入力してください。');
      expect(await page.locator('#tx-accountNumber').getAttribute('aria-invalid')).toBe('true');
      expect(await page.locator('#tx-bankCode').inputValue(), 'what was typed is kept').toBe('０００１');
      await page.fill('#tx-accountNumber', '1234567');
      await page.locator('#tx-show').click();
      await page.locator('#tx-code[data-code]').waitFor();
      expect(await page.locator('#tx-d-account').textContent()).toBe('1234567');
      expect(await page.locator('#tx-d-bank').textContent()).toBe('0001');
      expect(await page.locator('#tx-d-amount').textContent()).toBe('150,000円');
      expect(await page.locator('#tx-d-type').textContent()).toBe('普通');
      const code = await page.locator('#tx-code').getAttribute('data-code');
      expect(code).toMatch(/^\d{8}$/);
      expect((await page.locator('#tx-code').innerText()).replace(/\s+/g, ' ')).toBe(`${code!.slice(0, 4)} ${code!.slice(4)}`);
      expect(await page.locator('#tx-countdown').textContent()).toBe('この番号はあと10秒有効です');
      const sent = await calls(page, 'transaction_frame');
      expect(sent[sent.length - 1]).toEqual({
        id: 'tok-a', bankCode: '０００１', branchCode: '123', accountType: '1', accountNumber: '1234567', amount: '150,000',
      });
      await noHorizontalScroll(page);
      await shot(page, size, '31-tx-code');
      // The countdown runs on in the page; the shell is asked again when the step ends.
      const asked = sent.length;
      await page.clock.setFixedTime(T50 + 3000);
      await expect.poll(() => page.locator('#tx-countdown').textContent()).toBe('この番号はあと7秒有効です');
      expect((await calls(page, 'transaction_frame')).length, 'no ask while the step runs').toBe(asked);
      await page.clock.setFixedTime(T50 + 10_000);
      await expect.poll(() => page.locator('#tx-code').getAttribute('data-code'), { message: 'a new minute, a new code' }).not.toBe(code);
      expect((await calls(page, 'transaction_frame')).length, 'one ask for the new step').toBe(asked + 1);
      await page.locator('.lang-btn').click();
      await expect.poll(() => page.locator('#tx-d-amount').textContent()).toBe('150,000 yen');
      expect(await page.locator('.tx-check-title').textContent()).toBe('Check the transfer');
      await shot(page, size, '31-tx-code-en');
      await ctx.close();
    });

    it('取引認証 on a phone: the QR fills the transfer and shows the payee', async () => {
      const qr = 'OTX2:10112231:999800000009:000112311234567000000150000:AAAAAAAAAAAAAAAAAAAAAAAAAA:ﾔﾏﾀﾞ ﾀﾛｳ';
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], mobile: true, scanResult: qr }, { at: T50 });
      await page.locator('#tx-open').click();
      await page.locator('#tx-scan').click();
      await page.locator('#tx-code[data-code]').waitFor();
      expect(await page.locator('#tx-d-payee').textContent()).toBe('ﾔﾏﾀﾞ ﾀﾛｳ');
      // The name is not signed: it is not among the details checked against the code, and
      // the screen says so.
      expect(await page.locator('#tx-details #tx-d-payee').count(), 'not in the checked list').toBe(0);
      expect(await page.locator('#tx-payee-note').textContent()).toContain('取引認証番号の計算に含まれません');
      expect(await page.locator('#tx-d-amount').textContent()).toBe('150,000円');
      expect(await calls(page, 'scan_transaction')).toEqual([{ text: qr }]);
      await shot(page, size, '32-tx-scanned');
      await ctx.close();
    });

    it('取引認証: the payee name stays with the scanned transfer, never beside a typed one', async () => {
      // The name is not in the code's input: shown beside an account it does not belong to, a
      // familiar name would vouch for a transfer the customer never scanned.
      const qr = 'OTX2:10112231:999800000009:000112311234567000000150000:AAAAAAAAAAAAAAAAAAAAAAAAAA:ﾔﾏﾀﾞ ﾀﾛｳ';
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], mobile: true, scanResult: qr }, { at: T50 });
      await page.locator('#tx-open').click();
      await page.locator('#tx-scan').click();
      await page.locator('#tx-code[data-code]').waitFor();
      expect(await page.locator('#tx-d-payee').textContent(), 'the scanned transfer names its payee').toBe('ﾔﾏﾀﾞ ﾀﾛｳ');
      // Back to the form, the account number changed, sent as typed.
      await page.locator('#back').click();
      await page.locator('#tx-form').waitFor();
      expect(await page.locator('#tx-accountNumber').inputValue(), 'the form holds the scanned transfer').toBe('1234567');
      await page.fill('#tx-accountNumber', '7654321');
      await page.locator('#tx-show').click();
      await expect.poll(() => page.locator('#tx-d-account').textContent()).toBe('7654321');
      expect(await page.locator('#tx-d-payee').count(), 'no payee name beside a typed account').toBe(0);
      expect(await page.locator('#tx-payee-note').count()).toBe(0);
      // Scanned again: the name is back with its own transfer.
      await page.locator('#back').click();
      await page.locator('#tx-scan').click();
      await expect.poll(() => page.locator('#tx-d-account').textContent()).toBe('1234567');
      expect(await page.locator('#tx-d-payee').textContent()).toBe('ﾔﾏﾀﾞ ﾀﾛｳ');
      // Back without a change and sent again: still exactly the scanned transfer, still named.
      await page.locator('#back').click();
      await page.locator('#tx-show').click();
      await page.locator('#tx-code[data-code]').waitFor();
      expect(await page.locator('#tx-d-payee').textContent(), 'the unchanged scanned transfer keeps its name').toBe('ﾔﾏﾀﾞ ﾀﾛｳ');
      // Back, the amount changed: a typed transfer, no name.
      await page.locator('#back').click();
      await page.fill('#tx-amount', '990000');
      await page.locator('#tx-show').click();
      await expect.poll(() => page.locator('#tx-d-amount').textContent()).toBe('990,000円');
      expect(await page.locator('#tx-d-payee').count(), 'no payee name beside a typed amount').toBe(0);
      // Changed back to the scanned amount by hand: typed all the same, no name.
      await page.locator('#back').click();
      await page.fill('#tx-amount', '150000');
      await page.locator('#tx-show').click();
      await expect.poll(() => page.locator('#tx-d-amount').textContent()).toBe('150,000円');
      expect(await page.locator('#tx-d-payee').count(), 'a transfer typed to match is still typed').toBe(0);
      await ctx.close();
    });

    it('tap to copy puts the code on the clipboard', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] }, { at: T50 });
      await page.locator('#code[data-code]').waitFor();
      const code = await page.locator('#code').getAttribute('data-code');
      await page.locator('#code').click();
      await expect.poll(() => page.locator('#copied').textContent()).toBe('コピーしました（30秒後にクリップボードから消去します）');
      expect(await calls(page, 'copy_code'), 'the shell copies (and later clears) the code').toEqual([{ id: 'tok-a' }]);
      expect(await page.evaluate(() => (window as unknown as { __clipboard: string }).__clipboard)).toBe(code);
      await shot(page, size, '09-code-copied');
      await ctx.close();
    });

    it('back into view, the code is asked anew (a lock the shell decided meanwhile shows at once)', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] }, { at: T50 });
      await page.locator('#code[data-code]').waitFor();
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(1);
      const asked = (await calls(page, 'code_frame')).length;
      await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      await expect.poll(async () => (await calls(page, 'code_frame')).length).toBe(asked + 1);
      await ctx.close();
    });

    it('with a PIN, the code leaves the page as the app goes out of view', async () => {
      // On return the page shows before the shell has said whether the app locked meanwhile
      // (and on iOS the privacy cover is gone by then): nothing of the old code may be there.
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468' }, { at: T50 });
      await page.locator('#lock-form').waitFor();
      await sendPin(page, '2468');
      await page.locator('#code[data-code]').waitFor();
      const code = (await page.locator('#code').getAttribute('data-code'))!;
      await expect.poll(() => page.locator('#next-code').isVisible()).toBe(true);
      const next = ((await page.locator('#next-code').textContent()) ?? '').replace(/\D/g, '');
      expect(code).toMatch(/^\d{6}$/);
      expect(next).toMatch(/^\d{6}$/);
      expect(await codeTraces(page, [code, next]), 'the codes are on screen').not.toEqual([]);
      await setVisibility(page, 'hidden');
      expect(await codeTraces(page, [code, next]), 'out of view').toEqual([]);
      expect(await page.locator('#code').innerText()).not.toMatch(/\d/);
      expect(await dataCodes(page)).not.toContain(code);
      await page.waitForTimeout(1200);
      expect(await codeTraces(page, [code, next]), 'the refresh does not bring it back while away').toEqual([]);
      // Back and still unlocked: the code is asked anew and shown.
      const asked = (await calls(page, 'code_frame')).length;
      await setVisibility(page, 'visible');
      await expect.poll(() => page.locator('#code').getAttribute('data-code')).toBe(code);
      expect((await calls(page, 'code_frame')).length, 'asked anew').toBeGreaterThan(asked);
      // Away again, and the shell locks meanwhile: the return shows the lock screen, never the code.
      await setVisibility(page, 'hidden');
      expect(await codeTraces(page, [code, next])).toEqual([]);
      await page.evaluate((codes) => {
        const w = window as unknown as { __codeSeen: boolean };
        w.__codeSeen = false;
        const app = document.getElementById('app') as HTMLElement;
        new MutationObserver(() => {
          const text = (app.textContent ?? '').replace(/\s+/g, '');
          if (codes.some((c) => app.outerHTML.includes(c) || text.includes(c))) w.__codeSeen = true;
        }).observe(app, { childList: true, subtree: true, characterData: true, attributes: true });
      }, [code, next]);
      await page.evaluate(() =>
        (window as unknown as { __TAURI_INTERNALS__: { invoke: (c: string) => Promise<unknown> } }).__TAURI_INTERNALS__.invoke('lock_now'),
      );
      await setVisibility(page, 'visible');
      await page.locator('#lock-form').waitFor();
      expect(await page.evaluate(() => (window as unknown as { __codeSeen: boolean }).__codeSeen), 'no code before the lock screen').toBe(false);
      await ctx.close();
    });

    it('with a PIN, the token list’s and 取引認証’s codes leave the page too', async () => {
      const { page, ctx } = await open(
        size,
        {
          tokens: [
            token('tok-a'),
            token('tok-b', { issuer: 'ACME Co', label: 'alice@example.com', kind: 'imported', service_id: null, user_id: null, period: 30 }),
          ],
          pin: '2468',
        },
        { at: T50 },
      );
      await page.locator('#lock-form').waitFor();
      await sendPin(page, '2468');
      await expect.poll(() => page.locator('.token-list button.code[data-code]').count()).toBe(2);
      const codes = await dataCodes(page);
      await setVisibility(page, 'hidden');
      expect(await codeTraces(page, codes)).toEqual([]);
      expect(await page.locator('.token-list button.code').allInnerTexts()).toEqual(['––– –––', '––– –––']);
      await setVisibility(page, 'visible');
      await expect.poll(() => dataCodes(page)).toEqual(codes);
      await page.locator('[data-open="tok-a"]').click();
      await page.locator('#tx-open').click();
      await page.fill('#tx-bankCode', '0001');
      await page.fill('#tx-branchCode', '123');
      await page.fill('#tx-accountNumber', '1234567');
      await page.fill('#tx-amount', '150000');
      await page.locator('#tx-show').click();
      await page.locator('#tx-code[data-code]').waitFor();
      const txCode = (await page.locator('#tx-code').getAttribute('data-code'))!;
      expect(txCode).toMatch(/^\d{8}$/);
      await setVisibility(page, 'hidden');
      expect(await codeTraces(page, [txCode])).toEqual([]);
      expect(await page.locator('#tx-code').innerText()).not.toMatch(/\d/);
      await page.waitForTimeout(1200);
      expect(await codeTraces(page, [txCode]), 'the refresh does not bring it back while away').toEqual([]);
      const txAsked = (await calls(page, 'transaction_frame')).length;
      await setVisibility(page, 'visible');
      await expect.poll(() => page.locator('#tx-code').getAttribute('data-code')).toBe(txCode);
      expect((await calls(page, 'transaction_frame')).length, 'asked anew, not drawn from memory').toBe(txAsked + 1);
      await ctx.close();
    });

    it('without a PIN, the code stays as the app goes out of view (as before)', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] }, { at: T50 });
      await page.locator('#code[data-code]').waitFor();
      const code = (await page.locator('#code').getAttribute('data-code'))!;
      await setVisibility(page, 'hidden');
      await page.waitForTimeout(1200);
      expect(await page.locator('#code').getAttribute('data-code')).toBe(code);
      expect(await page.locator('#code').innerText()).toBe(`${code.slice(0, 3)} ${code.slice(3)}`);
      await setVisibility(page, 'visible');
      expect(await page.locator('#code').getAttribute('data-code')).toBe(code);
      await ctx.close();
    });

    it('a clock check that finds a new offset brings the warning at once, not at the next step', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a', { clock_offset_secs: 0 })], clockOffset: 125 }, { at: T50 });
      await page.locator('#code[data-code]').waitFor();
      expect(await page.locator('#clock-warning').isHidden(), 'the stored offset is 0').toBe(true);
      await page.locator('#clock-warning:not([hidden])').waitFor();
      expect(await page.locator('#clock-warning').textContent()).toContain('約2分遅れています');
      expect((await calls(page, 'code_frame')).length, 'asked again after the check').toBe(2);
      await ctx.close();
    });

    it('warns clearly when the phone clock is off', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a', { clock_offset_secs: 125 })], clockOffset: 125 });
      await page.locator('#clock-warning:not([hidden])').waitFor();
      const text = await page.locator('#clock-warning').textContent();
      expect(text).toContain('スマートフォンの日時がずれています');
      expect(text).toContain('約2分遅れています');
      expect(await calls(page, 'check_clock')).toEqual([{ id: 'tok-a' }]);
      // The code first, then the network: the check is sent after the first frame came back.
      const order = await page.evaluate(() =>
        (window as unknown as { __calls: { cmd: string }[] }).__calls.map((c) => c.cmd),
      );
      expect(order.indexOf('code_frame'), order.join(',')).toBeGreaterThanOrEqual(0);
      expect(order.indexOf('check_clock'), order.join(',')).toBeGreaterThan(order.indexOf('code_frame'));
      await shot(page, size, '10-code-clock-warning');
      await ctx.close();
    });

    it('the clock is checked again on return to the app: a clock set right meanwhile ends the warning', async () => {
      // The customer is warned, sets the phone's clock right in Settings and comes back: the old
      // offset must not stay added to the now-correct clock (its codes would be refused).
      const { page, ctx } = await open(size, { tokens: [token('tok-a', { clock_offset_secs: 305 })], clockOffset: 305 }, { at: T50 });
      await page.locator('#clock-warning:not([hidden])').waitFor();
      expect(await page.locator('#clock-warning').textContent()).toContain('約5分遅れています');
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(1);
      // On the server's clock (305 s ahead) the step has 5 s left.
      expect(await page.locator('#countdown').getAttribute('data-seconds-left')).toBe('5');
      await setServerOffset(page, 0);
      await setVisibility(page, 'hidden');
      await setVisibility(page, 'visible');
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(2);
      await expect.poll(() => page.locator('#clock-warning').isHidden()).toBe(true);
      await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe('10'); // the code on the new offset
      await ctx.close();
    });

    it('the clock is checked again when the device clock jumps', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a', { clock_offset_secs: 305 })], clockOffset: 305 }, { at: T50 });
      await page.locator('#clock-warning:not([hidden])').waitFor();
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(1);
      // Set right in Settings while the app stays on screen: the wall clock jumps 305 s on.
      await setServerOffset(page, 0);
      await page.clock.setFixedTime(T50 + 305_000);
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(2);
      await expect.poll(() => page.locator('#clock-warning').isHidden()).toBe(true);
      await expect.poll(() => page.locator('#countdown').getAttribute('data-seconds-left')).toBe('5');
      await ctx.close();
    });

    it('取引認証: a device clock jump has the clock checked again and the code asked on the new offset', async () => {
      // The transaction code uses the offset the code screen measured. Set right in Settings
      // while the code is shown, the phone's clock jumps 305 s on: a code still on the old offset
      // is 5 minutes ahead of the bank's, and the bank refuses it.
      const { page, ctx } = await open(size, { tokens: [token('tok-a', { clock_offset_secs: 305 })], clockOffset: 305 }, { at: T50 });
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(1);
      const code = await showTxCode(page);
      // On the server's clock (305 s ahead) the step has 5 s left.
      expect(await page.locator('#tx-countdown').textContent()).toBe('この番号はあと5秒有効です');
      await setServerOffset(page, 0);
      await page.clock.setFixedTime(T50 + 305_000);
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(2);
      expect((await calls(page, 'check_clock'))[1]).toEqual({ id: 'tok-a' });
      await expect.poll(() => askedAfter(page, 'transaction_frame', 'check_clock'), { message: 'the frame asked again after the check' }).toBe(true);
      // The server's time is where it was: the same code, with the same 5 s left.
      await expect.poll(() => page.locator('#tx-code').getAttribute('data-code')).toBe(code);
      await expect.poll(() => page.locator('#tx-countdown').textContent()).toBe('この番号はあと5秒有効です');
      // And it stays: no frame on the old offset comes back, and the clock is checked once.
      await page.waitForTimeout(1500);
      expect(await page.locator('#tx-code').getAttribute('data-code')).toBe(code);
      expect(await page.locator('#tx-countdown').textContent()).toBe('この番号はあと5秒有効です');
      expect((await calls(page, 'check_clock')).length).toBe(2);
      await ctx.close();
    });

    it('取引認証: back into view, the clock is checked again and the code asked on the new offset', async () => {
      // The customer on the transaction code sets the phone's clock right in Settings and comes
      // back: the code must not stay on the offset measured before (it would be refused).
      const { page, ctx } = await open(size, { tokens: [token('tok-a', { clock_offset_secs: 305 })], clockOffset: 305 }, { at: T50 });
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(1);
      const code = await showTxCode(page);
      expect(await page.locator('#tx-countdown').textContent()).toBe('この番号はあと5秒有効です');
      await setServerOffset(page, 0);
      await setVisibility(page, 'hidden');
      await setVisibility(page, 'visible');
      await expect.poll(async () => (await calls(page, 'check_clock')).length).toBe(2);
      await expect.poll(() => askedAfter(page, 'transaction_frame', 'check_clock'), { message: 'the frame asked again after the check' }).toBe(true);
      // On the new offset (none) the step has 10 s left, and it is the step before: another code.
      await expect.poll(() => page.locator('#tx-countdown').textContent()).toBe('この番号はあと10秒有効です');
      const now = await page.locator('#tx-code').getAttribute('data-code');
      expect(now).toMatch(/^\d{8}$/);
      expect(now).not.toBe(code);
      await page.waitForTimeout(1500);
      expect(await page.locator('#tx-code').getAttribute('data-code')).toBe(now);
      expect(await page.locator('#tx-countdown').textContent()).toBe('この番号はあと10秒有効です');
      expect((await calls(page, 'check_clock')).length).toBe(2);
      await ctx.close();
    });

    it('says so when a token’s key is gone from the keystore', async () => {
      const { page, ctx } = await open(size, {
        tokens: [token('tok-a')],
        frameError: {
          code: 'SECRET_MISSING',
          message_ja: 'このトークンの鍵が端末に見つかりません。トークンを削除し、トークンの発行からやり直してください。',
          message_en: 'x',
        },
      });
      await page.locator('#code-error:not([hidden])').waitFor();
      expect(await page.locator('#code-error').getAttribute('data-code')).toBe('SECRET_MISSING');
      expect(await page.locator('#code').isDisabled()).toBe(true);
      await shot(page, size, '11-code-secret-missing');
      await ctx.close();
    });

    it('lists several tokens with their codes and opens one', async () => {
      const { page, ctx } = await open(size, {
        tokens: [
          token('tok-a'),
          token('tok-b', { issuer: 'ACME Co', label: 'alice@example.com', kind: 'imported', service_id: null, user_id: null, period: 30 }),
          token('tok-c', { issuer: null, label: 'work', kind: 'imported', service_id: null, user_id: null, digits: 8, period: 30 }),
        ],
      });
      await page.locator('#token-list').waitFor();
      await expect.poll(() => page.locator('.token-list button.code[data-code]').count()).toBe(3);
      expect(await page.locator('h1').textContent()).toBe('トークン一覧');
      const eight = await page.locator('.token-list li').nth(2).locator('button.code').innerText();
      expect(eight).toMatch(/^\d{4} \d{4}$/);
      // Imported tokens are marked (their names are whatever their QR codes said); the bank's is not.
      expect(await page.locator('.token-list li').nth(0).locator('.imported-mark').count()).toBe(0);
      for (const n of [1, 2])
        expect(await page.locator('.token-list li').nth(n).locator('.imported-mark').textContent()).toBe(
          '読み込んだトークン（当組合以外）',
        );
      await noHorizontalScroll(page);
      await shot(page, size, '12-list');
      await page.locator('[data-open="tok-b"]').click();
      await page.locator('#code[data-code]').waitFor();
      expect(await page.locator('#token-label').textContent()).toBe('ACME Co (alice@example.com)');
      expect(await page.locator('.code-screen .imported-mark').isVisible()).toBe(true);
      expect(await calls(page, 'check_clock'), 'imported tokens have no server clock').toEqual([]);
      await page.locator('#back').click();
      await page.locator('#token-list').waitFor();
      await ctx.close();
    });

    it('settings show the token, and deletion asks first', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] });
      await page.locator('#open-settings').click();
      await page.locator('#token-info').waitFor();
      const info = await page.locator('#token-info').innerText();
      for (const s of ['サービスID', '10112231', 'ユーザID', '999800000009', 'SHA1', '60秒']) expect(info).toContain(s);
      expect(await page.locator('#delete-note').textContent()).toContain('利用解除の後は');
      await noHorizontalScroll(page);
      await shot(page, size, '13-settings');
      await page.locator('#delete').click();
      await page.locator('[role="alertdialog"]').waitFor();
      await expect.poll(() => page.evaluate(() => document.activeElement?.id), { message: 'the safe choice has focus' }).toBe('confirm-cancel');
      await shot(page, size, '14-confirm-delete');
      await page.locator('#confirm-cancel').click();
      await page.locator('#token-info').waitFor();
      expect(await calls(page, 'delete_token')).toEqual([]);
      await page.locator('#delete').click();
      await page.locator('#confirm-delete').click();
      await page.locator('#notice').waitFor();
      expect(await page.locator('#notice').textContent()).toBe('トークンを削除しました。');
      expect(await page.locator('h1').textContent()).toBe('初期設定');
      expect(await calls(page, 'delete_token')).toEqual([{ id: 'tok-a' }]);
      await shot(page, size, '15-deleted');
      await ctx.close();
    });

    it('shows a failed deletion on the confirmation', async () => {
      const { page, ctx } = await open(size, {
        tokens: [token('tok-a')],
        deleteError: { code: 'KEYSTORE_FAILURE', message_ja: '端末の安全な保存領域でエラーが発生しました。', message_en: 'x' },
      });
      await page.locator('#open-settings').click();
      await page.locator('#delete').click();
      await page.locator('#confirm-delete').click();
      await page.locator('#action-error').waitFor();
      expect(await page.locator('#action-error').textContent()).toBe('端末の安全な保存領域でエラーが発生しました。');
      await shot(page, size, '16-delete-failed');
      await ctx.close();
    });

    it('a keystore that cannot open shows an error with a retry', async () => {
      const { page, ctx } = await open(size, {
        listError: {
          code: 'KEYSTORE_UNAVAILABLE',
          message_ja: '端末の安全な保存領域を利用できません。端末のロックを解除してから、もう一度お試しください。',
          message_en: "The device's secure storage is not available.",
        },
      });
      await page.locator('#fatal-error').waitFor();
      expect(await page.locator('#fatal-error').getAttribute('data-code')).toBe('KEYSTORE_UNAVAILABLE');
      expect(await page.locator('#retry').isVisible()).toBe(true);
      await shot(page, size, '17-fatal');
      await page.locator('#retry').click();
      await expect.poll(async () => (await calls(page, 'list_tokens')).length).toBe(2);
      await ctx.close();
    });

    it('a lost token list offers to delete the tokens and set up again, after a confirmation', async () => {
      const { page, ctx } = await open(size, {
        listError: {
          code: 'METADATA_MISSING',
          message_ja:
            'トークンの設定ファイルが見つかりません（登録済みのトークン1件）。トークンは削除されていません。トークンを削除して初期設定からやり直すか、サポートにお問い合わせください。',
          message_en: 'The token settings file is missing (1 token(s) registered).',
        },
      });
      await page.locator('#fatal-error').waitFor();
      expect(await page.locator('#fatal-error').getAttribute('data-code')).toBe('METADATA_MISSING');
      expect(await page.locator('#start-over').textContent()).toBe('トークンを削除して初期設定へ');
      await page.locator('#start-over').click();
      // Asked first: nothing is deleted on the first press.
      await page.locator('#start-over-confirm').waitFor();
      expect(await page.locator('#start-over-confirm').textContent()).toContain('暗証番号は削除されません');
      expect(await calls(page, 'vault_start_over')).toEqual([]);
      await shot(page, size, '17-fatal-start-over');
      await page.locator('#start-over-confirmed').click();
      await page.locator('#setup-form').waitFor();
      expect(await calls(page, 'vault_start_over')).toHaveLength(1);
      await ctx.close();
    });

    it('other fatal errors offer no start over', async () => {
      const { page, ctx } = await open(size, {
        listError: { code: 'METADATA_CORRUPT', message_ja: 'トークンの設定ファイルが読み取れません。', message_en: 'x' },
      });
      await page.locator('#fatal-error').waitFor();
      expect(await page.locator('#retry').isVisible()).toBe(true);
      expect(await page.locator('#start-over').count()).toBe(0);
      await ctx.close();
    });

    it('dark mode: setup and code', async () => {
      const a = await open(size, {}, { dark: true });
      await a.page.locator('#setup-form').waitFor();
      const bg = await a.page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
      expect(bg).toBe('rgb(15, 20, 32)');
      await shot(a.page, size, '18-dark-setup');
      await a.ctx.close();
      const b = await open(size, { tokens: [token('tok-a', { clock_offset_secs: -200 })], clockOffset: -200 }, { dark: true });
      await b.page.locator('#code[data-code]').waitFor();
      await shot(b.page, size, '19-dark-code');
      await b.ctx.close();
    });

    it('after setup the app offers a PIN, and sets one', async () => {
      const { page, ctx } = await open(size, { link: { service_id: '10112231', user_id: '999800000009' } });
      await page.locator('#activation_password').fill('4815');
      await page.getByLabel('上記の内容に同意する').check();
      await page.getByRole('button', { name: '送信' }).click();
      await page.locator('#lock-offer').waitFor();
      expect(await page.locator('h1').textContent()).toBe('アプリのロック');
      await noHorizontalScroll(page);
      await shot(page, size, '30-lock-offer');
      await page.locator('#lang').click();
      expect(await page.locator('#offer-later').textContent()).toBe('Not now');
      await shot(page, size, '30-lock-offer-en');
      await page.locator('#lang').click();
      await page.locator('#offer-accept').click();
      await page.locator('#pin-form[data-mode="set"]').waitFor();
      await shot(page, size, '31-pin-set');
      await page.locator('#pin-next').fill('2468');
      await page.locator('#pin-confirm').fill('2469');
      await page.locator('#pin-submit').click();
      await page.locator('#pin-error[data-code="PIN_CONFIRM"]').waitFor();
      expect(await calls(page, 'lock_set'), 'a mismatch never reaches the shell').toEqual([]);
      await shot(page, size, '32-pin-mismatch');
      await page.locator('#lang').click();
      await shot(page, size, '32-pin-mismatch-en');
      await page.locator('#lang').click();
      await page.locator('#pin-next').fill('2468');
      await page.locator('#pin-confirm').fill('2468');
      await page.locator('#pin-submit').click();
      await page.locator('#code[data-code]').waitFor();
      expect(await page.locator('#notice').textContent()).toBe('暗証番号を設定しました。');
      expect(await calls(page, 'lock_set')).toEqual([{ pin: '2468' }]);
      await ctx.close();
    });

    it('settings: app security in both languages, and lock now', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468', screenGuard: 'none' });
      await page.locator('#lock-form').waitFor();
      await sendPin(page, '2468');
      await page.locator('#code[data-code]').waitFor();
      await page.locator('#open-settings').click();
      await page.locator('#security').waitFor();
      expect(await page.locator('#lock-state').getAttribute('data-enabled')).toBe('true');
      expect(await page.locator('#screen-guard-note').getAttribute('data-protection')).toBe('none');
      await noHorizontalScroll(page);
      await shot(page, size, '33-settings-security');
      await page.locator('#lang').click();
      expect(await page.locator('#security-title').textContent()).toBe('App security');
      await shot(page, size, '33-settings-security-en');
      await page.locator('#lang').click();
      await page.locator('#lock-now').click();
      await page.locator('#lock-form').waitFor();
      expect(await calls(page, 'lock_now')).toHaveLength(1);
      await ctx.close();
    });

    it('phones: biometric unlock is off until turned on with the PIN', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468', mobile: true });
      await page.locator('#lock-form').waitFor();
      expect(await page.locator('#unlock-biometric').count(), 'not offered while off').toBe(0);
      await sendPin(page, '2468');
      await page.locator('#code[data-code]').waitFor();
      await page.locator('#open-settings').click();
      await page.locator('#biometric-setting').waitFor();
      expect(await page.locator('#biometric-setting').getAttribute('data-on')).toBe('false');
      await page.locator('#biometric-toggle').click();
      await page.locator('#pin-form[data-mode="bio-on"]').waitFor();
      expect(await page.locator('#pin-form input').count(), 'the current PIN only').toBe(1);
      await page.locator('#pin-form input').fill('1111');
      await page.locator('#pin-submit').click();
      await expect.poll(() => page.locator('#pin-error').getAttribute('data-code')).toBe('APP_PIN_WRONG');
      await page.waitForTimeout(1100);
      await page.locator('#pin-form input').fill('2468');
      await page.locator('#pin-submit').click();
      await page.locator('#biometric-setting[data-on="true"]').waitFor();
      expect(await calls(page, 'lock_biometric_set')).toEqual([
        { pin: '1111', on: true },
        { pin: '2468', on: true },
      ]);
      await shot(page, size, '33-settings-biometric-on');
      await page.locator('#lock-now').click();
      await page.locator('#unlock-biometric').click();
      await page.locator('#code[data-code]').waitFor();
      await ctx.close();
    });

    it('a desktop has no biometric switch', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468' });
      await sendPin(page, '2468');
      await page.locator('#open-settings').click();
      await page.locator('#security').waitFor();
      expect(await page.locator('#biometric-setting').count()).toBe(0);
      await ctx.close();
    });

    it('lock now as the app comes back into view: the PIN form is drawn once', async () => {
      // Both "lock now" and the return to the foreground find the app locked and ask for the
      // lock screen; the shell is slow to say how the lock stands, so both asks are in flight
      // together. Drawn twice, the form dropped what the customer had begun to type.
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468', lockStatusDelayMs: 300 });
      await page.locator('#lock-form').waitFor();
      await sendPin(page, '2468');
      await page.locator('#code[data-code]').waitFor();
      await page.locator('#open-settings').click();
      await page.locator('#security').waitFor();
      await page.evaluate(() => {
        const w = window as unknown as { __lockForms: number };
        w.__lockForms = 0;
        new MutationObserver((records) => {
          for (const r of records)
            for (const n of r.addedNodes)
              if (n instanceof HTMLElement && (n.id === 'lock-form' || n.querySelector('#lock-form'))) w.__lockForms++;
        }).observe(document.body, { childList: true, subtree: true });
      });
      await page.locator('#lock-now').click();
      await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      await page.locator('#lock-form').waitFor();
      await page.waitForTimeout(800);
      expect(await page.evaluate(() => (window as unknown as { __lockForms: number }).__lockForms)).toBe(1);
      await sendPin(page, '2468');
      await page.locator('#code[data-code]').waitFor();
      await ctx.close();
    });

    it('locked at start: a wrong PIN waits, the right one opens', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468' });
      await page.locator('#lock-form').waitFor();
      expect(await page.locator('h1').textContent()).toBe('ロック中');
      expect(await calls(page, 'code_frame'), 'no code is asked for while locked').toEqual([]);
      await noHorizontalScroll(page);
      await shot(page, size, '34-lock');
      await sendPin(page, '1111');
      await page.locator('#lock-error[data-code="APP_PIN_WRONG"]').waitFor();
      expect(await page.locator('#lock-error').textContent()).toContain('1秒後に再入力できます');
      expect(await page.locator('#unlock').isDisabled(), 'the button waits out the delay').toBe(true);
      await shot(page, size, '35-lock-wrong-pin');
      await page.locator('#lang').click();
      expect(await page.locator('h1').textContent()).toBe('Locked');
      await shot(page, size, '35-lock-wrong-pin-en');
      await page.locator('#lang').click();
      await expect.poll(() => page.locator('#unlock').isDisabled()).toBe(false);
      await sendPin(page, '2468');
      await page.locator('#code[data-code]').waitFor();
      await ctx.close();
    });

    it('a PIN being checked: its button waits, the last answer is gone, a second press sends nothing', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468', unlockDelayMs: 600 });
      await page.locator('#lock-form').waitFor();
      await sendPin(page, '1111');
      await page.locator('#lock-error[data-code="APP_PIN_WRONG"]').waitFor();
      expect(await page.locator('#lock-error').textContent()).toContain('1秒後に再入力できます');
      await expect.poll(() => page.locator('#unlock').isDisabled(), { timeout: 5000 }).toBe(false);
      await sendPin(page, '1112');
      // While the shell checks: no message from the attempt before, and the button is off.
      expect(await page.locator('#lock-error').count(), 'the first answer is gone').toBe(0);
      expect(await page.locator('#unlock').isDisabled(), 'one attempt at a time').toBe(true);
      await page.locator('#lock-pin').press('Enter');
      await page.locator('#lock-error[data-code="APP_PIN_WRONG"]').waitFor();
      expect(await page.locator('#lock-error').textContent()).toContain('2秒後に再入力できます');
      expect(await calls(page, 'lock_unlock'), 'Enter during the check sent nothing').toHaveLength(2);
      await ctx.close();
    });

    it('after ten wrong PINs: reprovision through the bank, deletion only on request', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')], pin: '2468', pinFailures: 10 });
      await page.locator('#locked-out').waitFor();
      expect(await page.locator('#locked-out-body').textContent()).toContain('再発行');
      await noHorizontalScroll(page);
      await shot(page, size, '36-locked-out');
      await page.locator('#lang').click();
      expect(await page.locator('#locked-out-title').textContent()).toBe('The token can no longer be used in this app');
      await shot(page, size, '36-locked-out-en');
      await page.locator('#lang').click();
      await page.locator('#reset-app').click();
      await page.locator('#reset-confirm').waitFor();
      expect(await calls(page, 'lock_reset'), 'nothing is deleted before the customer confirms').toEqual([]);
      await page.locator('#reset-confirmed').click();
      await page.locator('#setup-form').waitFor();
      expect(await calls(page, 'lock_reset')).toHaveLength(1);
      await ctx.close();
    });

    it('tap to show code: hidden until tapped, then copyable', async () => {
      const { page, ctx } = await open(size, { tokens: [token('tok-a')] });
      await page.locator('#code[data-code]').waitFor();
      await page.locator('#open-settings').click();
      await page.locator('#hide-code').check();
      await page.locator('#back').click();
      await page.locator('#code[data-hidden="true"]').waitFor();
      expect(await page.locator('#code').innerText()).toBe('••• •••');
      expect(await page.locator('#copy-hint').textContent()).toBe('タップして表示');
      await shot(page, size, '37-code-hidden');
      await page.locator('#lang').click();
      expect(await page.locator('#copy-hint').textContent()).toBe('Tap to show');
      await shot(page, size, '37-code-hidden-en');
      await page.locator('#lang').click();
      await page.locator('#code').click();
      await page.locator('#code[data-hidden="false"]').waitFor();
      expect(await page.locator('#code').innerText()).toMatch(/^\d{3} \d{3}$/);
      expect(await calls(page, 'copy_code'), 'the first tap only shows').toEqual([]);
      await page.locator('#code').click();
      await expect.poll(async () => (await calls(page, 'copy_code')).length).toBe(1);
      await ctx.close();
    });

    it('on a phone, scans an otpauth QR code into a new token', async () => {
      const uri = 'otpauth://totp/ACME%20Co:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co';
      const { page, ctx } = await open(size, { mobile: true, scanResult: uri });
      await page.locator('#scan').waitFor();
      await shot(page, size, '20-setup-mobile-scan');
      await page.locator('#scan').click();
      await page.locator('#code[data-code]').waitFor();
      expect(await calls(page, 'import_otpauth')).toEqual([{ uri }]);
      expect(await page.locator('#token-label').textContent()).toBe('ACME Co (alice@example.com)');
      await ctx.close();
    });

    it('on a phone, a QR code that is not an otpauth URI is refused in words', async () => {
      const { page, ctx } = await open(size, {
        mobile: true,
        scanResult: 'https://example.com/not-a-token',
        importError: {
          code: 'OTPAUTH_SCHEME',
          message_ja: 'QRコードの内容がワンタイムパスワードの設定として正しくありません。',
          message_en: 'x',
        },
      });
      await page.locator('#scan').click();
      await page.locator('#action-error').waitFor();
      expect(await page.locator('#action-error').textContent()).toBe('QRコードの内容がワンタイムパスワードの設定として正しくありません。');
      expect(await page.locator('#scan').isEnabled(), 'can scan again').toBe(true);
      await shot(page, size, '21-scan-refused');
      await ctx.close();
    });

    it('no scan button on the desktop build', async () => {
      const { page, ctx } = await open(size, {});
      await page.locator('#setup-form').waitFor();
      expect(await page.locator('#scan').count()).toBe(0);
      expect((page as Page & { jsErrors: string[] }).jsErrors).toEqual([]);
      await ctx.close();
    });
  });
}

/** WCAG contrast ratio of an element's text against the first opaque background behind it. */
async function worstContrast(page: Page, selectors: string[]): Promise<{ selector: string; ratio: number }> {
  return page.evaluate((sels) => {
    const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = (c: number[]) => {
      const [r, g, b] = c.slice(0, 3).map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const bgOf = (el: Element | null): number[] => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c;
      }
      return rgb(getComputedStyle(document.documentElement).backgroundColor);
    };
    let worst = { selector: '', ratio: 99 };
    for (const sel of sels) {
      for (const el of Array.from(document.querySelectorAll(sel))) {
        const fg = lum(rgb(getComputedStyle(el).color));
        const bg = lum(bgOf(el));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        if (ratio < worst.ratio) worst = { selector: sel, ratio };
      }
    }
    return worst;
  }, selectors);
}

describe('accessibility', () => {
  const TEXT = ['h1', '.lang-btn', 'label', '.hint', '.intro', '.terms-box li', 'button.primary', 'button.secondary', '.field-error', '.alert', '.notice', 'button.code', '.countdown .seconds', '.token-label', '.info dt', '.info dd', 'button.danger'];

  for (const dark of [false, true]) {
    it(`text contrast is at least 4.5:1 (${dark ? 'dark' : 'light'})`, async () => {
      const size = SIZES[1];
      const a = await open(size, { setupError: NETWORK }, { dark });
      await a.page.getByRole('button', { name: '送信' }).click();
      await a.page.locator('#agreed-error').waitFor();
      const setup = await worstContrast(a.page, TEXT);
      expect(setup.ratio, `setup: ${setup.selector}`).toBeGreaterThanOrEqual(4.5);
      await a.ctx.close();

      const b = await open(size, { tokens: [token('tok-a', { clock_offset_secs: 125 })], clockOffset: 125 }, { dark });
      await b.page.locator('#clock-warning:not([hidden])').waitFor();
      const code = await worstContrast(b.page, TEXT);
      expect(code.ratio, `code: ${code.selector}`).toBeGreaterThanOrEqual(4.5);
      await b.page.locator('#open-settings').click();
      await b.page.locator('#token-info').waitFor();
      const settings = await worstContrast(b.page, TEXT);
      expect(settings.ratio, `settings: ${settings.selector}`).toBeGreaterThanOrEqual(4.5);
      await b.ctx.close();
    });
  }

  it('every input has a label and every button a name', async () => {
    const { page, ctx } = await open(SIZES[0], { tokens: [token('tok-a')] });
    await page.locator('#code[data-code]').waitFor();
    const unnamed = await page.evaluate(() =>
      Array.from(document.querySelectorAll('button, input'))
        .filter((el) => {
          const e = el as HTMLElement;
          const labelled = (el as HTMLInputElement).labels?.length ?? 0;
          return !e.getAttribute('aria-label') && !e.textContent?.trim() && labelled === 0;
        })
        .map((el) => el.outerHTML),
    );
    expect(unnamed).toEqual([]);
    await ctx.close();
  });
});
