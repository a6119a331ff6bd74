// The app's top: which screen draws which view, the fatal error, a token's settings and the
// delete confirmation, and the start. Plain DOM (no framework: the whole UI is a few screens, and
// the bundle budget is 60 KB gzipped). State lives in `state` (state.ts); `show()` (page.ts, with
// the header and the notices) draws a screen. The code and the token list, with the ticker that
// keeps their codes current, are in codes.ts; the initial setup in setup.ts, transaction
// authentication in tx.ts, the app lock and its PIN screens in security.ts; home and the way to
// the lock screen in nav.ts.
import { api, toShellError, type ShellError } from './api';
import {
  codeScreen,
  forgetClockCheck,
  listScreen,
  setFirstFrame,
  startTicker,
  stopTicker,
  tokenById,
  type FirstFrame,
} from './codes';
import { h } from './dom';
import { formatDate, tokenTitle } from './logic';
import { home, refreshLock, reloadTokens, showLock } from './nav';
import { actionErrorEl, header, provideScreens, say, show } from './page';
import { lockScreen, offerScreen, pinScreen, securitySection } from './security';
import { emptySetup, msg, state, t, type View } from './state';
import { fillFromLink, setupScreen } from './setup';
import { startTxTicker, txCodeScreen, txScreen } from './tx';

// --- navigation -------------------------------------------------------------------------------

// The page (page.ts) draws the screens through these; see `Screens` there for why.
provideScreens({ draw: screenFor, leave: stopTicker, enter: startTickers });

/** The tickers a screen just shown needs: its codes' or its transaction code's. */
function startTickers(view: View) {
  if (view.name === 'code' || view.name === 'list') startTicker();
  if (view.name === 'txcode') startTxTicker(view.id);
}

function screenFor(view: View): HTMLElement {
  switch (view.name) {
    case 'loading':
      return h('main', { class: 'screen center', 'aria-busy': 'true' }, h('p', { role: 'status' }, t().loading));
    case 'fatal':
      return fatalScreen(view.error);
    case 'setup':
      return setupScreen();
    case 'list':
      return listScreen();
    case 'code':
      return codeScreen(view.id);
    case 'settings':
      return settingsScreen(view.id);
    case 'confirm':
      return confirmScreen(view.id);
    case 'offer':
      return offerScreen(view.id);
    case 'pin':
      return pinScreen(view.mode, view.back);
    case 'lock':
      return lockScreen();
    case 'tx':
      return txScreen(view.id);
    case 'txcode':
      return txCodeScreen(view.id);
  }
}

// --- fatal error ---------------------------------------------------------------------------------

function fatalScreen(error: ShellError): HTMLElement {
  const tx = t();
  // The token list's file is lost while the keystore lists tokens: the customer may delete them
  // and set the app up again (after the bank reissues the token), or keep them for support.
  const startOver = error.code === 'METADATA_MISSING';
  const asked = startOver && state.startOverAsked;
  return h(
    'main',
    { class: 'screen' },
    header(tx.appTitle),
    h(
      'section',
      { class: 'content' },
      h('h2', {}, tx.errorTitle),
      h('p', { class: 'alert', role: 'alert', id: 'fatal-error', 'data-code': error.code }, msg(error)),
      h('button', { class: 'primary', type: 'button', id: 'retry', onclick: () => void retry() }, tx.retry),
      asked ? h('p', { id: 'start-over-confirm' }, tx.startOverConfirm) : null,
      startOver
        ? h(
            'button',
            {
              class: 'danger',
              type: 'button',
              id: asked ? 'start-over-confirmed' : 'start-over',
              onclick: () => void onStartOver(error),
            },
            asked ? tx.confirmDelete : tx.resetApp,
          )
        : null,
    ),
  );
}

function retry() {
  state.startOverAsked = false;
  return start();
}

/** First press: asks to confirm. Second: deletes the tokens the keystore lists, then starts. */
async function onStartOver(error: ShellError) {
  if (!state.startOverAsked) {
    state.startOverAsked = true;
    show({ name: 'fatal', error });
    return;
  }
  state.startOverAsked = false;
  try {
    await api.vaultStartOver();
  } catch (e) {
    const err = toShellError(e);
    if (err.code === 'APP_LOCKED') await showLock();
    else show({ name: 'fatal', error: err });
    return;
  }
  state.setup = emptySetup();
  await start();
}

// --- settings and deletion ------------------------------------------------------------------------

