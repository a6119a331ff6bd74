// The code screen and the token list, and the ticker that keeps their codes current: it updates
// the screen in place once a second, aligned to the clock's second boundary, and asks the shell
// for a frame once per step.
import { api, toShellError, type CodeFrame, type ShellError, type TokenView } from './api';
import { h, svg } from './dom';
import {
  announcement,
  clockWarningText,
  codeGroups,
  frameNow,
  msUntilNextSecond,
  remainingFraction,
  tokenTitle,
} from './logic';
import { showLock } from './nav';
import { actionErrorEl, header, noticeEl, say, show } from './page';
import { msg, REVEAL_MS, state, t } from './state';
import { scanButton, startSetup } from './setup';
import { blankTxCode, openTx, provideTxClock, stopTxTicker } from './tx';

// --- the code ------------------------------------------------------------------------------------

interface CodeRefs {
  id: string;
  codeBtn: HTMLButtonElement;
  first: HTMLElement;
  second: HTMLElement;
  timer: HTMLElement;
  seconds: HTMLElement;
  ring: SVGElement;
  next: HTMLElement;
  warn: HTMLElement;
  error: HTMLElement;
  copied: HTMLElement;
}

let codeRefs: CodeRefs[] = [];
let lastFrames = new Map<string, CodeFrame>();
const clockChecked = new Set<string>();
/** Per token, the latest clock check asked: an earlier one's answer arriving later is dropped. */
const clockAsks = new Map<string, number>();

/** A deleted token's clock check is forgotten. */
export function forgetClockCheck(id: string) {
  clockChecked.delete(id);
}

/**
 * The device clock may have been set meanwhile (the app came back into view, or the wall clock
 * jumped against the monotonic one): every token's offset is measured again, once a code is on
 * screen. Otherwise an offset measured before the customer set the clock right stays added to
 * the now-correct clock, and the codes are refused until the app restarts.
 */
export function recheckClocks() {
  clockChecked.clear();
}

/** A wall-clock jump larger than this beyond the monotonic time passed means the clock was set. */
const CLOCK_JUMP_MS = 2000;

/**
 * A watch on the device clock for a screen's ticker, made as it starts and called at each tick
 * with its wall time: the wall clock moved more than `CLOCK_JUMP_MS` beyond the monotonic time
 * since the last tick (or the start: the transaction code's first tick comes a second after its
 * code is shown), the clock was set meanwhile, and every token's clock is checked again.
 */
function clockJumpWatch(): (nowMs: number) => void {
  // The last tick's wall and monotonic times: the device clock set meanwhile moves only the first.
  let last = { wall: Date.now(), mono: performance.now() };
  return (nowMs) => {
    const mono = performance.now();
    if (Math.abs(nowMs - last.wall - (mono - last.mono)) > CLOCK_JUMP_MS) recheckClocks();
    last = { wall: nowMs, mono };
  };
}

export function tokenById(id: string): TokenView | undefined {
  return state.tokens.find((tk) => tk.id === id);
}

/**
 * An imported token's mark: its issuer and label are whatever its QR code said, so one can be
 * named like the bank's token; the mark tells them apart wherever a code is shown.
 */
function importedMark(token: TokenView): HTMLElement | null {
  return token.kind === 'imported' ? h('p', { class: 'imported-mark', 'data-imported': token.id }, t().importedMark) : null;
}

