// The one typed door to the Rust shell (STYLE §1): every IPC call of the UI goes through here.
// Secrets never come back through it: commands return codes, labels and seconds, nothing else.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

export interface AppInfo {
  version: string;
  /** True on Android and iOS: the QR scanner exists only there. */
  mobile: boolean;
  /** What the screen-capture guard did at start-up: flag_secure, privacy_cover or none. */
  screen_guard: { protection: string } | null;
}

/** The app lock. */
export interface LockView {
  enabled: boolean;
  /** The PIN must be given before anything else is shown. */
  locked: boolean;
  failures: number;
  retry_after_secs: number;
  /** Ten wrong PINs: the token must be reprovisioned through the bank. */
  locked_out: boolean;
  /** Phones: the device's biometrics may unlock now (the customer turned it on). */
  biometric: boolean;
  /** The customer's choice of biometric unlock (turned on and off with the PIN). */
  biometric_on: boolean;
}

export interface TokenView {
  id: string;
  kind: 'bank' | 'imported';
  issuer: string | null;
  label: string;
  service_id: string | null;
  user_id: string | null;
  algorithm: string;
  digits: number;
  period: number;
  /** Device Unix seconds. */
  added_at: number;
  /** Server clock minus device clock, as last measured. */
  clock_offset_secs: number;
  clock_checked_at: number | null;
}

export interface CodeFrame {
  code: string;
  next_code: string;
  /** Seconds until `code` is replaced, 1..=period, on the server-corrected clock. */
  seconds_left: number;
  period: number;
  /** Set when the device clock is off by more than the core's threshold. */
  clock_warning: { offset_secs: number } | null;
  /** The device second it was made at (Unix seconds); the page counts on from it. */
  at_secs?: number;
}

/** One frame of the 取引認証 screen: the transfer the code is for and its 8-digit code. */
export interface TransactionFrame {
  bank_code: string;
  branch_code: string;
  /** '1' 普通 (ordinary), '2' 当座 (current). */
  account_type: string;
  account_number: string;
  amount: number;
  code: string;
  seconds_left: number;
  period: number;
  clock_warning: { offset_secs: number } | null;
  /** The device second it was made at (Unix seconds); the page counts on from it. */
  at_secs?: number;
}

/** What a scanned 取引認証 QR holds: which token and the transfer. */
export interface ScannedTransaction {
  id: string;
  bank_code: string;
  branch_code: string;
  account_type: string;
  account_number: string;
  amount: number;
  payee_name: string;
}

/** The typed fallback's fields, as the customer typed them (the core checks each). */
export interface TransactionForm {
  bankCode: string;
  branchCode: string;
  accountType: string;
  accountNumber: string;
  amount: string;
}

export interface ClockView {
  offset_secs: number;
  warning: boolean;
}

export interface SetupLink {
  service_id: string;
  user_id: string;
}

/** What every command rejects with: a stable code and the texts to show. */
export interface ShellError {
  code: string;
  message_ja: string;
  message_en: string;
}

export function isShellError(e: unknown): e is ShellError {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as ShellError).code === 'string' &&
    typeof (e as ShellError).message_ja === 'string' &&
    typeof (e as ShellError).message_en === 'string'
  );
}

/** Any rejection as a ShellError (IPC failures that are not ours become INTERNAL). */
export function toShellError(e: unknown): ShellError {
  if (isShellError(e)) return e;
  return {
    code: 'INTERNAL',
    message_ja: 'アプリで予期しないエラーが発生しました。アプリを再起動してください。',
    message_en: 'Something went wrong in the app. Please restart it.',
  };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toShellError(e);
  }
}

export const api = {
  appInfo: () => call<AppInfo>('app_info'),
  listTokens: () => call<TokenView[]>('list_tokens'),
  codeFrame: (id: string) => call<CodeFrame>('code_frame', { id }),
  transactionFrame: (id: string, f: TransactionForm) =>
    call<TransactionFrame>('transaction_frame', { id, ...f }),
  scanTransaction: (text: string) => call<ScannedTransaction>('scan_transaction', { text }),
  checkClock: (id: string) => call<ClockView>('check_clock', { id }),
  setupToken: (serviceId: string, userId: string, activationPassword: string, agreed: boolean) =>
    call<TokenView>('setup_token', { serviceId, userId, activationPassword, agreed }),
  deleteToken: (id: string) => call<void>('delete_token', { id }),
  importOtpauth: (uri: string) => call<TokenView>('import_otpauth', { uri }),
  takeSetupLink: () => call<SetupLink | null>('take_setup_link'),
  onSetupLink: (handler: (link: SetupLink) => void): Promise<UnlistenFn> =>
    listen<SetupLink>('setup-link', (event) => handler(event.payload)),
  /** Copies the token's current code (as a secret); the shell clears it after 30 s. */
  copyCode: (id: string) => call<void>('copy_code', { id }),
  lockStatus: () => call<LockView>('lock_status'),
  lockUnlock: (pin: string) => call<LockView>('lock_unlock', { pin }),
  lockSet: (pin: string) => call<LockView>('lock_set', { pin }),
  lockChange: (current: string, next: string) => call<LockView>('lock_change', { current, new: next }),
  lockRemove: (current: string) => call<LockView>('lock_remove', { current }),
  lockNow: () => call<LockView>('lock_now'),
  lockReset: () => call<LockView>('lock_reset'),
  /** After METADATA_MISSING: deletes the tokens the keystore lists (the PIN stays). */
  vaultStartOver: () => call<void>('vault_start_over'),
  lockBiometric: () => call<LockView>('lock_biometric'),
  lockBiometricSet: (pin: string, on: boolean) => call<LockView>('lock_biometric_set', { pin, on }),
  appHidden: () => call<void>('app_hidden'),
  /** Returns whether the app is locked now. */
  appVisible: () => call<boolean>('app_visible'),
  onAppLocked: (handler: () => void): Promise<UnlistenFn> => listen('app-locked', () => handler()),
  /** Phones only: opens the camera and returns the QR code's text, or null if cancelled. */
  scanQr: async (): Promise<string | null> => {
    const scanner = await import('@tauri-apps/plugin-barcode-scanner');
    try {
      const granted = await scanner.requestPermissions();
      if (granted !== 'granted') return null;
      const result = await scanner.scan({ formats: [scanner.Format.QRCode], windowed: false });
      return result.content;
    } catch (e) {
      throw toShellError(e);
    }
  },
};
