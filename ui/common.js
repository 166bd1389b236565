// Shared helpers of the app's windows: strings, the Rust bridge, small DOM helpers.
// Loaded as a classic script before each page's own script; everything lives on `App`.
'use strict';

(function () {
  const own = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

  let strings = {};
  let locale = 'en-US';

  /** The text of `key` in the current language, `%{name}` filled from `args`. */
  function t(key, args) {
    let text = own(strings, key) ? String(strings[key]) : key;
    if (args) {
      text = text.replace(/%\{(\w+)\}/g, (whole, name) =>
        own(args, name) && args[name] !== null && args[name] !== undefined ? String(args[name]) : whole,
      );
    }
    return text;
  }

  function has(key) {
    return own(strings, key);
  }

  /** One readable sentence out of whatever a command rejected with. */
  function errorMessage(error) {
    if (error === null || error === undefined || error === '') return t('ui.common.unknown_error');
    if (typeof error === 'string') return error;
    if (typeof error.message === 'string' && error.message) return error.message;
    if (typeof error.error === 'string' && error.error) return error.error;
    try {
      return JSON.stringify(error);
    } catch (_) {
      return String(error);
    }
  }

  /** Calls a Rust command; a rejection becomes an `Error` whose message is one sentence. */
  async function invoke(command, args) {
    const tauri = window.__TAURI__;
    if (!tauri || !tauri.core || typeof tauri.core.invoke !== 'function') {
      const err = new Error(t('ui.common.no_bridge'));
      err.command = command;
      throw err;
    }
    try {
      return await tauri.core.invoke(command, args || {});
    } catch (e) {
      const err = new Error(errorMessage(e));
      err.command = command;
      err.cause = e;
      throw err;
    }
  }

  /** Fetches every string in the language the app speaks now. */
  async function loadStrings() {
    const answer = await invoke('ui_strings');
    strings = (answer && answer.strings) || {};
    locale = (answer && answer.locale) || 'en-US';
    return locale;
  }

  /** Fills `data-i18n*` elements under `root` (the whole page by default). */
  function applyStrings(root) {
    const scope = root || document;
    if (!root) document.documentElement.lang = locale;
    for (const el of scope.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of scope.querySelectorAll('[data-i18n-placeholder]')) {
      el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
    }
    for (const el of scope.querySelectorAll('[data-i18n-title]')) el.setAttribute('title', t(el.dataset.i18nTitle));
    for (const el of scope.querySelectorAll('[data-i18n-alt]')) el.setAttribute('alt', t(el.dataset.i18nAlt));
    for (const el of scope.querySelectorAll('[data-i18n-aria-label]')) {
      el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
    }
  }

  // Small DOM helpers.
  const $ = (id) => document.getElementById(id);

  function show(el, visible) {
    const node = typeof el === 'string' ? $(el) : el;
    if (node) node.hidden = !visible;
  }

  /** Creates an element: `h('p', {class: 'note', text: 'hi'}, child, …)`. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'text') el.textContent = value;
      else if (name === 'class') el.className = value;
      else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
      else if (value === true) el.setAttribute(name, '');
      else el.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function on(id, event, handler) {
    const el = typeof id === 'string' ? $(id) : id;
    if (el) el.addEventListener(event, handler);
  }

  /** Runs `fn` while `button` is disabled (no double clicks on slow commands). */
  async function busy(button, fn) {
    const buttons = (Array.isArray(button) ? button : [button]).filter(Boolean);
    const before = buttons.map((b) => b.disabled);
    for (const b of buttons) b.disabled = true;
    try {
      return await fn();
    } finally {
      buttons.forEach((b, i) => {
        b.disabled = before[i];
      });
    }
  }

  /** Closes this window (Rust does it; `window.close()` as a last resort). */
  async function closeWindow() {
    try {
      await invoke('window_close');
    } catch (_) {
      window.close();
    }
  }

  /** Loads the strings, fills the page, then runs the page's own start. */
  function boot(start) {
    const run = async () => {
      try {
        await loadStrings();
      } catch (e) {
        // Without strings the page still works; keys show where text would be.
        console.error('ui_strings failed:', e.message);
      }
      applyStrings();
      document.body.classList.add('ready');
      try {
        await start();
      } catch (e) {
        console.error('page start failed:', e && e.message);
      }
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run, { once: true });
    else run();
  }

  window.App = Object.freeze({
    t,
    has,
    get locale() {
      return locale;
    },
    loadStrings,
    applyStrings,
    invoke,
    errorMessage,
    $,
    show,
    h,
    on,
    busy,
    closeWindow,
    boot,
  });
})();
