// The app's entry: the start, and what the shell and the page report while the app runs.
import './style.css';
import { api } from './api';
import { start } from './app';
import { forgetFrames } from './codes';
import { fillFromLink } from './setup';
import { showLock } from './nav';
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
// Away for more than a minute: the shell locks, and the lock screen comes up on return. Phones
// also report it from the native side (the `app-locked` event).
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') {
    void api.appHidden().catch(() => undefined);
    return;
  }
  // Back: the codes are asked anew (and a lock the shell decided is met at once).
  forgetFrames();
  void api
    .appVisible()
    .then((locked) => (locked && state.view.name !== 'lock' ? showLock() : undefined))
    .catch(() => undefined);
});
void api.onAppLocked(() => void (state.view.name !== 'lock' ? showLock() : undefined)).catch(() => undefined);
void start();
