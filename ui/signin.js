// The sign-in window: starts a sign-in, shows what the person has to do, waits for the end.
'use strict';

(function () {
  const { t, $, show, on, invoke, busy, applyStrings, closeWindow } = App;

  const VIEWS = ['loading-view', 'device-view', 'browser-view', 'embedded-view', 'signed-in', 'expired-view', 'error-view'];
  const SLOW_AFTER_MS = 60 * 1000;

  // Every start gets a new generation; answers of an older one (a sign-in replaced by
  // "use the browser" or "new QR code") are ignored, so its "cancelled" closes nothing.
  let generation = 0;
  let requested = null; // the method asked for: null (the profile's choice) or 'browser'
  let shownMethod = null; // the method signin_start answered with
  let countdown = null;
  let slowTimer = null;

  function showView(id) {
    for (const view of VIEWS) show(view, view === id);
    const focusable = $(id) && $(id).querySelector('.btn-primary:not([hidden])');
    if (focusable && id !== 'loading-view') focusable.focus({ preventScroll: true });
  }

  function stopTimers() {
    if (countdown) clearInterval(countdown);
    if (slowTimer) clearTimeout(slowTimer);
    countdown = null;
    slowTimer = null;
  }

  /** `mm:ss` of whole seconds; minutes go past 59 rather than adding hours. */
  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  }

  async function start(method) {
    const mine = ++generation;
    requested = method || null;
    shownMethod = null;
    stopTimers();
    $('loading-text').dataset.i18n = requested === 'browser' ? 'ui.signin.opening_browser' : 'ui.signin.starting';
    applyStrings($('loading-view'));
    showView('loading-view');

    let view;
    try {
      view = await invoke('signin_start', requested ? { method: requested } : {});
    } catch (e) {
      if (mine === generation) showError({ message: e.message });
      return;
    }
    if (mine !== generation) return;
    render(view || {});

    let outcome;
    try {
      outcome = await invoke('signin_wait');
    } catch (e) {
      outcome = { ok: false, message: e.message };
    }
    if (mine !== generation) return;
    finish(outcome || {});
  }

  function render(view) {
    shownMethod = view.method;
    switch (view.method) {
      case 'device':
        renderDevice(view);
        break;
      case 'browser':
        renderBrowser(view);
        break;
      case 'embedded':
        showView('embedded-view');
        break;
      default:
        showError({ message: t('ui.common.unknown_error') });
    }
  }

  function renderDevice(view) {
    const qr = $('qr');
    qr.src = view.qrDataUri || '';
    qr.dataset.url = view.verificationUriComplete || view.verificationUri || '';
    qr.alt = t('ui.signin.device.qr_alt');
    $('user-code').textContent = view.userCode || '';
    show('first-time-hint', Boolean(view.firstTime));

    const expiresAt = Number(view.expiresAt) || 0;
    const timeLeft = $('time-left');
    let last = '';
    const tick = () => {
      const left = expiresAt - Date.now() / 1000;
      const text = clock(left);
      if (text !== last) {
        timeLeft.textContent = text;
        timeLeft.classList.toggle('ending', left <= 60);
        last = text;
      }
      if (left <= 0) {
        // The server will say so too; keep listening, a late approval still wins.
        stopTimers();
        showExpired();
      }
    };
    showView('device-view');
    if (expiresAt > 0) {
      countdown = setInterval(tick, 250);
      tick();
    }
  }

  function renderBrowser(view) {
    $('authorize-url').value = view.authorizeUrl || '';
    show('slow-hint', false);
    $('first-time-link').classList.remove('emphasised');
    showView('browser-view');
    slowTimer = setTimeout(() => {
      show('slow-hint', true);
      $('first-time-link').classList.add('emphasised');
    }, SLOW_AFTER_MS);
  }

  function finish(outcome) {
    stopTimers();
    if (outcome.ok) return showSignedIn(outcome);
    if (outcome.cancelled) return closeWindow();
    if (outcome.expired) return showExpired();
    return showError(outcome);
  }

  function showSignedIn(outcome) {
    $('signed-in-as').textContent = outcome.name
      ? t('ui.signin.done.title', { name: outcome.name })
      : t('ui.signin.done.title_no_name');
    $('signed-in-host').textContent = outcome.host || '';
    show('signed-in-host', Boolean(outcome.host));
    show('workbench-error', false);
    showView('signed-in');
  }

  function showExpired() {
    const qr = shownMethod === 'device';
    $('expired-title').dataset.i18n = qr ? 'ui.signin.expired.title' : 'ui.signin.expired.title_other';
    $('expired-text').dataset.i18n = qr ? 'ui.signin.expired.text' : 'ui.signin.expired.text_other';
    $('refresh-qr').dataset.i18n = qr ? 'ui.signin.expired.refresh' : 'ui.signin.expired.restart';
    applyStrings($('expired-view'));
    showView('expired-view');
  }

  function showError(outcome) {
    const firstLogin = Boolean(outcome.firstLogin);
    $('error-title').dataset.i18n = firstLogin ? 'ui.signin.error.first_login_title' : 'ui.signin.error.title';
    applyStrings($('error-view'));
    $('error').textContent = outcome.message || t('ui.common.unknown_error');
    show('first-login-guide', firstLogin);
    $('error-icon').classList.toggle('bad', !firstLogin);
    $('error-icon').classList.toggle('info', firstLogin);
    $('retry').classList.toggle('btn-primary', !firstLogin);
    showView('error-view');
  }

  async function openGuide(button) {
    try {
      await busy(button, () => invoke('guide_open'));
    } catch (e) {
      console.error(e.message);
    }
  }

  async function cancel(button) {
    generation++;
    stopTimers();
    await busy(button, async () => {
      try {
        await invoke('signin_cancel');
      } catch (e) {
        console.error(e.message);
      }
    });
    await closeWindow();
  }

  async function copyLink() {
    const input = $('authorize-url');
    let copied = false;
    try {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    } catch (_) {
      input.focus();
      input.select();
      try {
        copied = document.execCommand('copy');
      } catch (__) {
        copied = false;
      }
    }
    if (copied) {
      const button = $('copy-link');
      button.textContent = t('ui.common.copied');
      setTimeout(() => {
        button.textContent = t('ui.common.copy');
      }, 1800);
    }
  }

  function wire() {
    on('use-browser', 'click', () => start('browser'));
    on('first-time-link', 'click', (e) => openGuide(e.currentTarget));
    on('first-login-guide', 'click', (e) => openGuide(e.currentTarget));
    on('cancel', 'click', (e) => cancel(e.currentTarget));
    on('cancel-embedded', 'click', (e) => cancel(e.currentTarget));
    on('refresh-qr', 'click', () => start(requested));
    on('retry', 'click', () => start(requested));
    on('close', 'click', () => closeWindow());
    on('copy-link', 'click', copyLink);
    on('authorize-url', 'focus', (e) => e.currentTarget.select());
    on('open-workbench', 'click', async (e) => {
      show('workbench-error', false);
      try {
        await busy(e.currentTarget, () => invoke('workbench_open', { mobile: false }));
        await closeWindow();
      } catch (err) {
        $('workbench-error').textContent = err.message;
        show('workbench-error', true);
      }
    });
  }

  App.boot(() => {
    wire();
    return start(null);
  });
})();