export function codeScreen(id: string): HTMLElement {
  const tx = t();
  const token = tokenById(id);
  if (!token) return h('main', { class: 'screen' }, header(tx.codeHeading));
  codeRefs = [];
  lastFrames = new Map();
  shellFrames = new Map();
  const R = 52;
  const ring = svg('circle', { class: 'ring-fg', cx: 60, cy: 60, r: R, pathLength: 100 });
  const ringSvg = svg('svg', { viewBox: '0 0 120 120', class: 'ring', 'aria-hidden': 'true' });
  ringSvg.append(svg('circle', { class: 'ring-bg', cx: 60, cy: 60, r: R, pathLength: 100 }), ring);
  const first = h('span', { class: 'group' }, '––– ');
  const second = h('span', { class: 'group' }, '–––');
  const seconds = h('span', { class: 'seconds', 'aria-hidden': 'true' }, '');
  const copied = h('p', { class: 'copied', role: 'status', id: 'copied' });
  const codeBtn = h(
    'button',
    { class: 'code', type: 'button', id: 'code', 'aria-describedby': 'copy-hint', onclick: () => void onCodeTap(id) },
    first,
    second,
  );
  const timer = h('div', { class: 'countdown', role: 'timer', id: 'countdown' }, ringSvg, seconds);
  const next = h('p', { class: 'next', id: 'next-code', hidden: true });
  const warn = h('div', { class: 'alert warn', role: 'alert', id: 'clock-warning', hidden: true });
  const error = h('p', { class: 'alert', role: 'alert', id: 'code-error', hidden: true });
  codeRefs.push({ id, codeBtn, first, second, timer, seconds, ring, next, warn, error, copied });
  const many = state.tokens.length > 1;
  // The clock check asks the bank's server: sent once the first code is on screen (the
  // ticker's first frame), so the code never queues behind the network.
  return h(
    'main',
    { class: 'screen' },
    header(tx.codeHeading, {
      back: many ? () => show({ name: 'list' }) : undefined,
      settings: () => show({ name: 'settings', id }),
    }),
    h(
      'section',
      { class: 'content code-screen', 'aria-labelledby': 'token-label' },
      h('p', { class: 'token-label', id: 'token-label' }, tokenTitle(token)),
      importedMark(token),
      warn,
      error,
      codeBtn,
      h('p', { class: 'hint center-text', id: 'copy-hint' }, isHidden(id) ? tx.tapToShow : tx.tapToCopy),
      copied,
      timer,
      next,
      noticeEl(),
      actionErrorEl(),
      token.kind === 'bank'
        ? h('button', { class: 'secondary', type: 'button', id: 'tx-open', onclick: () => openTx(id) }, tx.txOpen)
        : null,
      !many ? h('button', { class: 'secondary', type: 'button', id: 'add-token', onclick: () => startSetup() }, tx.addToken) : null,
      !many && state.info.mobile ? scanButton() : null,
    ),
  );
}

/** After a token's code is on screen: its clock check, when one is due (see `checkClockOnce`). */
function checkClockAfterCode(id: string) {
  const token = tokenById(id);
  if (token) void checkClockOnce(token);
}

async function checkClockOnce(token: TokenView) {
  // The offset is measured against the server for bank tokens once, and again after the clock
  // may have been set (`recheckClocks`); the frames then carry the corrected time and the
  // warning. A failure (offline) keeps the last measurement.
  if (token.kind !== 'bank' || clockChecked.has(token.id)) return;
  clockChecked.add(token.id);
  const ask = (clockAsks.get(token.id) ?? 0) + 1;
  clockAsks.set(token.id, ask);
  try {
    const reading = await api.checkClock(token.id);
    if (clockAsks.get(token.id) !== ask) return; // a later check was asked meanwhile
    // A new offset: the shell's frames before it are off (their seconds, their warning); the
    // next tick asks anew, and an answer asked before now is not kept.
    if (reading.offset_secs !== token.clock_offset_secs) {
      token.clock_offset_secs = reading.offset_secs;
      frameEpoch.set(token.id, (frameEpoch.get(token.id) ?? 0) + 1);
      shellFrames.delete(token.id);
    }
  } catch {
    /* offline: the stored offset stays in use */
  }
}

function updateCode(refs: CodeRefs, frame: CodeFrame) {
  const tx = t();
  const prev = lastFrames.get(refs.id) ?? null;
  lastFrames.set(refs.id, frame);
  // For the cold-start measurement: the first code in the page since navigation start, and
  // once it is painted (a frame callback runs before its frame is painted, so the second one
  // after the code is in the page runs once the frame showing it has been).
  if (performance.getEntriesByName('first-code').length === 0) {
    performance.mark('first-code');
    requestAnimationFrame(() => requestAnimationFrame(() => performance.mark('first-code-painted')));
  }
  const hidden = isHidden(refs.id);
  const groups = codeGroups(frame.code);
  const [a, b] = hidden ? (groups.map((g) => g.replace(/./g, '•')) as [string, string]) : groups;
  refs.first.textContent = b ? `${a} ` : a;
  refs.second.textContent = b;
  refs.codeBtn.setAttribute('aria-label', hidden ? tx.codeHidden : `${tx.codeHeading} ${frame.code.split('').join(' ')}`);
  refs.codeBtn.dataset.code = frame.code;
  refs.codeBtn.dataset.hidden = hidden ? 'true' : 'false';
  const hint = document.getElementById('copy-hint');
  if (hint && state.view.name === 'code') hint.textContent = hidden ? tx.tapToShow : tx.tapToCopy;
  refs.seconds.textContent = String(frame.seconds_left);
  refs.timer.setAttribute('aria-label', tx.countdownLabel(frame.seconds_left, frame.period));
  refs.timer.dataset.secondsLeft = String(frame.seconds_left);
  refs.ring.setAttribute('stroke-dasharray', `${remainingFraction(frame.seconds_left, frame.period) * 100} 100`);
  refs.timer.classList.toggle('ending', frame.seconds_left <= 10);
  const showNext = frame.seconds_left <= 10 && !hidden;
  refs.next.hidden = !showNext;
  refs.next.textContent = showNext ? `${tx.nextCode}: ${codeGroups(frame.next_code).join(' ')}` : '';
  if (frame.clock_warning) {
    refs.warn.hidden = false;
    refs.warn.replaceChildren(
      h('strong', {}, tx.clockWarnTitle),
      h('span', {}, clockWarningText(frame.clock_warning.offset_secs, tx)),
    );
  } else if (!refs.warn.hidden) {
    refs.warn.hidden = true;
    refs.warn.replaceChildren();
  }
  refs.error.hidden = true;
  refs.codeBtn.disabled = false;
  const spoken = hidden ? null : announcement(prev, frame, tx);
  if (spoken && state.view.name === 'code') say(spoken);
}

