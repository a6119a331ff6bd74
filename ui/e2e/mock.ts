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
  /** How long the shell takes to say how the lock stands. */
  lockStatusDelayMs?: number;
  deleteError?: ShellError;
  /** Server minus device seconds, reported in frames when past 30 s. */
  clockOffset?: number;
  scanResult?: string | null;
  importError?: ShellError;
  /** An app PIN is set (the app starts locked). */
  pin?: string;
  /** Wrong PINs so far (10: locked out). */
  pinFailures?: number;
  /** What the screen guard reports. */
  screenGuard?: string;
  /** How long the shell takes to check a PIN. */
  unlockDelayMs?: number;
  /** How long the shell takes to answer with a code (the real one: an IPC round trip). */
  frameDelayMs?: number;
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
let listError = cfg.listError;
const lock = {
  pin: cfg.pin ?? null as string | null,
  unlocked: !cfg.pin,
  failures: cfg.pinFailures ?? 0,
  notBefore: 0,
  biometric: false,
};

function lockView() {
  const enabled = lock.pin !== null;
  return {
    enabled,
    locked: enabled && !lock.unlocked,
    failures: lock.failures,
    retry_after_secs: Math.max(0, Math.ceil((lock.notBefore - Date.now()) / 1000)),
    locked_out: lock.failures >= 10,
    biometric: enabled && lock.biometric && (cfg.mobile ?? false),
    biometric_on: enabled && lock.biometric,
  };
}

const LOCKED = { code: 'APP_LOCKED', message_ja: 'アプリがロックされています。暗証番号を入力してください。', message_en: 'The app is locked. Please enter your PIN.' };

function ensureUnlocked() {
  if (lock.pin !== null && !lock.unlocked) throw LOCKED;
}

/** The shell's PIN check: delays 1, 2, 4 … s, ten wrong and out. */
function verifyPin(pin: string) {
  if (lock.pin === null) throw { code: 'APP_LOCK_NOT_SET', message_ja: '暗証番号は設定されていません。', message_en: 'No PIN is set.' };
  if (lock.failures >= 10)
    throw {
      code: 'APP_PIN_LOCKED_OUT',
      message_ja: '暗証番号を規定回数以上間違えたため、このアプリではトークンを利用できません。',
      message_en: 'The PIN was wrong too many times.',
    };
  const wait = Math.ceil((lock.notBefore - Date.now()) / 1000);
  if (wait > 0)
    throw { code: 'APP_PIN_WAIT', message_ja: `暗証番号を続けて間違えたため、${wait}秒お待ちください。`, message_en: `Too many wrong PINs. Please wait ${wait} second(s).` };
  if (pin === lock.pin) {
    lock.failures = 0;
    lock.notBefore = 0;
    return;
  }
  lock.failures += 1;
  const delay = 2 ** (lock.failures - 1);
  lock.notBefore = Date.now() + delay * 1000;
  const left = 10 - lock.failures;
  throw {
    code: 'APP_PIN_WRONG',
    message_ja: `暗証番号が正しくありません。${delay}秒後に再入力できます。あと${left}回間違えると、このアプリではトークンを利用できなくなります。`,
    message_en: `The PIN is not correct. You can try again in ${delay} second(s). After ${left} more wrong PIN(s) the token can no longer be used in this app.`,
  };
}

