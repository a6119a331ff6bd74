import { describe, expect, it } from 'vitest';
import { texts } from './i18n';
import {
  announcement,
  checkSetupForm,
  clockWarningText,
  codeGroups,
  errorText,
  fieldForError,
  formatDate,
  frameNow,
  groupCode,
  initialLang,
  msUntilNextSecond,
  normalizeDigits,
  offsetAmount,
  remainingFraction,
  scannedPayee,
  tokenTitle,
} from './logic';
import { isShellError, toShellError } from './api';

const ja = texts.ja;
const en = texts.en;

describe('the scanned payee name beside a 取引認証 transfer', () => {
  const scanned = {
    id: 'tok-a',
    bank_code: '0001',
    branch_code: '123',
    account_type: '1',
    account_number: '1234567',
    amount: 150000,
    payee_name: 'ﾔﾏﾀﾞ ﾀﾛｳ',
  };
  const { id: _id, payee_name: _name, ...transfer } = scanned;
  it('is shown beside exactly the scanned transfer', () => {
    expect(scannedPayee(scanned, 'tok-a', transfer)).toBe('ﾔﾏﾀﾞ ﾀﾛｳ');
  });
  it('is not shown beside any other transfer, nor for another token, nor without a scan', () => {
    for (const change of [
      { bank_code: '0002' },
      { branch_code: '124' },
      { account_type: '2' },
      { account_number: '7654321' },
      { amount: 150001 },
    ])
      expect(scannedPayee(scanned, 'tok-a', { ...transfer, ...change }), JSON.stringify(change)).toBeNull();
    expect(scannedPayee(scanned, 'tok-b', transfer)).toBeNull();
    expect(scannedPayee(null, 'tok-a', transfer)).toBeNull();
    expect(scannedPayee({ ...scanned, payee_name: '' }, 'tok-a', transfer)).toBeNull();
  });
});

describe('a shell frame counted on in the page', () => {
  const at = 1_795_000_000;
  const frame = { code: '123456', seconds_left: 10, at_secs: at };
  it('counts the second boundaries crossed since the frame was made', () => {
    expect(frameNow(frame, at * 1000 + 999)).toBe(frame);
    expect(frameNow(frame, (at + 3) * 1000 + 5)).toEqual({ ...frame, seconds_left: 7, at_secs: at + 3 });
    expect(frameNow(frame, (at + 9) * 1000)?.seconds_left).toBe(1);
  });
  it('asks the shell again at the end of the step, a clock set back, or a frame without its second', () => {
    expect(frameNow(frame, (at + 10) * 1000)).toBeNull();
    expect(frameNow(frame, (at - 1) * 1000 + 999)).toBeNull();
    expect(frameNow({ seconds_left: 10 }, at * 1000)).toBeNull();
  });
});

describe('code display', () => {
  it('shows six digits as two groups of three, eight as two of four', () => {
    expect(groupCode('123456')).toBe('123 456');
    expect(codeGroups('123456')).toEqual(['123', '456']);
    expect(groupCode('12345678')).toBe('1234 5678');
    expect(codeGroups('012345')).toEqual(['012', '345']);
  });

  it('leaves anything that is not an even run of 6+ digits alone', () => {
    expect(groupCode('12345')).toBe('12345');
    expect(groupCode('abc123')).toBe('abc123');
    expect(codeGroups('')).toEqual(['', '']);
  });
});

describe('countdown', () => {
  it('ticks just after the clock second changes, however late the last tick was', () => {
    expect(msUntilNextSecond(1_700_000_000_000)).toBe(1015);
    expect(msUntilNextSecond(1_700_000_000_999)).toBe(16);
    expect(msUntilNextSecond(1_700_000_000_500, 0)).toBe(500);
  });

  it('draws the share of the step left, clamped', () => {
    expect(remainingFraction(30, 60)).toBe(0.5);
    expect(remainingFraction(60, 60)).toBe(1);
    expect(remainingFraction(90, 60)).toBe(1);
    expect(remainingFraction(5, 0)).toBe(0);
  });

  it('speaks when the code changes and once at ten seconds, never every second', () => {
    const f = (code: string, s: number) => ({ code, seconds_left: s });
    expect(announcement(null, f('111111', 40), ja)).toBeNull();
    expect(announcement(f('111111', 40), f('111111', 39), ja)).toBeNull();
    expect(announcement(f('111111', 11), f('111111', 10), ja)).toBe('あと10秒');
    expect(announcement(f('111111', 10), f('111111', 9), ja)).toBeNull();
    expect(announcement(f('111111', 1), f('222222', 60), ja)).toBe(ja.codeChanged);
    expect(announcement(f('111111', 1), f('222222', 60), en)).toBe(en.codeChanged);
    // Over a whole step, at most two announcements.
    let prev = f('111111', 60);
    let spoken = 0;
    for (let s = 59; s >= 1; s--) {
      const next = f('111111', s);
      if (announcement(prev, next, ja)) spoken++;
      prev = next;
    }
    if (announcement(prev, f('222222', 60), ja)) spoken++;
    expect(spoken).toBe(2);
  });
});

