// The Rust shell, faked with @tauri-apps/api's mockIPC for the screen tests: the page sets
// `window.__mockConfig` (through Playwright's addInitScript) before this runs, and reads
// `window.__calls` / `window.__clipboard` to see what the UI asked for.
import { emit } from '@tauri-apps/api/event';
import { mockIPC } from '@tauri-apps/api/mocks';
import type { SetupLink, ShellError, TokenView } from '../src/api';

export interface MockConfig {
  tokens?: TokenView[];
  mobile?: boolean;
  link?: SetupLink | null;
  setupError?: ShellError;
  setupDelayMs?: number;
  listError?: ShellError;
  frameError?: ShellError;
  deleteError?: ShellError;
  /** Server minus device seconds, reported in frames when past 30 s. */
  clockOffset?: number;
  scanResult?: string | null;
  importError?: ShellError;
}

type W = Window & {
  __mockConfig?: MockConfig;
  __calls: { cmd: string; args: unknown }[];
  __clipboard?: string;
  /** What the shell does when the OS opens a link while the app runs. */
  __openLink?: (l: SetupLink) => Promise<void>;
};
const w = window as unknown as W;
const cfg: MockConfig = w.__mockConfig ?? {};
w.__calls = [];
let tokens: TokenView[] = [...(cfg.tokens ?? [])];
let link = cfg.link ?? null;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hash(s: string): number {
  let h = 7;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) % 1_000_003;
  return h;
}

/** A deterministic stand-in for TOTP: changes every period, differs per token. */
function fakeCode(id: string, step: number, digits: number): string {
  const mod = 10 ** digits;
  return String((step * 7919 + hash(id) * 104729) % mod).padStart(digits, '0');
}

function bankToken(serviceId: string, userId: string): TokenView {
  return {
    id: `tok-${userId}`,
    kind: 'bank',
    issuer: 'Example Bank',
    label: userId,
    service_id: serviceId,
    user_id: userId,
    algorithm: 'SHA1',
    digits: 6,
    period: 60,
    added_at: Math.floor(Date.now() / 1000),
    clock_offset_secs: cfg.clockOffset ?? 0,
    clock_checked_at: Math.floor(Date.now() / 1000),
  };
}

mockIPC(async (cmd, payload) => {
  const args = (payload ?? {}) as Record<string, unknown>;
  w.__calls.push({ cmd, args });
  switch (cmd) {
    case 'app_info':
      return { version: '0.1.0', mobile: cfg.mobile ?? false };
    case 'list_tokens':
      if (cfg.listError) throw cfg.listError;
      return tokens;
    case 'take_setup_link': {
      const l = link;
      link = null;
      return l;
    }
    case 'code_frame': {
      if (cfg.frameError) throw cfg.frameError;
      const token = tokens.find((t) => t.id === args.id);
      if (!token) throw { code: 'NO_SUCH_TOKEN', message_ja: '指定のトークンは登録されていません。', message_en: 'No such token.' };
      const now = Math.floor(Date.now() / 1000) + token.clock_offset_secs;
      const step = Math.floor(now / token.period);
      const off = token.clock_offset_secs;
      return {
        code: fakeCode(token.id, step, token.digits),
        next_code: fakeCode(token.id, step + 1, token.digits),
        seconds_left: token.period - (now % token.period),
        period: token.period,
        clock_warning: Math.abs(off) > 30 ? { offset_secs: off } : null,
      };
    }
    case 'check_clock':
      return { offset_secs: cfg.clockOffset ?? 0, warning: Math.abs(cfg.clockOffset ?? 0) > 30 };
    case 'setup_token': {
      await delay(cfg.setupDelayMs ?? 50);
      if (cfg.setupError) throw cfg.setupError;
      const token = bankToken(String(args.serviceId), String(args.userId));
      tokens.push(token);
      return token;
    }
    case 'delete_token':
      if (cfg.deleteError) throw cfg.deleteError;
      tokens = tokens.filter((t) => t.id !== args.id);
      return null;
    case 'import_otpauth': {
      if (cfg.importError) throw cfg.importError;
      const token: TokenView = {
        ...bankToken('', ''),
        id: 'tok-imported',
        kind: 'imported',
        issuer: 'ACME Co',
        label: 'alice@example.com',
        service_id: null,
        user_id: null,
        period: 30,
        clock_offset_secs: 0,
        clock_checked_at: null,
      };
      tokens.push(token);
      return token;
    }
    case 'plugin:clipboard-manager|write_text':
      w.__clipboard = String(args.text);
      return null;
    case 'plugin:barcode-scanner|request_permissions':
      return { camera: 'granted' };
    case 'plugin:barcode-scanner|scan':
      return { content: cfg.scanResult ?? '', format: 'QR_CODE', bounds: {} };
    default:
      throw { code: 'INTERNAL', message_ja: `未対応: ${cmd}`, message_en: `unmocked: ${cmd}` };
  }
}, { shouldMockEvents: true });

w.__openLink = async (l: SetupLink) => {
  link = l;
  await emit('setup-link', l);
};

await import('../src/main');