function frameFor(id: unknown) {
  const token = tokens.find((t) => t.id === id);
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
    at_secs: Math.floor(Date.now() / 1000),
  };
}

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
      return { version: '0.1.0', mobile: cfg.mobile ?? false, screen_guard: { protection: cfg.screenGuard ?? 'none' } };
    case 'list_tokens':
      ensureUnlocked();
      if (listError) throw listError;
      return tokens;
    case 'vault_start_over':
      // The shell's rule: behind the PIN, and only when the token list's file is lost.
      ensureUnlocked();
      if (listError?.code !== 'METADATA_MISSING')
        throw { code: 'VAULT_INTACT', message_ja: 'トークンの設定ファイルは正常です。', message_en: 'The token settings file is intact.' };
      listError = undefined;
      tokens = [];
      return null;
    case 'take_setup_link': {
      // A locked app hands out no link and keeps it for the unlock.
      if (lock.pin !== null && !lock.unlocked) return null;
      const l = link;
      link = null;
      return l;
    }
    case 'code_frame': {
      if (cfg.frameDelayMs) await new Promise((r) => setTimeout(r, cfg.frameDelayMs));
      ensureUnlocked();
      if (cfg.frameError) throw cfg.frameError;
      return frameFor(args.id);
    }
    case 'transaction_frame': {
      ensureUnlocked();
      const token = tokens.find((t) => t.id === args.id);
      if (!token) throw { code: 'NO_SUCH_TOKEN', message_ja: '指定のトークンは登録されていません。', message_en: 'No such token.' };
      const digits = (v: unknown) => String(v).replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)).replace(/[\s,-]/g, '');
      const checks: [string, RegExp, string, string, string][] = [
        ['bankCode', /^\d{4}$/, 'TX_BANK_CODE', '金融機関コードは半角数字4桁で入力してください。', 'Enter the bank code as 4 digits.'],
        ['branchCode', /^\d{3}$/, 'TX_BRANCH_CODE', '支店コードは半角数字3桁で入力してください。', 'Enter the branch code as 3 digits.'],
        ['accountNumber', /^\d{7}$/, 'TX_ACCOUNT_NUMBER', '口座番号は半角数字7桁で入力してください。', 'Enter the account number as 7 digits.'],
        ['amount', /^[1-9]\d{0,11}$/, 'TX_AMOUNT', '振込金額は1円以上の半角数字で入力してください。', 'Enter the amount in yen as digits, 1 or more.'],
      ];
      for (const [k, re, code, ja, en] of checks) if (!re.test(digits(args[k]))) throw { code, message_ja: ja, message_en: en };
      const now = Math.floor(Date.now() / 1000) + token.clock_offset_secs;
      const q = `${digits(args.bankCode)}${digits(args.branchCode)}${args.accountType}${digits(args.accountNumber)}${digits(args.amount)}`;
      return {
        bank_code: digits(args.bankCode),
        branch_code: digits(args.branchCode),
        account_type: String(args.accountType),
        account_number: digits(args.accountNumber),
        amount: Number(digits(args.amount)),
        code: fakeCode(token.id + q, Math.floor(now / 60), 8),
        seconds_left: 60 - (now % 60),
        period: 60,
        clock_warning: null,
        at_secs: Math.floor(Date.now() / 1000),
      };
    }
    case 'scan_transaction': {
      ensureUnlocked();
      const parts = String(args.text).split(':');
      if (parts[0] !== 'OTX2' || parts.length < 6)
        throw { code: 'TX_CHALLENGE_FORMAT', message_ja: 'QRコードの内容が取引認証のものとして正しくありません。', message_en: 'The QR code is not a transaction authentication code.' };
      const token = tokens.find((t) => t.service_id === parts[1] && t.user_id === parts[2]);
      if (!token)
        throw { code: 'CHALLENGE_OTHER_TOKEN', message_ja: 'このQRコードは別のトークン（サービスID・ユーザID）のものです。', message_en: 'This QR code is for another token (another service or user ID).' };
      const q = parts[3];
      return {
        id: token.id,
        bank_code: q.slice(0, 4),
        branch_code: q.slice(4, 7),
        account_type: q.slice(7, 8),
        account_number: q.slice(8, 15),
        amount: Number(q.slice(15)),
        payee_name: parts.slice(5).join(':'),
      };
    }
    case 'copy_code':
      ensureUnlocked();
      w.__clipboard = frameFor(args.id).code;
      return null;
    case 'lock_status':
      if (cfg.lockStatusDelayMs) await delay(cfg.lockStatusDelayMs);
      return lockView();
    case 'lock_unlock':
      if (cfg.unlockDelayMs) await delay(cfg.unlockDelayMs);
      verifyPin(String(args.pin));
      lock.unlocked = true;
      return lockView();
    case 'lock_set':
      ensureUnlocked();
      if (!/^\d{4,6}$/.test(String(args.pin)))
        throw { code: 'APP_PIN_FORMAT', message_ja: '暗証番号は半角数字4～6桁で入力してください。', message_en: 'Enter the PIN as 4 to 6 digits.' };
      lock.pin = String(args.pin);
      lock.unlocked = true;
      return lockView();
    case 'lock_change':
      ensureUnlocked();
      verifyPin(String(args.current));
      lock.pin = String(args.new);
      return lockView();
    case 'lock_remove':
      ensureUnlocked();
      verifyPin(String(args.current));
      lock.pin = null;
      lock.biometric = false;
      return lockView();
    case 'lock_biometric_set':
      ensureUnlocked();
      verifyPin(String(args.pin));
      lock.biometric = args.on === true;
      return lockView();
    case 'lock_biometric':
      if (!lock.biometric)
        throw { code: 'APP_BIOMETRIC_OFF', message_ja: '生体認証によるロック解除はオフです。', message_en: 'Biometric unlock is off.' };
      lock.unlocked = true;
      return lockView();
    case 'lock_now':
      lock.unlocked = false;
      return lockView();
    case 'lock_reset':
      tokens = [];
      lock.pin = null;
      lock.biometric = false;
      lock.failures = 0;
      lock.unlocked = true;
      return lockView();
    case 'app_hidden':
      return null;
    case 'app_visible':
      return lockView().locked;
    case 'check_clock': {
      // The shell stores the reading: the token's later frames are on the new offset.
      const token = tokens.find((t) => t.id === args.id);
      if (token) tokens = tokens.map((t) => (t.id === args.id ? { ...t, clock_offset_secs: cfg.clockOffset ?? 0 } : t));
      return { offset_secs: cfg.clockOffset ?? 0, warning: Math.abs(cfg.clockOffset ?? 0) > 30 };
    }
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