function settingsScreen(id: string): HTMLElement {
  const tx = t();
  const token = tokenById(id);
  if (!token) return h('main', { class: 'screen' }, header(tx.settings, { back: () => home() }));
  const row = (label: string, value: string, key: string) =>
    h('div', { class: 'info-row', 'data-key': key }, h('dt', {}, label), h('dd', {}, value));
  return h(
    'main',
    { class: 'screen' },
    header(tx.settings, { back: () => show({ name: 'code', id }) }),
    h(
      'section',
      { class: 'content', 'aria-labelledby': 'info-title' },
      actionErrorEl(),
      h('h2', { id: 'info-title' }, tx.tokenInfo),
      h(
        'dl',
        { class: 'info', id: 'token-info' },
        token.issuer ? row(tx.issuer, token.issuer, 'issuer') : null,
        row(tx.label, token.label, 'label'),
        row(tx.kind, token.kind === 'bank' ? tx.kindBank : tx.kindImported, 'kind'),
        token.service_id ? row(tx.serviceId, token.service_id, 'service_id') : null,
        token.user_id ? row(tx.userId, token.user_id, 'user_id') : null,
        row(tx.algorithm, token.algorithm, 'algorithm'),
        row(tx.digits, String(token.digits), 'digits'),
        row(tx.period, tx.periodValue(token.period), 'period'),
        row(tx.addedAt, formatDate(token.added_at, state.lang), 'added_at'),
        token.kind === 'bank' ? row(tx.clockOffset, tx.clockOffsetValue(token.clock_offset_secs), 'clock_offset') : null,
        state.info.version ? row(tx.version, state.info.version, 'version') : null,
      ),
      securitySection({ name: 'settings', id }),
      h('p', { class: 'hint', id: 'delete-note' }, tx.deleteNote),
      h(
        'button',
        { class: 'danger', type: 'button', id: 'delete', 'aria-describedby': 'delete-note', onclick: () => show({ name: 'confirm', id }) },
        tx.deleteToken,
      ),
    ),
  );
}

function confirmScreen(id: string): HTMLElement {
  const tx = t();
  const token = tokenById(id);
  const cancel = h('button', { class: 'secondary', type: 'button', id: 'confirm-cancel', onclick: () => show({ name: 'settings', id }) }, tx.cancel);
  const screen = h(
    'main',
    { class: 'screen' },
    header(tx.deleteToken, { back: () => show({ name: 'settings', id }) }),
    h(
      'section',
      { class: 'content dialog', role: 'alertdialog', 'aria-modal': 'true', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-body' },
      h('h2', { id: 'confirm-title' }, tx.confirmTitle),
      token ? h('p', { class: 'token-label' }, tokenTitle(token)) : null,
      h('p', { id: 'confirm-body' }, tx.confirmBody),
      actionErrorEl(),
      h('button', { class: 'danger', type: 'button', id: 'confirm-delete', onclick: () => void onDelete(id) }, tx.confirmDelete),
      cancel,
    ),
  );
  window.setTimeout(() => cancel.focus(), 0);
  return screen;
}

async function onDelete(id: string) {
  try {
    await api.deleteToken(id);
  } catch (e) {
    state.actionError = toShellError(e);
    show({ name: 'confirm', id }, { keepNotice: true });
    return;
  }
  forgetClockCheck(id);
  if (!(await reloadTokens())) return;
  state.setup = emptySetup();
  state.notice = t().deleted;
  home({ keepNotice: true });
  say(t().deleted);
}

// --- start ----------------------------------------------------------------------------------------

export async function start() {
  // Cold-start marks (read by the desktop e2e): the script runs, the shell has answered.
  performance.mark('ui-start');
  show({ name: 'loading' });
  // The shell's first answers do not depend on one another, so they are asked together: the
  // first code waits for one round trip through the WebView's IPC instead of four. The shell
  // itself refuses the listing while the app is locked (then the lock screen comes up), and
  // keeps a link until the unlock.
  const tokens = api.listTokens();
  tokens.catch(() => undefined); // handled by reloadTokens, or dropped when the app is locked
  const link = api.takeSetupLink().catch(() => null);
  // A lone token's code is asked as soon as the listing is in, and its screen is built once the
  // code is there (or after a short wait): the code is then in the screen's first paint. Asked
  // from the screen, the answer waited while the WebView laid out and painted it, 60–85 ms.
  const pre = tokens.then(
    (list): FirstFrame | null => {
      if (list.length !== 1) return null;
      const frame = api.codeFrame(list[0].id);
      frame.catch(() => undefined); // shown by the ticker that takes it; dropped if none does
      return { id: list[0].id, askedMs: Date.now(), frame };
    },
    () => null,
  );
  const [info, lock] = await Promise.all([api.appInfo().catch(() => null), refreshLock()]);
  if (info) state.info = info; // else keep the defaults: not mobile
  if (lock?.locked) {
    await showLock();
    return;
  }
  if (!(await reloadTokens(tokens))) return;
  performance.mark('tokens-listed');
  const taken = await link;
  if (taken) {
    fillFromLink(taken);
    return;
  }
  const first = await pre;
  setFirstFrame(first);
  if (first) {
    const settled = first.frame.then(
      () => undefined,
      () => undefined,
    );
    await Promise.race([settled, new Promise((r) => window.setTimeout(r, FIRST_FRAME_WAIT_MS))]);
  }
  home();
}

/** How long the first screen waits for its code before it comes up without it. */
const FIRST_FRAME_WAIT_MS = 150;