function showCodeError(refs: CodeRefs, e: ShellError) {
  refs.error.hidden = false;
  refs.error.dataset.code = e.code;
  refs.error.textContent = msg(e);
  refs.first.textContent = '––– ';
  refs.second.textContent = '–––';
  refs.codeBtn.disabled = true;
  refs.codeBtn.dataset.code = '';
}

/**
 * Takes every code off the page: the app went out of view with an app lock set (main.ts). On
 * return the page shows as it was left until the shell says whether the app locked meanwhile (on
 * iOS the privacy cover is gone by then), so nothing of a code may stay in it: not its digits,
 * its spoken label, the next code nor its data-code. The refresh stops too (it would draw them
 * again), and the frames are forgotten (a tap must not bring one back); on return the screen's
 * refresh starts again (`restartScreen`, page.ts), and its first ask meets the lock if any.
 */
export function blankCodes() {
  stopTicker(); // and the transaction code's
  shellFrames = new Map();
  lastFrames = new Map();
  for (const refs of codeRefs) {
    refs.first.textContent = '––– ';
    refs.second.textContent = '–––';
    refs.codeBtn.removeAttribute('aria-label');
    delete refs.codeBtn.dataset.code;
    refs.codeBtn.disabled = true;
    refs.next.hidden = true;
    refs.next.textContent = '';
  }
  blankTxCode();
}

/** Whether a token's code is hidden now ("tap to show code" on and not revealed). */
function isHidden(id: string): boolean {
  if (!state.hideCode) return false;
  const until = state.revealed.get(id);
  return until === undefined || until < Date.now();
}

/** A tap on a code: shows it when hidden, copies it otherwise. */
async function onCodeTap(id: string) {
  if (isHidden(id)) {
    state.revealed.set(id, Date.now() + REVEAL_MS);
    const refs = codeRefs.find((r) => r.id === id);
    const frame = lastFrames.get(id);
    if (refs && frame) updateCode(refs, frame);
    return;
  }
  await copyCode(id);
}

async function copyCode(id: string) {
  const frame = lastFrames.get(id);
  const refs = codeRefs.find((r) => r.id === id);
  if (!frame || !refs) return;
  try {
    await api.copyCode(id);
    refs.copied.textContent = t().copiedCleared;
  } catch (e) {
    if (toShellError(e).code === 'APP_LOCKED') {
      await showLock();
      return;
    }
    refs.copied.textContent = t().copyFailed;
  }
  window.setTimeout(() => {
    if (refs.copied.isConnected) refs.copied.textContent = '';
  }, 3000);
}

let tickTimer: number | undefined;
let tickGen = 0;

/**
 * The shell's last frame per token on screen, with the device second it was made at. The
 * countdown runs on from it second by second (`frameNow`); the shell is asked again only when
 * the step ends, so a code screen costs one keystore read per step, not one a second (on a
 * phone each is a Keystore or Keychain call).
 */
let shellFrames = new Map<string, CodeFrame>();
/** Per token, bumped when its clock offset changes: a frame asked before is not kept. */
const frameEpoch = new Map<string, number>();

// The transaction code (tx.ts) is on the offset this module measures: its refresh watches the
// device clock, checks the clock and asks anew on a new offset through the same code as here.
provideTxClock({
  jumpWatch: clockJumpWatch,
  checkAfterCode: checkClockAfterCode,
  epoch: (id) => frameEpoch.get(id) ?? 0,
});

/** Forgets the shell's frames (the app came back into view): the next tick asks the shell,
 * which also says at once if the app locked meanwhile. */
export function forgetFrames() {
  shellFrames = new Map();
}

/** A token's frame at `nowMs` from the shell's last one, or null when the shell must be asked. */
function frameAt(id: string, nowMs: number): CodeFrame | null {
  const known = shellFrames.get(id);
  return known ? frameNow(known, nowMs) : null;
}

