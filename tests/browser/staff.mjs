// The support staff console (issue 7) in Debian's chromium, driven by playwright-core. Started
// by tests/journeys/staff_browser.rs with BASE_URL (four-eyes off), BASE4_URL (four-eyes on),
// CONTROL_URL (where a generated activation password is reported, never printed, and where each
// staff member's current code comes from) and ARTIFACTS
// (screenshots). Every action, both roles. Prints "STAFF JOURNEY OK"; a failed expectation throws.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { collectErrors, launchChromium } from "../../test-support/browser/chromium.mjs";

const BASE = process.env.BASE_URL;
const BASE4 = process.env.BASE4_URL;
const CONTROL = process.env.CONTROL_URL;
const ART = process.env.ARTIFACTS;
const PW = process.env.STAFF_PW;

const browser = await launchChromium(chromium);
const errors = [];

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  collectErrors(page, errors);
  return page;
}

async function shot(page, name) {
  await page.waitForLoadState("load");
  await page.screenshot({ path: `${ART}/${name}.png`, fullPage: true });
}

// The member's current code from their authenticator app (the test's control server holds the
// secrets and the test clock).
async function staffCode(base, id) {
  const r = await fetch(CONTROL + "/staff-code", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ base: base === BASE4 ? "4" : "1", login: id }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).code;
}

async function login(page, base, id) {
  await page.goto(base + "/staff/login");
  await page.fill("#f-login_id", id);
  await page.fill("#f-password", PW);
  await page.fill("#f-code", await staffCode(base, id));
  await page.click("button[type=submit].primary");
  await page.waitForURL(base + "/staff");
  assert.match(await page.textContent("#staff-who"), new RegExp(id));
}

async function logout(page) {
  await page.click("header form button");
  await page.waitForURL(/\/staff\/login\?bye=1$/);
}

async function open(page, base, q) {
  await page.goto(base + "/staff");
  await page.fill("#f-q", q);
  await page.click("form.search button");
  await page.waitForSelector("#results a");
  await page.click("#results a");
  await page.waitForURL(/\/staff\/customers\/\d+$/);
}

async function submit(page, form, reason) {
  await page.fill(`${form} input[name=reason]`, reason);
  await page.click(`${form} button[type=submit]`);
  await page.waitForLoadState("load");
}

// 1. A customer's internet-banking session does not open the console.
{
  const page = await newPage();
  await page.goto(BASE + "/login");
  await page.fill("#f-login_id", "plain001");
  await page.fill("#f-password", "loginpass1");
  await page.click("button[type=submit].primary");
  await page.waitForURL("**/top");
  await page.goto(BASE + "/staff");
  assert.ok(page.url().endsWith("/staff/login"), "a customer is sent to the staff login");
  // Nor does the customer's password work there.
  await page.fill("#f-login_id", "plain001");
  await page.fill("#f-password", "loginpass1");
  await page.fill("#f-code", "123456");
  await page.click("button[type=submit].primary");
  await page.waitForSelector("#login-error");
  await page.context().close();
}

// 2. Operator: unlock, resend the setup mail, cannot revoke, CSV export.
{
  const page = await newPage();
  await page.goto(BASE + "/staff/login");
  await shot(page, "login");
  // The password alone is not enough: a wrong code is refused like a wrong password.
  await page.fill("#f-login_id", "op0001");
  await page.fill("#f-password", PW);
  await page.fill("#f-code", "000000");
  await page.click("button[type=submit].primary");
  await page.waitForSelector("#login-error");
  assert.match(await page.textContent("#login-error"), /password or code is incorrect/);
  await shot(page, "login-wrong-code");
  await login(page, BASE, "op0001");
  await open(page, BASE, "lock0001");
  assert.match(await page.textContent("#token-lock"), /Locked/);
  await shot(page, "customer-locked");
  // The reason is mandatory: the browser does not send the form without it.
  await page.click("#form-unlock button[type=submit]");
  assert.match(await page.textContent("#token-lock"), /Locked/, "not sent without a reason");
  await submit(page, "#form-unlock", "Customer called; identity checked by callback");
  assert.match(await page.textContent("#done"), /unlocked/);
  assert.match(await page.textContent("#token-lock"), /Not locked/);
  assert.match(await page.textContent("#audit tbody tr:first-child .action"), /unlock/, "newest first");
  await shot(page, "customer-unlocked");
  // The same page in Japanese, and back.
  await page.click("#lang-switch");
  await page.waitForLoadState("load");
  assert.equal(await page.getAttribute("html", "lang"), "ja");
  assert.match(await page.textContent("h1"), /^お客さま lock0001$/);
  assert.match(await page.textContent("#token-lock"), /ロックなし/);
  await shot(page, "customer-unlocked-ja");
  await page.click("#lang-switch");
  await page.waitForLoadState("load");
  assert.equal(await page.getAttribute("html", "lang"), "en");
  // CSV export of the audit trail.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
  const csv = await (await download.createReadStream()).toArray();
  const text = Buffer.concat(csv).toString("utf8");
  assert.ok(text.startsWith('"id","at","actor"'), "CSV header");
  assert.match(text, /"unlock","ok"/);
  assert.doesNotMatch(text, /\$argon2/, "no password hash");

  // Search by e-mail; resend the setup mail.
  await open(page, BASE, "MAIL0001@example.jp");
  assert.equal(await page.getAttribute("#token-state", "data-state"), "issued");
  await submit(page, "#form-resend", "Mail never arrived (spam folder checked)");
  assert.match(await page.textContent("#done"), /fresh download link/);
  await shot(page, "resend");

  // No revoke or reprovision for an operator, and a forged post is refused.
  await open(page, BASE, "lost0001");
  assert.equal(await page.locator("#form-revoke").count(), 0);
  assert.equal(await page.locator("#form-reprovision").count(), 0);
  assert.ok(await page.isVisible("#operator-note"));
  await shot(page, "operator-no-revoke");
  const csrf = await page.getAttribute("header input[name=csrf]", "value");
  const userId = (await page.textContent("#token-user-id")).trim();
  const res = await page.request.post(page.url() + "/revoke", { form: { csrf, user_id: userId, reason: "trying anyway" } });
  assert.equal(res.status(), 403, "an operator cannot revoke");
  await logout(page);
  await page.context().close();
}

