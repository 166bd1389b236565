// A stand-in for the Tauri bridge, for looking at ui/ pages in a plain browser.
//
// tests/ui/serve.py inserts this script before ui/common.js. URL parameters:
//   scenario=  which answers the commands give (see SCENARIOS below)
//   lang=      en-US | zh-CN | id-ID (the language ui_strings answers in)
//   act=       comma-separated steps run after load: click:ID, wait:MS, type:ID:TEXT,
//              select:ID:VALUE, open:ID (a <details>)
//   delay=     milliseconds every command takes (default 30)
//   after=     milliseconds before a sign-in ends (default 400); once=1: only the first one ends
// After the steps it writes a JSON report on <html data-report>: visible views, the
// commands called, CSP violations, page errors and any untranslated keys on screen.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const scenario = params.get('scenario') || 'device';
  let lang = params.get('lang') || 'en-US';
  const delay = Number(params.get('delay') || 30);
  const calls = [];
  const violations = [];
  const errors = [];

  document.addEventListener('securitypolicyviolation', (e) => {
    violations.push(`${e.violatedDirective} ${e.blockedURI || ''} ${e.sourceFile || ''}:${e.lineNumber || ''}`);
  });
  window.addEventListener('error', (e) => errors.push(String(e.message)));
  window.addEventListener('unhandledrejection', (e) => errors.push(`unhandled: ${e.reason && e.reason.message}`));

  // ---- strings, resolved like the Rust side (current locale, else en-US) ----------------
  let tables = null;
  async function loadTables() {
    if (!tables) {
      const [app, ui] = await Promise.all(
        ['/locales/app.json', '/locales/ui.json'].map((u) => fetch(u).then((r) => r.json())),
      );
      tables = Object.assign({}, app, ui);
    }
    return tables;
  }
  function resolve(locale) {
    const out = {};
    for (const [key, texts] of Object.entries(tables)) {
      if (key === '_version') continue;
      const text = texts[locale] || texts['en-US'];
      if (typeof text === 'string') out[key] = text;
    }
    return out;
  }
  async function say(key, args) {
    await loadTables();
    let text = (tables[key] && (tables[key][lang] || tables[key]['en-US'])) || key;
    for (const [k, v] of Object.entries(args || {})) text = text.split(`%{${k}}`).join(v);
    return text;
  }

  // ---- a QR-looking SVG, like the qrcode crate's (quiet zone, black on white) -----------
  function fakeQr(text) {
    const n = 33;
    let seed = 0;
    for (const c of text) seed = (seed * 31 + c.charCodeAt(0)) >>> 0;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 16) & 1;
    };
    const dark = [];
    const finder = (x, y, i, j) => {
      const dx = i - x;
      const dy = j - y;
      if (dx < 0 || dy < 0 || dx > 6 || dy > 6) return null;
      const ring = Math.max(Math.abs(dx - 3), Math.abs(dy - 3));
      return ring !== 2;
    };
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        let v = finder(0, 0, i, j);
        if (v === null) v = finder(n - 7, 0, i, j);
        if (v === null) v = finder(0, n - 7, i, j);
        if (v === null) {
          const nearFinder = (i < 8 && j < 8) || (i >= n - 8 && j < 8) || (i < 8 && j >= n - 8);
          v = nearFinder ? false : i === 6 || j === 6 ? (i + j) % 2 === 0 : rand() === 1;
        }
        if (v) dark.push([i, j]);
      }
    }
    const q = 4;
    const size = (n + 2 * q) * 8;
    const d = dark.map(([i, j]) => `M${(i + q) * 8} ${(j + q) * 8}h8v8h-8z`).join('');
    const svg = `<?xml version="1.0" standalone="yes"?><svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}" shape-rendering="crispEdges"><path fill="#fff" d="M0 0h${size}v${size}H0z"/><path fill="#000" d="${d}"/></svg>`;
    return `data:image/svg+xml;base64,${btoa(svg)}`;
  }

  // ---- sample data -----------------------------------------------------------------------
  const ORIGIN = 'https://nocobase.example.com';
  const profiles = [
    {
      name: 'work',
      origin: ORIGIN,
      authenticator: 'wecom',
      desktopPath: '/admin',
      mobilePath: '/m',
      homeLink: `${ORIGIN}/m`,
      method: 'auto',
      wecomAuthorized: true,
    },
    {
      name: 'test',
      origin: 'https://nb-test.example.cn',
      authenticator: 'wecom-test',
      desktopPath: '/admin/home',
      mobilePath: '/m',
      homeLink: 'https://nb-test.example.cn/m/tasks',
      method: 'device',
      wecomAuthorized: false,
    },
  ];
  const settings = {
    profiles: scenario === 'settings-empty' ? [] : profiles.map((p) => Object.assign({}, p)),
    active: scenario === 'settings-empty' ? null : 'work',
    language: params.get('language') || 'auto',
    autostart: true,
  };

  // Sign-in: each start replaces the last, whose wait then ends "cancelled" (as in Rust).
  let pending = null;
  let startCount = 0;
  function newPending() {
    if (pending) pending.resolve({ ok: false, cancelled: true, expired: false, firstLogin: false, message: 'cancelled' });
    let resolve;
    const promise = new Promise((r) => {
      resolve = r;
    });
    pending = { promise, resolve };
    return pending;
  }

  async function signinOutcome() {
    if (params.get('once') && startCount > 1) return null;
    const after = Number(params.get('after') || 400);
    await new Promise((r) => setTimeout(r, after));
    switch (scenario) {
      case 'signed-in':
      case 'workbench-error':
        return { ok: true, name: '张三', host: 'nocobase.example.com', expired: false, cancelled: false, firstLogin: false };
      case 'expired':
        return { ok: false, expired: true, cancelled: false, firstLogin: false, message: await say('error.flow_expired') };
      case 'error':
        return {
          ok: false,
          expired: false,
          cancelled: false,
          firstLogin: false,
          message: await say('error.signin_failed', {
            message: await say('error.http', { status: '502', message: 'Bad Gateway' }),
          }),
        };
      case 'first-login':
        return {
          ok: false,
          expired: false,
          cancelled: false,
          firstLogin: true,
          message: await say('error.first_login_required', { message: '用户未授权手机号' }),
        };
      case 'cancelled':
        return { ok: false, expired: false, cancelled: true, firstLogin: false, message: await say('error.flow_cancelled') };
      default:
        return null; // waits for ever
    }
  }

  function deviceView(firstTime, seconds) {
    const code = startCount > 1 ? 'WXKD-PQTM' : 'LZNN-SRJC';
    const complete = `${ORIGIN}/idpOAuth/device?user_code=${code}`;
    return {
      method: 'device',
      qrDataUri: fakeQr(complete),
      userCode: code,
      verificationUri: `${ORIGIN}/idpOAuth/device`,
      verificationUriComplete: complete,
      expiresAt: Math.floor(Date.now() / 1000) + seconds,
      firstTime,
    };
  }

  const serverChecks = {
    one: {
      origin: ORIGIN,
      version: '2.2.15',
      provider: true,
      deviceFlow: true,
      authenticators: [
        { name: 'basic', title: 'Password', isWecom: false },
        { name: 'wecom', title: '企业微信', isWecom: true },
      ],
    },
    several: {
      origin: ORIGIN,
      version: '2.2.15',
      provider: true,
      deviceFlow: true,
      authenticators: [
        { name: 'basic', title: 'Password', isWecom: false },
        { name: 'wecom', title: '企业微信（总部）', isWecom: true },
        { name: 'wecom-sz', title: '企业微信（深圳分公司）', isWecom: true },
      ],
    },
    none: {
      origin: ORIGIN,
      version: '1.9.4',
      provider: false,
      deviceFlow: false,
      authenticators: [{ name: 'basic', title: 'Password', isWecom: false }],
    },
  };

  const handlers = {
    async ui_strings() {
      await loadTables();
      return { locale: lang, strings: resolve(lang) };
    },
    async signin_start(args) {
      startCount++;
      if (scenario === 'start-error') throw await say('error.no_profile');
      const p = newPending();
      const method = args && args.method;
      let view;
      if (method === 'browser' || scenario === 'browser' || scenario === 'browser-slow') {
        view = { method: 'browser', authorizeUrl: `${ORIGIN}/api/idpOAuth:authorize?response_type=code&client_id=nwc-7f3a&code_challenge=Qm9ndXM&state=8d1c` };
      } else if (scenario === 'embedded') {
        view = { method: 'embedded' };
      } else {
        const seconds = scenario === 'device-expiring' ? 3 : 299;
        view = deviceView(scenario !== 'device-returning', seconds);
      }
      // The end comes later, through the pending wait (unless a newer start replaced it).
      signinOutcome().then((o) => {
        if (o && pending === p) p.resolve(o);
      });
      return view;
    },
    async signin_wait() {
      if (!pending) return { ok: false, cancelled: true, expired: false, firstLogin: false, message: 'none' };
      return pending.promise;
    },
    async signin_cancel() {
      if (pending) pending.resolve({ ok: false, cancelled: true, expired: false, firstLogin: false, message: 'cancelled' });
      pending = null;
    },
    async guide_open() {},
    async workbench_open(args) {
      if (scenario === 'workbench-error') throw await say('error.browser_open', { detail: 'no default browser' });
      if (typeof args.mobile !== 'boolean') throw new Error('mobile must be a bool');
    },
    async window_close() {
      document.documentElement.dataset.closed = 'true';
    },
    async settings_get() {
      return JSON.parse(JSON.stringify(settings));
    },
    async server_check(args) {
      if (!args || typeof args.origin !== 'string') throw new Error('origin missing');
      if (scenario === 'settings-unreachable') throw await say('error.unreachable', { origin: args.origin });
      const kind = scenario === 'settings-several-wecom' ? 'several' : scenario === 'settings-no-wecom' ? 'none' : 'one';
      return Object.assign({}, serverChecks[kind], { origin: args.origin.replace(/\/+$/, '') });
    },
    async profile_save(args) {
      const { profile, previousName } = args;
      if (!profile || previousName === undefined) throw new Error('profile_save: missing profile or previousName');
      if (scenario === 'settings-save-error') {
        throw await say('error.invalid_path', { input: profile.desktopPath || '//evil' });
      }
      const view = Object.assign({}, profile, {
        homeLink: profile.homeLink || profile.origin + (profile.mobilePath || '/m'),
        desktopPath: profile.desktopPath || '/admin',
        mobilePath: profile.mobilePath || '/m',
        wecomAuthorized: false,
      });
      const i = settings.profiles.findIndex((p) => p.name === (previousName || profile.name));
      if (i >= 0) settings.profiles[i] = view;
      else settings.profiles.push(view);
      if (!settings.active) settings.active = profile.name;
      document.documentElement.dataset.saved = JSON.stringify(args);
      return JSON.parse(JSON.stringify(settings));
    },
    async profile_use({ name }) {
      settings.active = name;
    },
    async profile_remove({ name }) {
      settings.profiles = settings.profiles.filter((p) => p.name !== name);
      if (settings.active === name) settings.active = settings.profiles.length ? settings.profiles[0].name : null;
    },
    async language_set({ language }) {
      settings.language = language;
      lang = language === 'auto' ? params.get('lang') || 'en-US' : language;
    },
    async autostart_set({ enabled }) {
      if (scenario === 'autostart-error') throw 'Could not change the login items: permission denied';
      settings.autostart = enabled;
    },
    async provision_get() {
      if (scenario === 'provision-error') throw await say('error.flow_cancelled');
      return {
        name: 'work',
        origin: ORIGIN,
        authenticator: scenario === 'provision-auto' ? null : 'wecom',
        desktopPath: scenario === 'provision-auto' ? null : '/admin',
        mobilePath: null,
        homeLink: scenario === 'provision-auto' ? null : `${ORIGIN}/m/workbench`,
        existing: scenario === 'provision-existing',
      };
    },
    async provision_apply() {
      if (scenario === 'provision-apply-error') {
        throw await say('error.several_wecom_authenticators', { names: '企业微信（总部）, 企业微信（深圳）' });
      }
      document.documentElement.dataset.closed = 'true';
    },
    async provision_cancel() {
      document.documentElement.dataset.closed = 'true';
    },
  };

  async function invoke(cmd, args) {
    calls.push(args && Object.keys(args).length ? `${cmd} ${JSON.stringify(args)}` : cmd);
    await new Promise((r) => setTimeout(r, delay));
    const handler = handlers[cmd];
    if (!handler) throw `unknown command ${cmd}`;
    return handler(args || {});
  }

  window.__TAURI__ = { core: { invoke } };

  // ---- scripted steps, then the report ----------------------------------------------------
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  async function runSteps() {
    const steps = (params.get('act') || '').split(',').filter(Boolean);
    await sleep(250);
    for (const step of steps) {
      const [verb, id, ...rest] = step.split(':');
      const value = rest.join(':');
      const el = document.getElementById(id);
      if (verb === 'wait') {
        await sleep(Number(id));
        continue;
      }
      if (!el) {
        errors.push(`step ${step}: no #${id}`);
        continue;
      }
      if (verb === 'click') el.click();
      else if (verb === 'type') {
        el.value = value;
        el.dispatchEvent(new Event('input', { bubbles: true }));
      } else if (verb === 'select') {
        el.value = value;
        el.dispatchEvent(new Event('change', { bubbles: true }));
      } else if (verb === 'check') {
        el.checked = value !== 'off';
        el.dispatchEvent(new Event('change', { bubbles: true }));
      } else if (verb === 'open') el.open = true;
      await sleep(300);
    }
    await sleep(Number(params.get('settle') || 300));
    report();
  }

  function visible(el) {
    return !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  }

  function report() {
    const text = document.body ? document.body.innerText : '';
    const untranslated = (text.match(/\b(ui|app)\.[a-z0-9_]+\.[a-z0-9_.]+/g) || []).filter((s) => !s.includes('example'));
    const shown = [...document.querySelectorAll('[id]')].filter(visible);
    const ids = shown.map((e) => e.id);
    const classes = Object.fromEntries(shown.filter((e) => e.className && typeof e.className === 'string').map((e) => [e.id, e.className]));
    const out = {
      scenario,
      lang: document.documentElement.lang,
      title: document.title,
      visibleIds: ids,
      classes,
      calls,
      violations,
      errors,
      untranslated,
      closed: document.documentElement.dataset.closed === 'true',
    };
    document.documentElement.dataset.report = JSON.stringify(out);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', runSteps, { once: true });
  else runSteps();
})();
