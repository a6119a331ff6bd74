// The app's entry: the start, and what the shell and the page report while the app runs.
import './style.css';
import { api } from './api';
import { start } from './app';
import { blankCodes, forgetFrames, recheckClocks } from './codes';
import { fillFromLink } from './setup';
import { showLock } from './nav';
import { restartScreen } from './page';
import { state } from './state';

// A link opened while the app runs: take it (so it is not offered again) and fill the form.
// None comes back when the start took it already, or while the app is locked: the shell keeps
// it, and the unlock takes it.
void api
  .onSetupLink(() => {
    void api
      .takeSetupLink()
      .catch(() => null)
      .then((taken) => (taken ? fillFromLink(taken) : undefined));
  })
  .catch(() => undefined);
/** The codes were taken off the page as the app went out of view. */
let blanked = false;
// Away for more than a minute: the shell locks, and the lock screen comes up on return. Phones
// also report it from the native side (the `app-locked` event).
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') {
    // With an app lock, no code stays in the page while away: on return the page shows as it
    // was left until the shell has answered (on iOS the privacy cover is gone by then), and the
    // app may have locked meanwhile. A lock status the shell could not give counts as set.
    // Without one, the code stays as it is.
    if (state.lock?.enabled !== false) {
      blankCodes();
      blanked = true;
    }
    void api.appHidden().catch(() => undefined);
    return;
  }
  // Back: the codes are asked anew (and a lock the shell decided is met at once), and the clock
  // is checked again once a code is on screen, the code screen's or the transaction code's (it
  // may have been set meanwhile in Settings).
  forgetFrames();
  recheckClocks();
  const wasBlanked = blanked;
  blanked = false;
  // Not locked, or the shell could not say: the blanked screen's refresh starts again, and its
  // first ask draws the current code (or meets the lock).
  const resume = () => (wasBlanked ? restartScreen() : undefined);
  void api
    .appVisible()
    .then(
      (locked) => (locked ? (state.view.name !== 'lock' ? showLock() : undefined) : resume()),
      resume,
    )
    .catch(() => undefined);
});
void api.onAppLocked(() => void (state.view.name !== 'lock' ? showLock() : undefined)).catch(() => undefined);
void start();
