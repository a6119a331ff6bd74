// 取引認証 (transaction authentication): the transfer typed or scanned, and its code.
import { api, toShellError, type TransactionForm } from './api';
import { h } from './dom';
import { codeGroups, frameNow, msUntilNextSecond, scannedPayee } from './logic';
import { showLock } from './nav';
import { focusFirstInvalid, header, show } from './page';
import { emptyTx, msg, state, t } from './state';

// --- 取引認証 (transaction authentication) ---------------------------------------------------------
// The customer types (or scans) the transfer the bank's confirmation screen shows; the core
// computes the OCRA code over exactly that; the next screen shows the transfer large, for the
// customer to check against what they meant, with the code and its countdown.

/** Which typed field a `TX_…` code names. */
const TX_FIELDS: Record<string, keyof TransactionForm> = {
  TX_BANK_CODE: 'bankCode',
  TX_BRANCH_CODE: 'branchCode',
  TX_ACCOUNT_TYPE: 'accountType',
  TX_ACCOUNT_NUMBER: 'accountNumber',
  TX_AMOUNT: 'amount',
};

export function openTx(id: string) {
  state.tx = emptyTx();
  show({ name: 'tx', id });
}

export function txScreen(id: string): HTMLElement {
  const tx = t();
  const s = state.tx;
  const bad = s.error ? TX_FIELDS[s.error.code] : undefined;
  const input = (f: keyof TransactionForm, label: string, hint: string, max: number) =>
    h(
      'div',
      { class: 'field' },
      h('label', { for: `tx-${f}` }, label, ' ', h('span', { class: 'hint' }, hint)),
      h('input', {
        id: `tx-${f}`,
        type: 'text',
        inputmode: 'numeric',
        autocomplete: 'off',
        maxlength: max,
        value: s.form[f],
        'aria-invalid': bad === f ? 'true' : 'false',
        'aria-describedby': bad === f ? 'tx-error' : null,
        oninput: (ev: Event) => {
          s.form[f] = (ev.target as HTMLInputElement).value;
          // Edited, the form is a typed transfer: the scanned QR's payee name goes with the scan.
          s.scanned = null;
        },
      }),
    );
  const type = h(
    'select',
    {
      id: 'tx-accountType',
      'aria-invalid': bad === 'accountType' ? 'true' : 'false',
      onchange: (ev: Event) => {
        s.form.accountType = (ev.target as HTMLSelectElement).value;
        s.scanned = null;
      },
    },
    h('option', { value: '1', selected: s.form.accountType === '1' }, tx.txOrdinary),
    h('option', { value: '2', selected: s.form.accountType === '2' }, tx.txCurrent),
  );
  const form = h(
    'form',
    {
      class: 'content',
      id: 'tx-form',
      novalidate: true,
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void onTxSubmit(id);
      },
    },
    h('p', { class: 'intro' }, tx.txIntro),
    s.error ? h('p', { class: 'alert', role: 'alert', id: 'tx-error', 'data-code': s.error.code }, msg(s.error)) : null,
    state.info.mobile
      ? h('button', { class: 'secondary', type: 'button', id: 'tx-scan', onclick: () => void onTxScan(id) }, tx.txScan)
      : null,
    input('bankCode', tx.txBankCode, tx.txBankCodeHint, 8),
    input('branchCode', tx.txBranchCode, tx.txBranchCodeHint, 6),
    h('div', { class: 'field' }, h('label', { for: 'tx-accountType' }, tx.txAccountType), type),
    input('accountNumber', tx.txAccountNumber, tx.txAccountNumberHint, 10),
    input('amount', tx.txAmount, tx.txAmountHint, 20),
    h('button', { class: 'primary', type: 'submit', id: 'tx-show' }, tx.txShow),
  );
  return h(
    'main',
    { class: 'screen' },
    header(tx.txTitle, { back: () => show({ name: 'code', id }) }),
    form,
  );
}

