#!/usr/bin/env node
// Plays the user's browser in the real-NocoBase tests (tests/real_nocobase.rs): headless
// Debian Chromium, driven by playwright-core, opens the authorize URL the app hands to its
// URL opener, signs in on NocoBase's real sign-in page (the basic authenticator stands in
// for WeCom), clicks Continue on the consent card, and follows the redirect until it
// reaches the `redirect_uri` of the authorize URL (the app's loopback listener).
//
//   node tests/browser/sign-in.js '<authorize URL>'
//
// Prints one JSON line on stdout and exits 0 when the callback page was reached:
//   {"ok":true,"callback":"http://127.0.0.1:…/callback?code=…","status":200,"text":"…","steps":[…],"ms":…}
// and {"ok":false,"error":"…","url":"…","text":"…","screenshot":"…","steps":[…]} with exit 1
// otherwise. Nothing else is written to stdout (the app's output may be on the same pipe).
//
// Environment: NWC_SIGNIN_ACCOUNT / NWC_SIGNIN_PASSWORD (default: the root account of
// tests/nocobase/nocobase.sh), NWC_BROWSER_TIMEOUT_MS (default 90000: the first load of the
// SPA after a server start is slow on 2 cores), NWC_BROWSER_ARTIFACTS (a directory for a
// screenshot on failure; default the temp dir), CHROMIUM (default /usr/bin/chromium).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const account = process.env.NWC_SIGNIN_ACCOUNT || 'admin@nocobase.com';
const password = process.env.NWC_SIGNIN_PASSWORD || 'admin123';
const timeout = Number(process.env.NWC_BROWSER_TIMEOUT_MS || 90000);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

// The flags this machine needs: no sandbox (root in CI), no GPU, and nothing that phones
// home (the network is closed; without these Chromium retries Google hosts forever).
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

async function main() {
  const authorize = process.argv[2];
  if (!authorize) throw new Error('usage: sign-in.js <authorize URL>');
  const redirectUri = new URL(authorize).searchParams.get('redirect_uri');
  if (!redirectUri) throw new Error('the authorize URL has no redirect_uri');

  const t0 = Date.now();
  const steps = [];
  const step = (what, url) => steps.push({ ms: Date.now() - t0, what, url });
  // A fresh profile for every run: no NocoBase session, no provider cookie.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'nwc-chromium-'));
  let context;
  let page;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ARGS,
      // Off the test's D-Bus session: Chromium would ask it to start an accessibility bus.
      env: { ...process.env, NO_AT_BRIDGE: '1', DBUS_SESSION_BUS_ADDRESS: 'disabled:' },
      timeout,
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(timeout);
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) step('navigated', frame.url());
    });

    await page.goto(authorize, { waitUntil: 'commit' });
    // NocoBase's SPA: /idp-oauth/interaction/<uid> → /signin?redirect=… (fresh profile).
    const accountField = page.getByPlaceholder('Username/Email');
    await accountField.waitFor();
    step('sign-in form', page.url());
    await accountField.fill(account);
    await page.getByPlaceholder('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Back on the interaction page: the consent card ("Authorize application").
    const proceed = page.getByRole('button', { name: 'Continue' });
    await proceed.waitFor();
    step('consent card', page.url());
    const callback = page.waitForResponse(
      (r) => r.url().startsWith(redirectUri) && r.request().resourceType() === 'document',
    );
    await proceed.click();
    // 303 → the app's redirect_uri with code, state and iss: the app's own page answers.
    const answer = await callback;
    await page.waitForLoadState('load');
    const text = (await page.textContent('body')) || '';
    const report = {
      ok: true,
      callback: answer.url(),
      status: answer.status(),
      text: text.replace(/\s+/g, ' ').trim(),
      steps,
      ms: Date.now() - t0,
    };
    process.stdout.write(JSON.stringify(report) + '\n');
  } catch (err) {
    const report = { ok: false, error: String((err && err.message) || err), steps };
    if (page) {
      report.url = page.url();
      report.text = ((await page.textContent('body').catch(() => '')) || '')
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 2000);
      const dir = process.env.NWC_BROWSER_ARTIFACTS || os.tmpdir();
      const shot = path.join(dir, `nwc-sign-in-${process.pid}.png`);
      if (await page.screenshot({ path: shot, fullPage: true }).then(() => true, () => false)) {
        report.screenshot = shot;
      }
    }
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exitCode = 1;
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack || err) }) + '\n');
  process.exitCode = 1;
});
