// Provisioning: shows what an administrator's link would set, and sets it only on "yes".
'use strict';

(function () {
  const { t, $, show, on, h, invoke, busy, closeWindow } = App;

  /** Fills a `<dd>`: the given value, or the default (marked as such) when there is none. */
  function fill(id, value, fallback) {
    const dd = $(id);
    dd.replaceChildren();
    if (value) {
      dd.textContent = value;
      return;
    }
    dd.append(h('span', { class: 'default', text: fallback }));
  }

  function render(p) {
    const origin = String(p.origin || '').replace(/\/+$/, '');
    const mobile = p.mobilePath || '/m';
    fill('p-name', p.name, '');
    fill('p-origin', p.origin, '');
    fill('p-authenticator', p.authenticator, t('ui.provision.authenticator_auto'));
    fill('p-desktop', p.desktopPath, t('ui.provision.default_value', { value: '/admin' }));
    fill('p-mobile', p.mobilePath, t('ui.provision.default_value', { value: '/m' }));
    fill('p-home', p.homeLink, t('ui.provision.default_value', { value: origin + mobile }));
    $('replace-warning-text').textContent = t('ui.provision.replaces', { name: p.name });
    show('replace-warning', Boolean(p.existing));
    show('loading-view', false);
    show('details-view', true);
    $('apply').focus({ preventScroll: true });
  }

  async function apply() {
    show('apply-error', false);
    try {
      // On success Rust closes this window and opens the sign-in window.
      await busy([$('apply'), $('cancel')], () => invoke('provision_apply'));
    } catch (e) {
      $('apply-error').textContent = e.message;
      show('apply-error', true);
    }
  }

  async function cancel() {
    try {
      await busy([$('apply'), $('cancel')], () => invoke('provision_cancel'));
    } catch (e) {
      console.error(e.message);
      await closeWindow();
    }
  }

  App.boot(async () => {
    on('apply', 'click', apply);
    on('cancel', 'click', cancel);
    on('close', 'click', () => closeWindow());
    try {
      render(await invoke('provision_get'));
    } catch (e) {
      $('load-error').textContent = e.message;
      show('loading-view', false);
      show('error-view', true);
    }
  });
})();
