// The UI's logic, free of DOM and IPC so vitest covers it: how codes are shown, the countdown,
// what the screen reader hears, the clock warning, setup form checks, error texts.
import type { Lang, Texts } from './i18n';
import type { ScannedTransaction, ShellError, TransactionFrame } from './api';

/** "123456" → "123 456"; "12345678" → "1234 5678"; anything else as it is. */
export function groupCode(code: string): string {
  if (!/^\d+$/.test(code) || code.length % 2 !== 0 || code.length < 6) return code;
  const half = code.length / 2;
  return `${code.slice(0, half)} ${code.slice(half)}`;
}

/** The two groups, for two separately styled spans. */
export function codeGroups(code: string): [string, string] {
  const grouped = groupCode(code);
  const i = grouped.indexOf(' ');
  return i < 0 ? [grouped, ''] : [grouped.slice(0, i), grouped.slice(i + 1)];
}

/** Milliseconds until the next whole second of `nowMs`, plus a small margin so the tick lands
 *  after the boundary (the countdown then changes when the clock's second changes). */
export function msUntilNextSecond(nowMs: number, marginMs = 15): number {
  return 1000 - (((nowMs % 1000) + 1000) % 1000) + marginMs;
}

/**
 * A shell frame counted on to `nowMs`, or null when the shell must be asked again: its step is
 * over, the device clock went back, or the frame does not say when it was made. The shell counts in whole device seconds (its clock
 * offset is whole seconds), so the seconds passed are the second boundaries crossed since the
 * frame's `at_secs`; the frame returned is stamped with the second it now stands for.
 */
export function frameNow<F extends { seconds_left: number; at_secs?: number }>(frame: F, nowMs: number): F | null {
  if (frame.at_secs === undefined) return null;
  const nowSecs = Math.floor(nowMs / 1000);
  const passed = nowSecs - frame.at_secs;
  const left = frame.seconds_left - passed;
  if (passed < 0 || left <= 0) return null;
  return passed === 0 ? frame : { ...frame, seconds_left: left, at_secs: nowSecs };
}

/**
 * The payee name to show beside the transfer a 取引認証 code is shown for: the scanned QR's name,
 * and only when that transfer is exactly the one the QR asked for (the same token, bank, branch,
 * account type, account number and amount). The name is not in the code's input (OCRA signs the
 * account and amount), so beside any other transfer a familiar name would vouch for an account
 * it does not belong to.
 */
export function scannedPayee(
  scanned: ScannedTransaction | null,
  id: string,
  shown: Pick<TransactionFrame, 'bank_code' | 'branch_code' | 'account_type' | 'account_number' | 'amount'>,
): string | null {
  if (!scanned || !scanned.payee_name) return null;
  const same =
    scanned.id === id &&
    scanned.bank_code === shown.bank_code &&
    scanned.branch_code === shown.branch_code &&
    scanned.account_type === shown.account_type &&
    scanned.account_number === shown.account_number &&
    scanned.amount === shown.amount;
  return same ? scanned.payee_name : null;
}

/** Fraction of the step still left, 0..1, for the countdown ring. */
export function remainingFraction(secondsLeft: number, period: number): number {
  if (period <= 0) return 0;
  return Math.min(1, Math.max(0, secondsLeft / period));
}

/**
 * What the polite live region should say on this tick, or null to stay silent. A screen reader
 * must not hear every second: it hears when the code changed, and once when 10 seconds are left
 * (so someone typing slowly knows to wait for the next one). The timer itself stays readable
 * on demand (role="timer" with its label).
 */
export function announcement(
  prev: { code: string; seconds_left: number } | null,
  next: { code: string; seconds_left: number },
  t: Texts,
): string | null {
  if (prev === null) return null;
  if (prev.code !== next.code) return t.codeChanged;
  if (prev.seconds_left > 10 && next.seconds_left <= 10) return t.secondsLeft(next.seconds_left);
  return null;
}

/** "約2分" / "約45秒": the clock offset in the unit people think in. */
export function offsetAmount(offsetSecs: number, t: Texts): string {
  const abs = Math.abs(offsetSecs);
  return abs >= 90 ? t.minutes(Math.round(abs / 60)) : t.seconds(abs);
}

/** The clock warning's text. A positive offset (server ahead) means the phone is slow. */
export function clockWarningText(offsetSecs: number, t: Texts): string {
  return t.clockWarnBody(offsetAmount(offsetSecs, t), offsetSecs < 0);
}

/** Full-width digits (what a Japanese keyboard may type) to ASCII; spaces and hyphens out. */
export function normalizeDigits(s: string): string {
  return s
    .replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
    .replace(/[\s\-－ー]/g, '');
}

export type SetupField = 'service_id' | 'user_id' | 'activation_password' | 'agreed';

export interface SetupForm {
  service_id: string;
  user_id: string;
  activation_password: string;
  agreed: boolean;
}

/** What the UI checks before sending: presence and the agreement. Formats (digits, check digit)
 *  are the core's to judge, so one rule lives in one place; its errors land on the field. */
export function checkSetupForm(form: SetupForm, t: Texts): Partial<Record<SetupField, string>> {
  const errors: Partial<Record<SetupField, string>> = {};
  if (form.service_id.trim() === '') errors.service_id = t.required;
  if (form.user_id.trim() === '') errors.user_id = t.required;
  if (form.activation_password === '') errors.activation_password = t.required;
  if (!form.agreed) errors.agreed = t.mustAgree;
  return errors;
}

/** The field an error code belongs to, so its message shows under that field. */
export function fieldForError(code: string): SetupField | null {
  switch (code) {
    case 'SERVICE_ID_FORMAT':
    case 'UNKNOWN_SERVICE_ID':
      return 'service_id';
    case 'USER_ID_FORMAT':
    case 'USER_ID_CHECK_DIGIT':
      return 'user_id';
    case 'ACTIVATION_PASSWORD_FORMAT':
    case 'WRONG_ACTIVATION_PASSWORD':
      return 'activation_password';
    case 'TERMS_NOT_AGREED':
      return 'agreed';
    default:
      return null;
  }
}

export function errorText(e: ShellError, lang: Lang): string {
  return lang === 'ja' ? e.message_ja : e.message_en;
}

/** Device Unix seconds → "2026/11/25 09:30" (ja) or "2026-11-25 09:30" (en), local time. */
export function formatDate(unixSecs: number, lang: Lang): string {
  const d = new Date(unixSecs * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  const date =
    lang === 'ja'
      ? `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())}`
      : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${date} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The name a token is shown under: "Issuer (label)" or the label alone. */
export function tokenTitle(token: { issuer: string | null; label: string }): string {
  return token.issuer && token.issuer !== token.label
    ? `${token.issuer} (${token.label})`
    : token.label;
}

/** The language to start in: the saved choice, else the system's, else Japanese. */
export function initialLang(saved: string | null, navigatorLang: string | undefined): Lang {
  if (saved === 'ja' || saved === 'en') return saved;
  if (navigatorLang && !navigatorLang.toLowerCase().startsWith('ja') && navigatorLang.toLowerCase().startsWith('en'))
    return 'en';
  return 'ja';
}