// 3. Supervisor: revoke; reprovision with a generated password and with the customer's own.
{
  const page = await newPage();
  await login(page, BASE, "supA001");
  await open(page, BASE, "lost0001");
  await submit(page, "#form-revoke", "Phone stolen, reported by the customer");
  assert.match(await page.textContent("#done"), /revoked/);
  assert.equal(await page.getAttribute("#token-state", "data-state"), "revoked");
  await shot(page, "revoked");

  await open(page, BASE, "move0001");
  const oldUser = (await page.textContent("#token-user-id")).trim();
  await page.check("#mode-generated");
  await page.fill("#f-email", "move-new@example.jp");
  await page.fill("#form-reprovision input[name=reason]", "New phone; identity checked at the branch");
  await shot(page, "reprovision-form");
  await page.click("#form-reprovision button[type=submit]");
  await page.waitForSelector("#generated-password");
  const password = (await page.textContent("#generated-password")).trim();
  const newUser = (await page.textContent("#new-user-id")).trim();
  assert.match(password, /^\d{8}$/);
  assert.notEqual(newUser, oldUser);
  await shot(page, "reprovisioned-generated");
  const r = await fetch(CONTROL + "/generated", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ user_id: newUser, password }),
  });
  assert.equal(r.status, 200);
  // Shown once: not on the customer page, nor in the export.
  await page.click("text=Back to the customer");
  await page.waitForURL(/\/staff\/customers\/\d+$/);
  assert.equal((await page.textContent("#token-user-id")).trim(), newUser);
  assert.ok(!(await page.content()).includes(password), "the password is not shown again");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
  const text = Buffer.concat(await (await download.createReadStream()).toArray()).toString("utf8");
  assert.ok(!text.includes(password), "nor exported");
  await open(page, BASE, "self0001");
  await page.check("#mode-customer");
  await submit(page, "#form-reprovision", "Changed phones; customer will set a new password");
  await page.waitForSelector("#customer-choice");
  assert.equal(await page.locator("#generated-password").count(), 0);
  await shot(page, "reprovisioned-customer");
  await logout(page);
  await page.context().close();
}

// 4. Four-eyes: a request by one supervisor, approved by another; never by oneself.
{
  const a = await newPage();
  await login(a, BASE4, "supA001");
  await open(a, BASE4, "four0001");
  await submit(a, "#form-revoke", "Phone lost abroad");
  assert.match(await a.textContent("#done"), /second supervisor/);
  assert.equal(await a.getAttribute("#token-state", "data-state"), "active", "nothing happens yet");
  await a.goto(BASE4 + "/staff/approvals");
  const row = a.locator("table#requests tbody tr").first();
  assert.match(await row.textContent(), /\(you\)/);
  assert.equal(await row.locator("form[action$='/approve']").count(), 0, "no approve button for one's own request");
  await shot(a, "approvals-own");
  // A forged approval of one's own request is refused.
  const id = (await row.getAttribute("id")).replace("request-", "");
  const csrf = await a.getAttribute("header input[name=csrf]", "value");
  const res = await a.request.post(`${BASE4}/staff/approvals/${id}/approve`, { form: { csrf } });
  assert.equal(res.status(), 403, "one's own request cannot be approved");
  await logout(a);

  const op = await newPage();
  await login(op, BASE4, "op0001");
  await op.goto(BASE4 + "/staff/approvals");
  assert.equal(await op.locator("form[action$='/approve']").count(), 0, "an operator approves nothing");
  const opCsrf = await op.getAttribute("header input[name=csrf]", "value");
  const r2 = await op.request.post(`${BASE4}/staff/approvals/${id}/approve`, { form: { csrf: opCsrf } });
  assert.equal(r2.status(), 403);
  await op.context().close();

  const b = await newPage();
  await login(b, BASE4, "supB001");
  await b.goto(BASE4 + "/staff/approvals");
  await shot(b, "approvals-other");
  // Another's request cannot be withdrawn as one's own.
  const bCsrf = await b.getAttribute("header input[name=csrf]", "value");
  const r3 = await b.request.post(`${BASE4}/staff/approvals/${id}/cancel`, { form: { csrf: bCsrf, reason: "not mine" } });
  assert.equal(r3.status(), 403);
  await b.click(`#request-${id} form[action$='/approve'] button`);
  await b.waitForURL(/done=approved/);
  assert.match(await b.textContent("#done"), /approved/);
  await open(b, BASE4, "four0001");
  assert.equal(await b.getAttribute("#token-state", "data-state"), "revoked");
  await shot(b, "four-eyes-revoked");
  await b.context().close();
}

await browser.close();
assert.deepEqual(errors, [], "no script errors in the pages");
console.log("STAFF JOURNEY OK");
