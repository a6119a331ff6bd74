// The initial setup (manual: アプリの初期設定): service ID, user ID and activation password, the
// terms, and the one request that provisions the token; a setup link fills the first two. On a
// phone, a QR code can be scanned instead (an otpauth:// import).
import { api, toShellError } from './api';
import { h } from './dom';
import { home, reloadTokens } from './nav';
import { actionErrorEl, focusFirstInvalid, header, noticeEl, say, show } from './page';
import { checkSetupForm, fieldForError, normalizeDigits, type SetupField } from './logic';
import { emptySetup, msg, state, t } from './state';

export function setupScreen(): HTMLElement {
  const tx = t();
  const s = state.setup;
  const fieldError = (f: SetupField) => {
    const e = s.errors[f];
    return e ? h('p', { class: 'field-error', id: `${f}-error` }, msg(e)) : null;
  };
  const input = (f: 'service_id' | 'user_id' | 'activation_password', label: string, hint: string, max: number) =>
    h(
      'div',
      { class: 'field' },
      h('label', { for: f }, label, ' ', h('span', { class: 'hint', id: `${f}-hint` }, hint)),
      h('input', {
        id: f,
        name: f,
        type: f === 'activation_password' ? 'password' : 'text',
        inputmode: 'numeric',
        autocomplete: 'off',
        autocapitalize: 'off',
        spellcheck: 'false',
        maxlength: max + 4,
        value: s.form[f],
        required: true,
        disabled: s.busy,
        'aria-invalid': s.errors[f] ? 'true' : 'false',
        'aria-describedby': `${f}-hint${s.errors[f] ? ` ${f}-error` : ''}`,
        oninput: (ev: Event) => {
          s.form[f] = (ev.target as HTMLInputElement).value;
        },
      }),
      fieldError(f),
    );

  const form = h(
    'form',
    { class: 'content', id: 'setup-form', novalidate: true, 'aria-labelledby': 'title', onsubmit: onSetupSubmit },
    h('p', { class: 'intro' }, tx.setupIntro),
    s.linkFilled ? h('p', { class: 'notice', role: 'status', id: 'link-filled' }, tx.linkFilled) : null,
    noticeEl(),
    actionErrorEl(),
    s.serverError
      ? h('p', { class: 'alert', role: 'alert', tabindex: -1, id: 'setup-error', 'data-code': s.serverError.code }, msg(s.serverError))
      : null,
    input('service_id', tx.serviceId, tx.serviceIdHint, 8),
    input('user_id', tx.userId, tx.userIdHint, 12),
    input('activation_password', tx.activationPassword, tx.activationPasswordHint, 8),
    h(
      'section',
      { class: 'terms', 'aria-labelledby': 'terms-title' },
      h('h2', { id: 'terms-title' }, tx.termsTitle),
      h('ul', { class: 'terms-box', tabindex: 0, id: 'terms' }, ...tx.terms.map((line) => h('li', {}, line))),
    ),
    h(
      'div',
      { class: 'field' },
      h(
        'label',
        { class: 'check' },
        h('input', {
          type: 'checkbox',
          id: 'agreed',
          checked: s.form.agreed,
          disabled: s.busy,
          'aria-invalid': s.errors.agreed ? 'true' : 'false',
          'aria-describedby': s.errors.agreed ? 'agreed-error' : null,
          onchange: (ev: Event) => {
            s.form.agreed = (ev.target as HTMLInputElement).checked;
          },
        }),
        h('span', {}, tx.agree),
      ),
      fieldError('agreed'),
    ),
    h('button', { class: 'primary', type: 'submit', id: 'submit', disabled: s.busy, 'aria-busy': s.busy ? 'true' : null }, tx.submit),
    s.busy ? h('p', { class: 'progress', role: 'status', id: 'progress' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), tx.sending) : null,
    state.info.mobile ? scanButton() : null,
    state.tokens.length > 0
      ? h('button', { class: 'secondary', type: 'button', id: 'cancel-setup', disabled: s.busy, onclick: () => home() }, tx.cancel)
      : null,
  );
  return h('main', { class: 'screen' }, header(tx.setupTitle), form);
}

async function onSetupSubmit(ev: Event) {
  ev.preventDefault();
  const s = state.setup;
  if (s.busy) return;
  s.form.service_id = normalizeDigits(s.form.service_id);
  s.form.user_id = normalizeDigits(s.form.user_id);
  s.form.activation_password = normalizeDigits(s.form.activation_password);
  s.serverError = null;
  s.errors = checkSetupForm(s.form, t());
  if (Object.keys(s.errors).length > 0) {
    show({ name: 'setup' }, { keepNotice: true });
    focusFirstInvalid();
    return;
  }
  s.busy = true;
  show({ name: 'setup' }, { keepNotice: true });
  say(t().sending);
  try {
    const token = await api.setupToken(s.form.service_id, s.form.user_id, s.form.activation_password, s.form.agreed);
    state.setup = emptySetup();
    if (!(await reloadTokens())) return;
    if (state.lock && !state.lock.enabled) show({ name: 'offer', id: token.id });
    else show({ name: 'code', id: token.id });
  } catch (e) {
    const err = toShellError(e);
    s.busy = false;
    const field = fieldForError(err.code);
    if (field) s.errors = { [field]: err };
    else s.serverError = err;
    if (field === 'activation_password' || err.code === 'WRONG_ACTIVATION_PASSWORD') s.form.activation_password = '';
    show({ name: 'setup' }, { keepNotice: true });
    if (field) focusFirstInvalid();
    else document.getElementById('setup-error')?.focus();
  }
}

export function fillFromLink(link: { service_id: string; user_id: string }) {
  const keep = state.setup.busy ? null : state.setup;
  state.setup = emptySetup();
  state.setup.form.service_id = link.service_id;
  state.setup.form.user_id = link.user_id;
  state.setup.form.agreed = keep?.form.agreed ?? false;
  state.setup.linkFilled = true;
  show({ name: 'setup' });
  document.getElementById('activation_password')?.focus();
}

export function scanButton(): HTMLElement {
  const tx = t();
  return h(
    'button',
    { class: 'secondary', type: 'button', id: 'scan', disabled: state.scanning, onclick: () => void onScan() },
    state.scanning ? tx.scanning : tx.scanQr,
  );
}

async function onScan() {
  state.scanning = true;
  show(state.view);
  try {
    const content = await api.scanQr();
    state.scanning = false;
    if (content === null) {
      show(state.view);
      return;
    }
    const token = await api.importOtpauth(content);
    await reloadTokens();
    show({ name: 'code', id: token.id });
  } catch (e) {
    state.scanning = false;
    state.notice = null;
    state.actionError = toShellError(e);
    show(state.view, { keepNotice: true });
  }
}

/** A new token's setup, from an empty form. */
export function startSetup() {
  state.setup = emptySetup();
  show({ name: 'setup' });
}
