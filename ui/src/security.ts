// App security: the settings section, the offer after setup, the PIN screens, the lock screen
// (which other screens reach through `showLock`, nav.ts).
import { api, toShellError, type LockView } from './api';
import { h } from './dom';
import { normalizeDigits } from './logic';
import { home, refreshLock, reloadTokens, showLock } from './nav';
import { header, noticeEl, say, show } from './page';
import { fillFromLink } from './setup';
import { emptyPin, emptySetup, HIDE_KEY, msg, state, t, type PinMode, type View } from './state';

// --- app security: settings section, the offer after setup, PIN screens, the lock screen ---------

export function securitySection(here: View): HTMLElement {
  const tx = t();
  const lock = state.lock;
  const protection = state.info.screen_guard?.protection ?? 'none';
  return h(
    'section',
    { class: 'security', id: 'security', 'aria-labelledby': 'security-title' },
    h('h2', { id: 'security-title' }, tx.securityTitle),
    noticeEl(),
    h(
      'div',
      { class: 'field' },
      h(
        'label',
        { class: 'check' },
        h('input', {
          type: 'checkbox',
          id: 'hide-code',
          checked: state.hideCode,
          'aria-describedby': 'hide-code-hint',
          onchange: (ev: Event) => {
            state.hideCode = (ev.target as HTMLInputElement).checked;
            state.revealed.clear();
            try {
              localStorage.setItem(HIDE_KEY, state.hideCode ? '1' : '0');
            } catch {
              /* private mode: for this run */
            }
          },
        }),
        h('span', {}, tx.hideCode),
      ),
      h('p', { class: 'hint', id: 'hide-code-hint' }, tx.hideCodeHint),
    ),
    h(
      'dl',
      { class: 'info' },
      h(
        'div',
        { class: 'info-row', id: 'lock-state', 'data-enabled': lock?.enabled ? 'true' : 'false' },
        h('dt', {}, tx.appLock),
        h('dd', {}, lock?.enabled ? tx.appLockOn : tx.appLockOff),
      ),
    ),
    h('p', { class: 'hint', id: 'lock-hint' }, tx.appLockHint),
    lock?.enabled
      ? h(
          'div',
          { class: 'button-row' },
          h('button', { class: 'secondary', type: 'button', id: 'change-pin', onclick: () => openPin('change', here) }, tx.changePin),
          h('button', { class: 'secondary', type: 'button', id: 'remove-pin', onclick: () => openPin('remove', here) }, tx.removePin),
          h('button', { class: 'secondary', type: 'button', id: 'lock-now', onclick: () => void onLockNow() }, tx.lockNow),
        )
      : h('button', { class: 'secondary', type: 'button', id: 'set-pin', onclick: () => openPin('set', here) }, tx.setPin),
    // Phones: biometric unlock, off until the customer turns it on with the PIN.
    lock?.enabled && state.info.mobile ? biometricSetting(lock, here) : null,
    h('p', { class: 'hint', id: 'screen-guard-note', 'data-protection': protection }, tx.screenGuardNote(protection)),
  );
}

function biometricSetting(lock: LockView, here: View): HTMLElement {
  const tx = t();
  return h(
    'div',
    { class: 'field', id: 'biometric-setting', 'data-on': lock.biometric_on ? 'true' : 'false' },
    h(
      'dl',
      { class: 'info' },
      h('div', { class: 'info-row' }, h('dt', {}, tx.biometricUnlock), h('dd', { id: 'biometric-state' }, lock.biometric_on ? tx.biometricStateOn : tx.biometricStateOff)),
    ),
    h('p', { class: 'hint', id: 'biometric-hint' }, tx.biometricHint),
    h(
      'button',
      { class: 'secondary', type: 'button', id: 'biometric-toggle', onclick: () => openPin(lock.biometric_on ? 'bio-off' : 'bio-on', here) },
      lock.biometric_on ? tx.turnBiometricOff : tx.turnBiometricOn,
    ),
  );
}

function openPin(mode: PinMode, back: View) {
  state.pin = emptyPin();
  show({ name: 'pin', mode, back });
  (document.querySelector('#pin-form input') as HTMLInputElement | null)?.focus();
}

export function offerScreen(id: string): HTMLElement {
  const tx = t();
  return h(
    'main',
    { class: 'screen' },
    header(tx.offerTitle),
    h(
      'section',
      { class: 'content', id: 'lock-offer', 'aria-labelledby': 'title' },
      h('p', { class: 'intro' }, tx.offerBody),
      h('button', { class: 'primary', type: 'button', id: 'offer-accept', onclick: () => openPin('set', { name: 'code', id }) }, tx.offerAccept),
      h('button', { class: 'secondary', type: 'button', id: 'offer-later', onclick: () => show({ name: 'code', id }) }, tx.offerLater),
    ),
  );
}

