// The page frame every screen shares: the header, the live region, notices, focus, and `show()`,
// which puts a screen in the page. The screens themselves are in app.ts, codes.ts, setup.ts,
// tx.ts and security.ts; they all import this module, so it imports none of them (see `Screens`).
import { h } from './dom';
import { LANG_KEY, msg, state, t, type View } from './state';

// --- chrome: header, live region ----------------------------------------------------------------

const root = document.getElementById('app') as HTMLElement;
const announcer = h('div', { class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true', id: 'announcer' });

export function say(text: string) {
  // Re-setting the same text would not be read again: clear first.
  announcer.textContent = '';
  window.setTimeout(() => (announcer.textContent = text), 30);
}

export function header(title: string, opts: { back?: () => void; settings?: () => void } = {}): HTMLElement {
  const tx = t();
  return h(
    'header',
    { class: 'bar' },
    opts.back
      ? h('button', { class: 'icon-btn', type: 'button', id: 'back', 'aria-label': tx.back, onclick: opts.back }, '‹')
      : h('span', { class: 'icon-spacer', 'aria-hidden': 'true' }),
    h('h1', { id: 'title' }, title),
    h(
      'button',
      {
        class: 'lang-btn',
        type: 'button',
        id: 'lang',
        lang: state.lang === 'ja' ? 'en' : 'ja',
        'aria-label': tx.langToggleLabel,
        onclick: toggleLang,
      },
      tx.langToggle,
    ),
    opts.settings
      ? h('button', { class: 'icon-btn', type: 'button', id: 'open-settings', 'aria-label': tx.settings, onclick: opts.settings }, '⚙')
      : null,
  );
}

function toggleLang() {
  state.lang = state.lang === 'ja' ? 'en' : 'ja';
  try {
    localStorage.setItem(LANG_KEY, state.lang);
  } catch {
    /* private mode: the choice lasts for this run */
  }
  show(state.view, { keepNotice: true });
  document.getElementById('lang')?.focus();
}

export function noticeEl(): HTMLElement | null {
  return state.notice ? h('p', { class: 'notice', role: 'status', id: 'notice' }, state.notice) : null;
}

export function actionErrorEl(): HTMLElement | null {
  return state.actionError
    ? h('p', { class: 'alert', role: 'alert', id: 'action-error', 'data-code': state.actionError.code }, msg(state.actionError))
    : null;
}

export function focusFirstInvalid() {
  (document.querySelector('[aria-invalid="true"]') as HTMLElement | null)?.focus();
}

// --- showing a screen ---------------------------------------------------------------------------

/**
 * What `show()` needs from the screens. Every screen navigates with `show()`, and `show()` draws
 * every screen: the screens import this module, so it cannot import them. app.ts, which sits
 * above them all, provides this once as it loads (`provideScreens`).
 */
export interface Screens {
  /** The screen for a view. */
  draw(view: View): HTMLElement;
  /** Stops what refreshes the screen shown (its tickers), before another is drawn. */
  leave(): void;
  /** Starts what refreshes a screen just put in the page. */
  enter(view: View): void;
}

let screens: Screens | null = null;

export function provideScreens(provided: Screens) {
  screens = provided;
}

/** Starts the refresh of the screen shown again (stopped while the app was out of view). */
export function restartScreen() {
  if (!screens) return;
  screens.leave();
  screens.enter(state.view);
}

export function show(view: View, opts: { keepNotice?: boolean } = {}) {
  if (!screens) throw new Error('show() before app.ts provided the screens');
  screens.leave();
  if (!opts.keepNotice) {
    state.notice = null;
    state.actionError = null;
  }
  state.view = view;
  document.documentElement.lang = state.lang;
  document.title = t().appTitle;
  root.replaceChildren(screens.draw(view), announcer);
  screens.enter(view);
}