async function onTxSubmit(id: string) {
  const s = state.tx;
  try {
    const epoch = clock.epoch(id);
    s.frame = await api.transactionFrame(id, s.form);
    txFrameEpoch = epoch;
    s.error = null;
    show({ name: 'txcode', id });
  } catch (e) {
    const err = toShellError(e);
    if (err.code === 'APP_LOCKED') {
      void showLock();
      return;
    }
    s.error = err;
    show({ name: 'tx', id });
    focusFirstInvalid();
  }
}

/**
 * Phones: the QR fills the fields (and names the token and payee); the code follows at once. The
 * scanned transfer is kept whole: its payee name is shown only beside exactly that transfer.
 */
async function onTxScan(id: string) {
  const s = state.tx;
  try {
    const text = await api.scanQr();
    if (text === null) return;
    const scanned = await api.scanTransaction(text);
    s.form = {
      bankCode: scanned.bank_code,
      branchCode: scanned.branch_code,
      accountType: scanned.account_type,
      accountNumber: scanned.account_number,
      amount: String(scanned.amount),
    };
    s.scanned = scanned;
    await onTxSubmit(scanned.id);
  } catch (e) {
    s.error = toShellError(e);
    show({ name: 'tx', id });
  }
}

function yen(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function txCodeScreen(id: string): HTMLElement {
  const tx = t();
  const f = state.tx.frame;
  if (!f) return txScreen(id);
  const row = (label: string, value: string, rid: string) =>
    h('div', { class: 'tx-row' }, h('dt', {}, label), h('dd', { id: rid }, value));
  const [a, b] = codeGroups(f.code);
  const payee = scannedPayee(state.tx.scanned, id, f);
  return h(
    'main',
    { class: 'screen' },
    header(tx.txTitle, { back: () => show({ name: 'tx', id }) }),
    h(
      'section',
      { class: 'content tx-code-screen' },
      h('h2', { class: 'tx-check-title' }, tx.txCheckTitle),
      h(
        'dl',
        { class: 'tx-details', id: 'tx-details' },
        row(tx.txBankCode, f.bank_code, 'tx-d-bank'),
        row(tx.txBranchCode, f.branch_code, 'tx-d-branch'),
        row(tx.txAccountType, f.account_type === '2' ? tx.txCurrent : tx.txOrdinary, 'tx-d-type'),
        row(tx.txAccountNumber, f.account_number, 'tx-d-account'),
        row(tx.txAmount, tx.txYen(yen(f.amount)), 'tx-d-amount'),
      ),
      // The QR's payee name is not in the code's input (OCRA signs the account and amount): it
      // stands apart from what the customer checks, said so, so a name the customer expects
      // cannot vouch for another account; and it is shown only beside the transfer it came with.
      payee
        ? h(
            'p',
            { class: 'hint', id: 'tx-payee-note' },
            tx.txPayee,
            h('span', { id: 'tx-d-payee' }, payee),
            h('br', {}),
            tx.txPayeeUnsigned,
          )
        : null,
      h('p', { class: 'alert warn', role: 'note' }, tx.txCheckBody),
      h('p', { class: 'token-label' }, tx.txCodeLabel),
      h(
        'p',
        { class: 'code tx-code', id: 'tx-code', 'aria-live': 'polite', 'data-code': f.code },
        h('span', { class: 'group' }, a),
        ' ',
        h('span', { class: 'group' }, b),
      ),
      h('p', { class: 'hint center-text', id: 'tx-countdown', role: 'timer' }, tx.txCountdown(f.seconds_left)),
      h('button', { class: 'secondary', type: 'button', id: 'tx-again', onclick: () => openTx(id) }, tx.txAgain),
    ),
  );
}

let txTimer: number | undefined;
let txGen = 0;

/**
 * What the transaction code's refresh needs from the code screen's clock check (codes.ts): the
 * code is computed on the offset measured there, so a clock set meanwhile must be measured again
 * the same way. codes.ts provides it as it loads (it imports this module, so this one cannot
 * import it; see `provideScreens`, page.ts, for the same reason).
 */
export interface TxClock {
  /** A watch on the device clock, called at each tick: a jump has every token's clock checked again. */
  jumpWatch(): (nowMs: number) => void;
  /** After the token's code is on screen: its clock check, when one is due (a check answered
   * after a later one was asked is dropped there). */
  checkAfterCode(id: string): void;
  /** Bumped when the token's offset changes: a frame asked before is off. */
  epoch(id: string): number;
}

// Until codes.ts has provided it (it does as the app loads): no watch, no check.
let clock: TxClock = { jumpWatch: () => () => undefined, checkAfterCode: () => undefined, epoch: () => 0 };

export function provideTxClock(provided: TxClock) {
  clock = provided;
}

/** The offset epoch (`TxClock.epoch`) `state.tx.frame` was asked at: another now, it is off. */
let txFrameEpoch = 0;

/** Stops the transaction code's refresh (another screen is shown). */
export function stopTxTicker() {
  txGen++;
  if (txTimer !== undefined) window.clearTimeout(txTimer);
  txTimer = undefined;
}

/**
 * Takes the transaction code off the page and stops its refresh (see `blankCodes`, codes.ts).
 * The frame keeps the transfer but not its code, nor when it was made: the refresh started again
 * on return asks the shell, which refuses while the app is locked.
 */
export function blankTxCode() {
  stopTxTicker();
  const f = state.tx.frame;
  if (f) state.tx.frame = { ...f, code: '', at_secs: undefined };
  const code = document.getElementById('tx-code');
  if (!code) return;
  delete code.dataset.code;
  code.replaceChildren(h('span', { class: 'group' }, '––––'), ' ', h('span', { class: 'group' }, '––––'));
}

/**
 * Refreshes the code and its countdown once a second while the screen is shown. The countdown
 * runs on in the page from the shell's frame; the shell is asked again when the step ends, the
 * device clock goes back, or the clock check found a new offset (each frame reads the token's key
 * from the keystore). As on the code screen, the clock is checked again after a wall-clock jump
 * or a return to the app (`recheckClocks`, codes.ts), once the code is on screen: a customer who
 * set the phone's clock right in Settings would otherwise get codes on the old offset, refused.
 */
export function startTxTicker(id: string) {
  const gen = txGen;
  const watchClock = clock.jumpWatch();
  const tick = async () => {
    if (gen !== txGen || state.view.name !== 'txcode') return;
    const nowMs = Date.now();
    watchClock(nowMs);
    try {
      const known = state.tx.frame;
      const epoch = clock.epoch(id);
      const counted = known && txFrameEpoch === epoch ? frameNow(known, nowMs) : null;
      const f = counted ?? (await api.transactionFrame(id, state.tx.form));
      // Stopped while the frame was on its way (another screen, or the code taken off the
      // page as the app went out of view): not drawn.
      if (gen !== txGen) return;
      // Kept with the epoch it was asked at: a new offset taken while it was on its way, it is
      // drawn (as on the code screen) and the next tick asks anew.
      if (!counted) txFrameEpoch = epoch;
      state.tx.frame = f;
      const code = document.getElementById('tx-code');
      const countdown = document.getElementById('tx-countdown');
      if (code && code.dataset.code !== f.code) {
        const [a, b] = codeGroups(f.code);
        code.dataset.code = f.code;
        code.replaceChildren(h('span', { class: 'group' }, a), ' ', h('span', { class: 'group' }, b));
      }
      if (countdown) countdown.textContent = t().txCountdown(f.seconds_left);
      clock.checkAfterCode(id);
    } catch (e) {
      if (gen === txGen && toShellError(e).code === 'APP_LOCKED') {
        void showLock();
        return;
      }
    }
    if (gen === txGen) txTimer = window.setTimeout(tick, msUntilNextSecond(Date.now()));
  };
  txTimer = window.setTimeout(tick, msUntilNextSecond(Date.now()));
}