function pinInput(field: 'current' | 'next' | 'confirm', label: string): HTMLElement {
  const tx = t();
  const id = `pin-${field}`;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label, ' ', h('span', { class: 'hint' }, tx.pinHint)),
    h('input', {
      id,
      type: 'password',
      inputmode: 'numeric',
      autocomplete: 'off',
      maxlength: 10,
      value: state.pin[field],
      disabled: state.pin.busy,
      oninput: (ev: Event) => {
        state.pin[field] = (ev.target as HTMLInputElement).value;
      },
    }),
  );
}

export function pinScreen(mode: PinMode, back: View): HTMLElement {
  const tx = t();
  const p = state.pin;
  const titles: Record<PinMode, string> = {
    set: tx.pinTitleSet,
    change: tx.pinTitleChange,
    remove: tx.pinTitleRemove,
    'bio-on': tx.pinTitleBioOn,
    'bio-off': tx.pinTitleBioOff,
  };
  const title = titles[mode];
  // Setting or changing asks for a new PIN twice; the rest for the current one only.
  const newPin = mode === 'set' || mode === 'change';
  const error = p.error
    ? h('p', { class: 'alert', role: 'alert', id: 'pin-error', 'data-code': typeof p.error === 'string' ? 'PIN_CONFIRM' : p.error.code }, msg(p.error))
    : null;
  return h(
    'main',
    { class: 'screen' },
    header(title, { back: () => show(back) }),
    h(
      'form',
      { class: 'content', id: 'pin-form', 'data-mode': mode, novalidate: true, onsubmit: (ev: Event) => void onPinSubmit(ev, mode, back) },
      mode === 'set' ? h('p', { class: 'intro' }, tx.pinIntroSet) : null,
      mode === 'bio-on' ? h('p', { class: 'intro' }, tx.biometricHint) : null,
      error,
      mode !== 'set' ? pinInput('current', tx.pinCurrent) : null,
      newPin ? pinInput('next', tx.pinNew) : null,
      newPin ? pinInput('confirm', tx.pinConfirm) : null,
      h('button', { class: mode === 'remove' ? 'danger' : 'primary', type: 'submit', id: 'pin-submit', disabled: p.busy }, mode === 'remove' ? tx.removePin : tx.save),
    ),
  );
}

async function onPinSubmit(ev: Event, mode: PinMode, back: View) {
  ev.preventDefault();
  const p = state.pin;
  if (p.busy) return;
  const tx = t();
  p.current = normalizeDigits(p.current);
  p.next = normalizeDigits(p.next);
  p.confirm = normalizeDigits(p.confirm);
  if ((mode === 'set' || mode === 'change') && p.next !== p.confirm) {
    p.error = tx.pinMismatch;
    p.next = '';
    p.confirm = '';
    show({ name: 'pin', mode, back });
    return;
  }
  p.busy = true;
  show({ name: 'pin', mode, back });
  try {
    if (mode === 'set') state.lock = await api.lockSet(p.next);
    else if (mode === 'change') state.lock = await api.lockChange(p.current, p.next);
    else if (mode === 'remove') state.lock = await api.lockRemove(p.current);
    else state.lock = await api.lockBiometricSet(p.current, mode === 'bio-on');
  } catch (e) {
    const err = toShellError(e);
    state.pin = { ...emptyPin(), error: err };
    if (err.code === 'APP_LOCKED' || err.code === 'APP_PIN_LOCKED_OUT') {
      await showLock();
      return;
    }
    show({ name: 'pin', mode, back });
    return;
  }
  state.pin = emptyPin();
  const done: Record<PinMode, string> = {
    set: tx.pinSaved,
    change: tx.pinChanged,
    remove: tx.pinRemoved,
    'bio-on': tx.biometricTurnedOn,
    'bio-off': tx.biometricTurnedOff,
  };
  state.notice = done[mode];
  show(back, { keepNotice: true });
  say(state.notice);
}

async function onLockNow() {
  try {
    state.lock = await api.lockNow();
  } catch {
    /* keep the view */
  }
  if (state.lock?.locked) await showLock();
}

let waitTimer: number | undefined;

