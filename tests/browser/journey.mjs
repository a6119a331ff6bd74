// The customer journey in Debian's chromium, driven by playwright-core (no browser download).
// Started by tests/journeys/browser.rs with BASE_URL (the backend), CONTROL_URL (mail, app
// setup, codes) and ARTIFACTS (screenshot folder). Every screen is captured in Japanese and in
// English. Prints "JOURNEY OK" at the end; any failed expectation throws.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { collectErrors, launchChromium } from "../../test-support/browser/chromium.mjs";

const BASE = process.env.BASE_URL;
const CONTROL = process.env.CONTROL_URL;
const ART = process.env.ARTIFACTS;

async function control(path, body) {
  const res = await fetch(CONTROL + path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `control ${path}`);
  return res.json();
}

const browser = await launchChromium(chromium);
const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, locale: "ja-JP" });
const page = await context.newPage();
const consoleErrors = collectErrors(page, []);

async function settle() {
  await page.waitForLoadState("load");
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// Screenshot in Japanese, switch to English, screenshot, switch back.
async function shot(name) {
  await settle();
  await page.screenshot({ path: `${ART}/${name}-ja.png`, fullPage: true });
  const url = page.url();
  await page.click("a.lang-switch");
  await settle();
  assert.equal(await page.getAttribute("html", "lang"), "en", `${name}: English`);
  await page.screenshot({ path: `${ART}/${name}-en.png`, fullPage: true });
  await page.click("a.lang-switch");
  await settle();
  assert.equal(await page.getAttribute("html", "lang"), "ja");
  return url;
}

// An error screen in English: switch, make the error again, screenshot, switch back.
async function errorsInEnglish(name, makeError) {
  await page.click("a.lang-switch");
  await settle();
  assert.equal(await page.getAttribute("html", "lang"), "en", `${name}: English`);
  await makeError();
  await page.screenshot({ path: `${ART}/${name}-en.png`, fullPage: true });
  await page.click("a.lang-switch");
  await settle();
  assert.equal(await page.getAttribute("html", "lang"), "ja");
}

async function typeWithSoftKeyboard(field, text) {
  await page.click(`button[data-softkbd-for="${field}"]`);
  const panel = page.locator(`#kbd-${field}`);
  await panel.waitFor();
  for (const ch of text) {
    await panel.getByRole("button", { name: ch, exact: true }).click();
  }
}

// 1. Login, with the software keyboard for the password.
await page.goto(BASE + "/login");
await page.fill("#f-login_id", "taro2026");
await typeWithSoftKeyboard("f-password", "loginpass1");
assert.equal(await page.inputValue("#f-password"), "loginpass1");
await page.screenshot({ path: `${ART}/login-softkbd-ja.png`, fullPage: true });
// Shuffled: two openings rarely give the same layout.
await page.click('button[data-softkbd-for="f-password"]');
await page.fill("#f-password", "");
await shot("login");
await page.fill("#f-login_id", "taro2026");
await page.fill("#f-password", "loginpass1");
await page.click("button[type=submit].primary");
await page.waitForURL("**/top");
await shot("top");

// 2. BOP001 → issuance in three steps.
await page.click("nav.global a[href='/otp']");
await page.waitForURL("**/otp");
assert.match(await page.textContent("#otp-status"), /未発行/);
await shot("bop001-none");
await page.click("#link-issue");
await page.waitForURL("**/otp/issue");
await shot("issue-input");
await page.click("button[type=submit].primary");
await settle();
assert.match(await page.textContent("#e-email"), /入力して下さい/);
await page.screenshot({ path: `${ART}/issue-input-errors-ja.png`, fullPage: true });
await errorsInEnglish("issue-input-errors", async () => {
  await page.click("button[type=submit].primary");
  await settle();
  assert.match(await page.textContent("#e-email"), /required/);
});
await page.fill("#f-email", "taro-phone@example.jp");
await page.fill("#f-email2", "taro-phone@example.jp");
await typeWithSoftKeyboard("f-activation_password", "4821");
await page.fill("#f-activation_password2", "4821");
await page.click("button[type=submit].primary");
await page.waitForURL("**/otp/issue/confirm");
assert.equal((await page.textContent("#confirm-email")).trim(), "taro-phone@example.jp");
// The メール通知パスワード went to the REGISTERED address, naming the new one (issue 19).
const mailpw = await control("/mail?n=1&has=" + encodeURIComponent("■メール通知パスワード"));
assert.ok(mailpw.to.includes("taro@example.jp"), `to the registered address: ${mailpw.to}`);
assert.ok(mailpw.body.includes("taro-phone@example.jp"), "the mail names the new address");
assert.match(mailpw.mail_password, /^\d{8}$/);
assert.match(await page.textContent("#mail-password-sent-to"), /t\*\*\*@example\.jp/);
await shot("issue-confirm");
// Only the confirmation password (what a phisher has): refused.
await page.fill("#f-confirmation_password", "conf123");
await page.click("#commit");
await settle();
assert.ok(page.url().endsWith("/otp/issue/confirm"), "not issued without the mailed password");
assert.match(await page.textContent("#e-mail_password"), /入力して下さい/);
await page.screenshot({ path: `${ART}/issue-confirm-mailpw-error-ja.png`, fullPage: true });
await errorsInEnglish("issue-confirm-mailpw-error", async () => {
  await page.fill("#f-confirmation_password", "conf123");
  await page.click("#commit");
  await settle();
  assert.match(await page.textContent("#e-mail_password"), /required/);
});
// With it, typed on the software keyboard (digits).
await page.fill("#f-confirmation_password", "conf123");
await typeWithSoftKeyboard("f-mail_password", mailpw.mail_password);
assert.equal(await page.inputValue("#f-mail_password"), mailpw.mail_password);
await page.click("#commit");
await page.waitForURL("**/otp/issue/complete");
const userId = (await page.textContent("#user-id")).trim();
assert.match(userId, /^\d{12}$/);
await shot("issue-complete");

// 3. The mail arrives at the SMTP server; its link is opened on the phone.
const mail = await control("/mail?n=2&has=/dl/");
assert.ok(mail.body.includes(userId), "the mail names the user ID");
assert.ok(mail.url.startsWith(BASE + "/dl/"));
await page.goto(mail.url);
assert.equal((await page.textContent("#user-id")).trim(), userId);
assert.ok((await page.getAttribute("#open-app", "href")).startsWith("otpbank://setup?service_id=10112231&user_id=" + userId));
await shot("download");

// 4. The app's setup, then BOK001 with the app's code.
await control("/provision", { user_id: userId, activation_password: "4821" });
await page.goto(BASE + "/otp");
assert.match(await page.textContent("#otp-status"), /トークン発行済/);
await shot("bop001-issued");
await page.click("#link-activate");
await page.waitForURL("**/otp/activate");
await shot("bok001");
await page.fill("#f-code", "000000");
await page.click("button[form=bok-form]");
await settle();
assert.match(await page.textContent("#e-code"), /正しくありません|使用済み/);
await page.screenshot({ path: `${ART}/bok001-error-ja.png`, fullPage: true });
await errorsInEnglish("bok001-error", async () => {
  await page.fill("#f-code", "000000");
  await page.click("button[form=bok-form]");
  await settle();
  assert.match(await page.textContent("#e-code"), /incorrect|already been used/);
});
await page.fill("#f-code", (await control("/code")).code);
await page.click("button[form=bok-form]");
await page.waitForURL("**/otp/activate/done");
await shot("bok002");

// 5. Login now asks for the code. Pressed twice (a double click): the customer goes on to
// the code, as after one press.
await page.click("form.logout button");
await page.waitForURL("**/login?bye=1");
await page.fill("#f-login_id", "taro2026");
await page.fill("#f-password", "loginpass1");
await page.dblclick("button[type=submit].primary");
await page.waitForURL("**/login/otp");
await settle();
assert.match(page.url(), /\/login\/otp$/, "a double-clicked login ends on the code screen");
await shot("login-otp");
await page.fill("#f-code", (await control("/code")).code);
await page.click("button[type=submit].primary");
await page.waitForURL("**/top");

// 6. A transfer to a new payee over 100,000 yen: transaction authentication (取引認証).
// First the man in the browser: the customer types account 1234567, malware changes what the
// form posts to 7654321. The bank shows (and its QR carries) what it received; the customer's
// app computes the code for what the customer meant (typed fallback): refused, nothing moves.
async function enterTransfer(account, amount, tamperTo) {
  await page.goto(BASE + "/transfer");
  await page.fill("#f-bank_code", "0001");
  await page.fill("#f-branch_code", "123");
  await page.selectOption("#f-account_type", "1");
  await page.fill("#f-account_number", account);
  await page.fill("#f-payee", "ﾃｽﾄ ｼﾖｳｼﾞ");
  await page.fill("#f-amount", String(amount));
  if (tamperTo) {
    await page.evaluate((to) => { document.querySelector("#f-account_number").value = to; }, tamperTo);
  }
  await page.click("button[type=submit].primary");
  await page.waitForURL("**/transfer/confirm");
}
await page.click("nav.global a[href='/transfer']");
await page.waitForURL("**/transfer");
await shot("transfer-input");
await enterTransfer("1234567", 150000, "7654321");
assert.equal((await page.textContent("#confirm-account")).trim(), "7654321", "the bank shows what it received");
assert.ok(await page.isVisible("#tx-qr svg"), "the QR is drawn");
await shot("transfer-confirm-tx");
await control("/advance", { secs: 60 });
const meant = await control("/tx-code", { bank: "0001", branch: "123", type: "1", account: "1234567", amount: 150000 });
await typeWithSoftKeyboard("f-confirmation_password", "conf123");
await page.fill("#f-code", meant.code);
await page.click("button[form=transfer-form]");
await page.waitForLoadState("load");
assert.match(await page.textContent("#e-code"), /取引認証番号が正しくありません/);
await shot("transfer-confirm-tx-error");
// The customer checks, starts again with the right account: accepted.
await enterTransfer("1234567", 150000);
const right = await control("/tx-code", { bank: "0001", branch: "123", type: "1", account: "1234567", amount: 150000 });
await typeWithSoftKeyboard("f-confirmation_password", "conf123");
await page.fill("#f-code", right.code);
await page.click("button[form=transfer-form]");
await page.waitForURL("**/transfer/done");
assert.match(await page.textContent("main"), /150,000/);
assert.ok(await page.isVisible("#done-tx-auth"));
await shot("transfer-done-tx");

// 7. BOS001 deactivation → BOS002.
await page.goto(BASE + "/otp");
assert.match(await page.textContent("#otp-status"), /利用中/);
await shot("bop001-active");
await page.click("#link-deactivate");
await page.waitForURL("**/otp/deactivate");
await shot("bos001");
await page.fill("#f-confirmation_password", "conf123");
await page.fill("#f-code", (await control("/code")).code);
await page.click("button[form=bos-form]");
await page.waitForURL("**/otp/deactivate/done");
await shot("bos002");
await page.goto(BASE + "/otp");
assert.match(await page.textContent("#otp-status"), /利用解除済/);
await shot("bop001-deactivated");

// 8. Login without the OTP screen.
await page.click("form.logout button");
await page.waitForURL("**/login?bye=1");
await page.fill("#f-login_id", "taro2026");
await page.fill("#f-password", "loginpass1");
await page.click("button[type=submit].primary");
await page.waitForURL("**/top");

// 9. Without OTP, a new payee needs a メール通知パスワード with the payee and amount in it.
await page.click("nav.global a[href='/transfer']");
await page.waitForURL("**/transfer");
await page.fill("#f-bank_code", "0005");
await page.fill("#f-branch_code", "001");
await page.fill("#f-account_number", "7777777");
await page.fill("#f-payee", "ﾊｼﾞﾒﾃ ｼﾖｳﾃﾝ");
await page.fill("#f-amount", "32000");
await page.click("button[type=submit].primary");
await page.waitForURL("**/transfer/confirm");
const tmail = await control("/mail?n=1&has=" + encodeURIComponent("ﾊｼﾞﾒﾃ ｼﾖｳﾃﾝ"));
assert.ok(tmail.body.includes("32,000円"), "the amount is in the mail");
await shot("transfer-confirm-mailpw");
await page.fill("#f-confirmation_password", "conf123");
await page.fill("#f-mail_password", tmail.mail_password.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d))));
await page.click("button[form=transfer-form]");
await page.waitForURL("**/transfer/done");

// 10. Changing the registered e-mail address: the mailed password goes to the current one.
await page.goto(BASE + "/settings/email");
await shot("email-input");
await page.fill("#f-email", "taro-new@example.jp");
await page.fill("#f-email2", "taro-new@example.jp");
await page.click("button[type=submit].primary");
await page.waitForURL("**/settings/email/confirm");
const emailmail = await control("/mail?n=1&has=taro-new%40example.jp");
assert.ok(emailmail.to.includes("taro@example.jp"), "to the current registered address");
await shot("email-confirm");
await page.fill("#f-confirmation_password", "conf123");
await page.fill("#f-mail_password", emailmail.mail_password);
await page.click("#commit");
await page.waitForURL("**/settings/email/done");
await shot("email-done");

// A desktop-sized look at BOP001.
await page.setViewportSize({ width: 1280, height: 900 });
await page.goto(BASE + "/otp");
await shot("bop001-desktop");

assert.deepEqual(consoleErrors, [], "no console errors (CSP violations would show here)");
await browser.close();
console.log("JOURNEY OK");
