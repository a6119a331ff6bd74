// What the UI holds between screens: the screen shown, the tokens, the forms' contents, the
// settings kept in local storage, and the texts of the chosen language.

import type { AppInfo, LockView, ScannedTransaction, ShellError, TokenView, TransactionForm, TransactionFrame } from './api';
import { texts, type Lang, type Texts } from './i18n';
import { errorText, initialLang, type SetupField, type SetupForm } from './logic';

export type View =
  | { name: 'loading' }
  | { name: 'fatal'; error: ShellError }
  | { name: 'setup' }
  | { name: 'list' }
  | { name: 'code'; id: string }
  | { name: 'settings'; id: string }
  | { name: 'confirm'; id: string }
  | { name: 'offer'; id: string }
  | { name: 'pin'; mode: PinMode; back: View }
  | { name: 'lock' }
  | { name: 'tx'; id: string }
  | { name: 'txcode'; id: string };

interface TxState {
  form: TransactionForm;
  /**
   * The transfer a scanned QR asked for, with its token and the payee name it carried (shown,
   * not signed). The name is shown only beside exactly this transfer (`scannedPayee`, logic.ts);
   * an edit of the form drops it, so a typed transfer never shows a name.
   */
  scanned: ScannedTransaction | null;
  error: ShellError | null;
  frame: TransactionFrame | null;
}

export function emptyTx(): TxState {
  return {
    form: { bankCode: '', branchCode: '', accountType: '1', accountNumber: '', amount: '' },
    scanned: null,
    error: null,
    frame: null,
  };
}

export type PinMode = 'set' | 'change' | 'remove' | 'bio-on' | 'bio-off';

interface PinState {
  current: string;
  next: string;
  confirm: string;
  error: ShellError | string | null;
  busy: boolean;
}

interface SetupState {
  form: SetupForm;
  errors: Partial<Record<SetupField, string | ShellError>>;
  serverError: ShellError | null;
  busy: boolean;
  linkFilled: boolean;
}

export const LANG_KEY = 'otp.lang';
export const HIDE_KEY = 'otp.hideCode';
/** A revealed code hides again after this long (tap to show). */
export const REVEAL_MS = 30_000;

export const state = {
  lang: initialLang(safeStorageGet(LANG_KEY), navigator.language) as Lang,
  info: { version: '', mobile: false } as AppInfo,
  tokens: [] as TokenView[],
  view: { name: 'loading' } as View,
  setup: emptySetup(),
  notice: null as string | null,
  actionError: null as ShellError | null,
  scanning: false,
  lock: null as LockView | null,
  /** Settings: "tap to show code" (off by default). */
  hideCode: safeStorageGet(HIDE_KEY) === '1',
  /** Token ID → until when (ms) its code is shown although hidden by the setting. */
  revealed: new Map<string, number>(),
  pin: emptyPin(),
  lockError: null as ShellError | null,
  resetAsked: false,
  /** The fatal screen's "delete the tokens and set up again" was pressed once (to confirm). */
  startOverAsked: false,
  tx: emptyTx(),
};

export function emptyPin(): PinState {
  return { current: '', next: '', confirm: '', error: null, busy: false };
}

export function emptySetup(): SetupState {
  return {
    form: { service_id: '', user_id: '', activation_password: '', agreed: false },
    errors: {},
    serverError: null,
    busy: false,
    linkFilled: false,
  };
}

function safeStorageGet(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export const t = (): Texts => texts[state.lang];
export const msg = (e: ShellError | string): string => (typeof e === 'string' ? e : errorText(e, state.lang));