export function lockScreen(): HTMLElement {
  const tx = t();
  const lock = state.lock;
  if (waitTimer !== undefined) window.clearInterval(waitTimer);
  waitTimer = undefined;
  if (lock?.locked_out) {
    return h(
      'main',
      { class: 'screen' },
      header(tx.lockTitle),
      h(
        'section',
        { class: 'content', id: 'locked-out', 'aria-labelledby': 'locked-out-title' },
        h('h2', { id: 'locked-out-title' }, tx.lockedOutTitle),
        h('p', { class: 'alert', role: 'alert', id: 'locked-out-body' }, tx.lockedOutBody),
        state.resetAsked ? h('p', { id: 'reset-confirm' }, tx.resetConfirm) : null,
        h(
          'button',
          { class: 'danger', type: 'button', id: state.resetAsked ? 'reset-confirmed' : 'reset-app', onclick: () => void onReset() },
          state.resetAsked ? tx.confirmDelete : tx.resetApp,
        ),
      ),
    );
  }
  const wait = lock?.retry_after_secs ?? 0;
  const waitEl = h('p', { class: 'hint', id: 'lock-wait', role: 'status', hidden: wait <= 0 }, wait > 0 ? tx.waitSeconds(wait) : '');
  const submit = h('button', { class: 'primary', type: 'submit', id: 'unlock', disabled: wait > 0 }, tx.unlock);
  if (wait > 0) {
    const until = Date.now() + wait * 1000;
    waitTimer = window.setInterval(() => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0 || !waitEl.isConnected) {
        window.clearInterval(waitTimer);
        waitTimer = undefined;
        waitEl.hidden = true;
        submit.disabled = false;
        if (state.lock) state.lock.retry_after_secs = 0;
        return;
      }
      waitEl.textContent = tx.waitSeconds(left);
    }, 250);
  }
  return h(
    'main',
    { class: 'screen' },
    header(tx.lockTitle),
    h(
      'form',
      { class: 'content', id: 'lock-form', novalidate: true, onsubmit: (ev: Event) => void onUnlock(ev) },
      h('p', { class: 'intro' }, tx.lockIntro),
      state.lockError
        ? h('p', { class: 'alert', role: 'alert', id: 'lock-error', 'data-code': state.lockError.code }, msg(state.lockError))
        : null,
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'lock-pin' }, tx.pin),
        h('input', { id: 'lock-pin', type: 'password', inputmode: 'numeric', autocomplete: 'off', maxlength: 10 }),
      ),
      submit,
      waitEl,
      lock?.biometric
        ? h('button', { class: 'secondary', type: 'button', id: 'unlock-biometric', onclick: () => void onBiometric() }, tx.unlockBiometric)
        : null,
    ),
  );
}

async function afterUnlock(view: LockView) {
  state.lock = view;
  state.lockError = null;
  if (!(await reloadTokens())) return;
  await afterUnlockHome();
}

/** After the unlock: the link the app was opened with (kept by the shell), or home. */
async function afterUnlockHome() {
  const link = await api.takeSetupLink().catch(() => null);
  if (link) fillFromLink(link);
  else home();
}

async function onUnlock(ev: Event) {
  ev.preventDefault();
  // One attempt at a time, and the last attempt's message goes as this one is sent: a message
  // still on screen would read as the answer to this PIN.
  const submit = document.getElementById('unlock') as HTMLButtonElement | null;
  if (submit?.disabled) return;
  if (submit) submit.disabled = true;
  document.getElementById('lock-error')?.remove();
  const input = document.getElementById('lock-pin') as HTMLInputElement | null;
  const pin = normalizeDigits(input?.value ?? '');
  if (input) input.value = '';
  try {
    await afterUnlock(await api.lockUnlock(pin));
  } catch (e) {
    const err = toShellError(e);
    await refreshLock();
    state.lockError = err;
    show({ name: 'lock' });
    document.getElementById('lock-pin')?.focus();
  }
}

async function onBiometric() {
  try {
    await afterUnlock(await api.lockBiometric());
  } catch (e) {
    state.lockError = toShellError(e);
    show({ name: 'lock' });
  }
}

async function onReset() {
  if (!state.resetAsked) {
    state.resetAsked = true;
    show({ name: 'lock' });
    return;
  }
  try {
    state.lock = await api.lockReset();
  } catch (e) {
    state.lockError = toShellError(e);
    show({ name: 'lock' });
    return;
  }
  state.resetAsked = false;
  if (!(await reloadTokens())) return;
  state.setup = emptySetup();
  await afterUnlockHome();
}

