// Where the screens go when it is not to a screen of their own: home, the lock screen, and the
// token listing (whose failure shows one or the other). Below every screen, above page.ts.
import { api, toShellError, type LockView, type TokenView } from './api';
import { show } from './page';
import { state } from './state';

/** Where to go when there is nothing more specific: setup, the one token, or the list. */
export function home(opts: { keepNotice?: boolean } = {}) {
  if (state.tokens.length === 0) show({ name: 'setup' }, opts);
  else if (state.tokens.length === 1) show({ name: 'code', id: state.tokens[0].id }, opts);
  else show({ name: 'list' }, opts);
}

/** Lists the tokens (or takes a listing already asked for); a failure shows its screen. */
export async function reloadTokens(asked?: Promise<TokenView[]>): Promise<boolean> {
  try {
    state.tokens = await (asked ?? api.listTokens());
    return true;
  } catch (e) {
    const err = toShellError(e);
    if (err.code === 'APP_LOCKED') await showLock();
    else show({ name: 'fatal', error: err });
    return false;
  }
}

export async function refreshLock(): Promise<LockView | null> {
  try {
    state.lock = await api.lockStatus();
  } catch {
    state.lock = null;
  }
  return state.lock;
}

/** Shows the lock screen (after asking the shell how things stand). */
export async function showLock() {
  await refreshLock();
  // Already on the PIN form: "lock now" and a code request that found the app locked both come
  // here, and drawing the form again would drop the PIN the customer is typing.
  if (state.view.name === 'lock' && state.lock?.locked && !state.lock.locked_out) return;
  state.lockError = null;
  state.resetAsked = false;
  show({ name: 'lock' });
  (document.getElementById('lock-pin') as HTMLInputElement | null)?.focus();
}