describe('clock warning', () => {
  it('says how far and which way the phone clock is off', () => {
    // offset = server - device: positive means the phone is behind (slow).
    expect(clockWarningText(120, ja)).toContain('約2分遅れて');
    expect(clockWarningText(-45, ja)).toContain('約45秒進んで');
    expect(clockWarningText(-300, en)).toContain('about 5 min fast');
    expect(clockWarningText(40, en)).toContain('40 s slow');
    expect(offsetAmount(89, ja)).toBe('89秒');
    expect(offsetAmount(90, ja)).toBe('2分');
  });
});

describe('setup form', () => {
  const good = { service_id: '10112231', user_id: '999800000009', activation_password: '1234', agreed: true };

  it('accepts a filled, agreed form (formats are the core’s to judge)', () => {
    expect(checkSetupForm(good, ja)).toEqual({});
    expect(checkSetupForm({ ...good, user_id: '12' }, ja)).toEqual({});
  });

  it('asks for every empty field and for the agreement', () => {
    const errors = checkSetupForm({ service_id: ' ', user_id: '', activation_password: '', agreed: false }, ja);
    expect(errors).toEqual({
      service_id: ja.required,
      user_id: ja.required,
      activation_password: ja.required,
      agreed: '「上記の内容に同意する」にチェックしてください。',
    });
  });

  it('turns what a Japanese keyboard types into plain digits', () => {
    expect(normalizeDigits('１０１１２２３１')).toBe('10112231');
    expect(normalizeDigits('9998 0000 0009')).toBe('999800000009');
    expect(normalizeDigits('9998-0000-0009')).toBe('999800000009');
  });

  it('puts the core’s errors under the field they are about', () => {
    expect(fieldForError('SERVICE_ID_FORMAT')).toBe('service_id');
    expect(fieldForError('UNKNOWN_SERVICE_ID')).toBe('service_id');
    expect(fieldForError('USER_ID_CHECK_DIGIT')).toBe('user_id');
    expect(fieldForError('USER_ID_FORMAT')).toBe('user_id');
    expect(fieldForError('WRONG_ACTIVATION_PASSWORD')).toBe('activation_password');
    expect(fieldForError('TERMS_NOT_AGREED')).toBe('agreed');
    expect(fieldForError('NETWORK')).toBeNull();
    expect(fieldForError('ISSUANCE_DEAD')).toBeNull();
  });
});

describe('errors', () => {
  const e = { code: 'NETWORK', message_ja: 'サーバーに接続できません。', message_en: 'Cannot reach the server.' };

  it('shows the text in the chosen language', () => {
    expect(errorText(e, 'ja')).toBe(e.message_ja);
    expect(errorText(e, 'en')).toBe(e.message_en);
  });

  it('keeps the shell’s errors and wraps anything else as INTERNAL', () => {
    expect(isShellError(e)).toBe(true);
    expect(toShellError(e)).toBe(e);
    expect(isShellError('boom')).toBe(false);
    const wrapped = toShellError(new Error('raw text must not reach the screen'));
    expect(wrapped.code).toBe('INTERNAL');
    expect(wrapped.message_ja).not.toContain('raw text');
  });
});

describe('labels and language', () => {
  it('names a token by issuer and label', () => {
    expect(tokenTitle({ issuer: 'Example Bank', label: '999800000009' })).toBe('Example Bank (999800000009)');
    expect(tokenTitle({ issuer: null, label: 'alice' })).toBe('alice');
    expect(tokenTitle({ issuer: 'x', label: 'x' })).toBe('x');
  });

  it('formats dates per language', () => {
    const d = new Date(2026, 10, 25, 9, 5).getTime() / 1000;
    expect(formatDate(d, 'ja')).toBe('2026/11/25 09:05');
    expect(formatDate(d, 'en')).toBe('2026-11-25 09:05');
  });

  it('starts in Japanese unless English was chosen or the system is English', () => {
    expect(initialLang(null, 'ja-JP')).toBe('ja');
    expect(initialLang(null, undefined)).toBe('ja');
    expect(initialLang(null, 'en-US')).toBe('en');
    expect(initialLang(null, 'fr-FR')).toBe('ja');
    expect(initialLang('en', 'ja-JP')).toBe('en');
    expect(initialLang('ja', 'en-US')).toBe('ja');
  });

  it('has every text in both languages', () => {
    expect(Object.keys(en).sort()).toEqual(Object.keys(ja).sort());
    expect(en.terms.length).toBe(ja.terms.length);
  });
});