/** A lone token's first code, asked at the start as soon as the listing is in (see `start`, app.ts). */
export interface FirstFrame {
  id: string;
  askedMs: number;
  frame: Promise<CodeFrame>;
}
let firstFrame: FirstFrame | null = null;

/** The start hands over a lone token's first code (or null: none) for the first code screen. */
export function setFirstFrame(frame: FirstFrame | null) {
  firstFrame = frame;
}
/** How old the start's code may be when its screen comes up; older, it is asked anew. */
const FIRST_FRAME_FRESH_MS = 500;

export function startTicker() {
  const gen = ++tickGen;
  // The start's code serves the first tick of the first code screen only, and only while fresh.
  let pre = firstFrame && Date.now() - firstFrame.askedMs < FIRST_FRAME_FRESH_MS ? firstFrame : null;
  firstFrame = null;
  const watchClock = clockJumpWatch();
  // After the code is on screen (the first ask's answer, or a code counted on), the clock check.
  const checkClock = (id: string) => {
    if (state.view.name === 'code') checkClockAfterCode(id);
  };
  const tick = async () => {
    const taken = pre;
    pre = null;
    const nowMs = Date.now();
    watchClock(nowMs);
    await Promise.all(
      codeRefs.map(async (refs) => {
        const known = frameAt(refs.id, nowMs);
        if (known) {
          updateCode(refs, known);
          checkClock(refs.id);
          return;
        }
        const epoch = frameEpoch.get(refs.id) ?? 0;
        try {
          const asked = taken?.id === refs.id ? taken : null;
          const frame = await (asked ? asked.frame : api.codeFrame(refs.id));
          // Stopped while the frame was on its way (another screen is shown, the lock one
          // say): the answer belongs to a screen that is gone. Acting on it drew the lock
          // screen a second time, under a customer already typing the PIN.
          if (gen !== tickGen) return;
          if ((frameEpoch.get(refs.id) ?? 0) === epoch) {
            // Counted from the second the shell made it at (the ask's own time if unknown).
            const madeMs = asked ? asked.askedMs : nowMs;
            shellFrames.set(refs.id, { ...frame, at_secs: frame.at_secs ?? Math.floor(madeMs / 1000) });
          }
          updateCode(refs, frame);
          checkClock(refs.id);
        } catch (e) {
          shellFrames.delete(refs.id);
          if (gen !== tickGen) return;
          const err = toShellError(e);
          if (err.code === 'APP_LOCKED') {
            void showLock();
            return;
          }
          showCodeError(refs, err);
        }
      }),
    );
    if (gen === tickGen) tickTimer = window.setTimeout(tick, msUntilNextSecond(Date.now()));
  };
  void tick();
}

export function stopTicker() {
  tickGen++;
  if (tickTimer !== undefined) window.clearTimeout(tickTimer);
  tickTimer = undefined;
  stopTxTicker();
}

// --- the list (several tokens) ------------------------------------------------------------------

export function listScreen(): HTMLElement {
  const tx = t();
  codeRefs = [];
  lastFrames = new Map();
  shellFrames = new Map();
  const items = state.tokens.map((token) => {
    const first = h('span', { class: 'group' });
    const second = h('span', { class: 'group' });
    const seconds = h('span', { class: 'seconds small', 'aria-hidden': 'true' });
    const timer = h('span', { class: 'mini-timer', role: 'timer' }, seconds);
    const codeBtn = h('button', { class: 'code small', type: 'button', 'data-id': token.id, onclick: () => void onCodeTap(token.id) }, first, second);
    const refs: CodeRefs = {
      id: token.id,
      codeBtn,
      first,
      second,
      timer,
      seconds,
      ring: svg('circle', {}),
      next: h('span', { hidden: true }),
      warn: h('span', { hidden: true }),
      error: h('span', { class: 'field-error', hidden: true }),
      copied: h('span', { class: 'copied', role: 'status' }),
    };
    codeRefs.push(refs);
    return h(
      'li',
      { class: 'token-row' },
      h('button', { class: 'row-open', type: 'button', 'data-open': token.id, onclick: () => show({ name: 'code', id: token.id }) }, tokenTitle(token)),
      importedMark(token),
      h('div', { class: 'row-code' }, codeBtn, timer),
      refs.error,
      refs.copied,
    );
  });
  return h(
    'main',
    { class: 'screen' },
    header(tx.tokensTitle),
    h(
      'section',
      { class: 'content' },
      noticeEl(),
      actionErrorEl(),
      h('ul', { class: 'token-list', id: 'token-list' }, ...items),
      h('button', { class: 'secondary', type: 'button', id: 'add-token', onclick: () => startSetup() }, tx.addToken),
      state.info.mobile ? scanButton() : null,
    ),
  );
}
