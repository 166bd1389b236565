// Settings: servers (profiles), the selected server's details, language, start at login.
'use strict';

(function () {
  const { t, $, show, on, h, invoke, busy, applyStrings } = App;

  const DEFAULT_DESKTOP = '/admin';
  const DEFAULT_MOBILE = '/m';
  const EXAMPLE_ORIGIN = 'https://nocobase.example.com';

  const state = {
    settings: { profiles: [], active: null, language: 'auto', autostart: false },
    selected: null, // name of the profile in the form, or null for a new one
    check: null, // { origin, result } of the last server check, or { origin, error }
    checking: false,
  };

  let savedTimer = null;
  let messageTimer = null;

  // ---- helpers ------------------------------------------------------------------

  /** What the person typed, as an address: `https://` added when no scheme is given. */
  function originInput() {
    let value = $('origin').value.trim();
    if (value && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) value = `https://${value}`;
    return value;
  }

  function sameOrigin(a, b) {
    const norm = (s) => String(s || '').trim().replace(/\/+$/, '').toLowerCase();
    return norm(a) === norm(b);
  }

  function hostOf(origin) {
    try {
      return new URL(origin).host;
    } catch (_) {
      return origin;
    }
  }

  function profileByName(name) {
    return state.settings.profiles.find((p) => p.name === name) || null;
  }

  function selectedProfile() {
    return state.selected === null ? null : profileByName(state.selected);
  }

  function defaultHomeLink() {
    const origin = (originInput() || EXAMPLE_ORIGIN).replace(/\/+$/, '');
    const mobile = $('mobile-path').value.trim() || DEFAULT_MOBILE;
    return origin + (mobile.startsWith('/') ? mobile : `/${mobile}`);
  }

  function wecomOf(result) {
    return ((result && result.authenticators) || []).filter((a) => a.isWecom);
  }

  function authLabel(a) {
    return a.title && a.title !== a.name ? `${a.title} (${a.name})` : a.name;
  }

  /** A name for a new profile from the server's host: `nocobase.example.com` → `nocobase`. */
  function suggestName(origin) {
    const host = hostOf(origin).split(':')[0];
    const first = host.split('.').find((part) => part && part !== 'www') || host;
    const clean = first.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 32);
    return clean || 'work';
  }

  function flash(el, timerName, ms) {
    show(el, true);
    if (timerName === 'saved') {
      clearTimeout(savedTimer);
      savedTimer = setTimeout(() => show(el, false), ms);
    } else {
      clearTimeout(messageTimer);
      messageTimer = setTimeout(() => show(el, false), ms);
    }
  }

  function setFormError(message) {
    $('form-error').textContent = message || '';
    show('form-error', Boolean(message));
  }

  // ---- rendering ------------------------------------------------------------------

  function renderPicker() {
    const { profiles, active } = state.settings;
    const select = $('profile-select');
    select.replaceChildren();
    for (const p of profiles) {
      const key = p.name === active ? 'ui.settings.profiles.option_active' : 'ui.settings.profiles.option';
      select.append(h('option', { value: p.name, text: t(key, { name: p.name, host: hostOf(p.origin) }) }));
    }
    if (state.selected === null && profiles.length) {
      select.append(h('option', { value: '', text: t('ui.settings.profiles.option_new') }));
    }
    select.value = state.selected === null ? '' : state.selected;

    show('picker', profiles.length > 0);
    show('no-profiles', profiles.length === 0);
    const existing = selectedProfile();
    show('active-badge', Boolean(existing) && existing.name === active);
    show('use-profile', Boolean(existing) && existing.name !== active);
    show('remove-profile', Boolean(existing));
    show('profile-actions', Boolean(existing));
    $('form-heading').textContent = existing ? t('ui.settings.form.heading_edit') : t('ui.settings.form.heading_new');
  }

  function fillForm() {
    const p = selectedProfile();
    $('origin').value = p ? p.origin : '';
    $('name').value = p ? p.name : '';
    $('desktop-path').value = p ? p.desktopPath || '' : '';
    $('mobile-path').value = p ? p.mobilePath || '' : '';
    $('method').value = p && p.method ? p.method : 'auto';
    // The default home link is shown as the placeholder, so it follows the address.
    const home = p ? p.homeLink || '' : '';
    $('home-link').value = home && !sameOrigin(home, defaultHomeLinkFor(p)) ? home : '';
    state.check = null;
    setFormError('');
    show('form-saved', false);
    renderCheck();
    renderAuthenticator();
    renderMethodHint();
    updateHomePlaceholder();
  }

  function defaultHomeLinkFor(p) {
    return String(p.origin || '').replace(/\/+$/, '') + (p.mobilePath || DEFAULT_MOBILE);
  }

  function updateHomePlaceholder() {
    $('home-link').placeholder = defaultHomeLink();
  }

  function renderMethodHint() {
    $('method-hint').textContent = t(`ui.settings.method_hint.${$('method').value || 'auto'}`);
  }

  /** The authenticator the form will save, when no fresh check says otherwise. */
  function renderAuthenticator() {
    const p = selectedProfile();
    const fromCheck = state.check && state.check.result;
    const known = !fromCheck && p && p.authenticator && sameOrigin(p.origin, originInput());
    $('authenticator-name').textContent = known ? p.authenticator : '';
    show('authenticator-field', Boolean(known));
  }

  function line(kind, text, extra) {
    const icons = {
      ok: 'M5 12.5l4.5 4.5L19 7.5',
      warn: 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zM12 7.5v5M12 16h.01',
      bad: 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zM9 9l6 6M15 9l-6 6',
    };
    const svgNs = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(svgNs, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'icon');
    svg.setAttribute('aria-hidden', 'true');
    const path = document.createElementNS(svgNs, 'path');
    path.setAttribute('d', icons[kind]);
    svg.append(path);
    return h('li', { class: `check-line ${kind}` }, svg, h('span', {}, text, extra || null));
  }

  function renderCheck() {
    const box = $('server-check');
    box.replaceChildren();
    if (state.checking) {
      box.append(
        h('p', { class: 'waiting' }, h('span', { class: 'spinner small', 'aria-hidden': 'true' }), t('ui.settings.check.checking')),
      );
      show(box, true);
      return;
    }
    const check = state.check;
    if (!check) {
      show(box, false);
      return;
    }
    show(box, true);
    if (check.error) {
      box.append(h('ul', { class: 'check-list' }, line('bad', check.error)));
      return;
    }
    const r = check.result;
    const list = h('ul', { class: 'check-list' });
    list.append(
      line('ok', r.version ? t('ui.settings.check.reachable_version', { version: r.version }) : t('ui.settings.check.reachable')),
    );
    if (r.provider && r.deviceFlow) list.append(line('ok', t('ui.settings.check.provider_device')));
    else if (r.provider) list.append(line('ok', t('ui.settings.check.provider_browser')));
    else list.append(line('warn', t('ui.settings.check.no_provider')));

    const wecom = wecomOf(r);
    if (wecom.length === 0) {
      list.append(line('bad', t('ui.settings.check.no_wecom')));
    } else if (wecom.length === 1) {
      list.append(line('ok', t('ui.settings.check.one_wecom', { name: authLabel(wecom[0]) })));
    } else {
      list.append(line('warn', t('ui.settings.check.several_wecom')));
    }
    box.append(list);

    if (wecom.length > 1) {
      const select = h('select', { id: 'authenticator' });
      for (const a of wecom) select.append(h('option', { value: a.name, text: authLabel(a) }));
      const p = selectedProfile();
      const keep = check.chosen || (p && wecom.some((a) => a.name === p.authenticator) ? p.authenticator : wecom[0].name);
      select.value = keep;
      check.chosen = keep;
      select.addEventListener('change', () => {
        check.chosen = select.value;
      });
      box.append(
        h(
          'div',
          { class: 'field choose-auth' },
          h('label', { for: 'authenticator', text: t('ui.settings.check.choose_wecom') }),
          select,
        ),
      );
    }
  }

  function renderAll() {
    renderPicker();
    renderCheck();
    renderAuthenticator();
    renderMethodHint();
    updateHomePlaceholder();
    $('language').value = state.settings.language || 'auto';
    $('autostart').checked = Boolean(state.settings.autostart);
  }

  // ---- actions --------------------------------------------------------------------

  async function reload(selectName) {
    state.settings = await invoke('settings_get');
    const names = state.settings.profiles.map((p) => p.name);
    if (selectName !== undefined && (selectName === null || names.includes(selectName))) state.selected = selectName;
    else if (!names.includes(state.selected)) state.selected = state.settings.active || names[0] || null;
    if (!names.length) state.selected = null;
  }

  async function checkServer() {
    const origin = originInput();
    setFormError('');
    if (!origin) {
      setFormError(t('ui.settings.error.no_origin'));
      $('origin').focus();
      return null;
    }
    state.checking = true;
    renderCheck();
    try {
      const result = await busy($('check-server'), () => invoke('server_check', { origin }));
      state.check = { origin: result.origin || origin, result };
      if (result.origin) $('origin').value = result.origin;
      if (!$('name').value.trim() && state.selected === null) $('name').value = suggestName(result.origin || origin);
    } catch (e) {
      state.check = { origin, error: e.message };
    } finally {
      state.checking = false;
    }
    renderCheck();
    renderAuthenticator();
    updateHomePlaceholder();
    return state.check;
  }

  /** The WeCom authenticator to save, checking the server first when needed. */
  async function authenticatorToSave() {
    const origin = originInput();
    const fresh = () => state.check && sameOrigin(state.check.origin, origin) ? state.check : null;
    let check = fresh();
    const p = selectedProfile();
    if (!check && p && p.authenticator && sameOrigin(p.origin, origin)) return p.authenticator;
    let justChecked = false;
    if (!check) {
      await checkServer();
      check = fresh();
      justChecked = true;
    }
    if (!check) return null;
    if (check.error) throw new Error(check.error);
    const wecom = wecomOf(check.result);
    if (wecom.length === 0) throw new Error(t('ui.settings.check.no_wecom'));
    if (wecom.length === 1) return wecom[0].name;
    if (justChecked) {
      if ($('authenticator')) $('authenticator').focus();
      throw new Error(t('ui.settings.error.choose_wecom'));
    }
    return check.chosen || wecom[0].name;
  }

  async function save(event) {
    event.preventDefault();
    setFormError('');
    show('form-saved', false);
    const origin = originInput();
    if (!origin) {
      setFormError(t('ui.settings.error.no_origin'));
      $('origin').focus();
      return;
    }
    await busy([$('save'), $('check-server')], async () => {
      try {
        const authenticator = await authenticatorToSave();
        if (!authenticator) return;
        if (!$('name').value.trim()) $('name').value = suggestName(origin);
        const name = $('name').value.trim();
        const profile = {
          name,
          origin,
          authenticator,
          desktopPath: $('desktop-path').value.trim(),
          mobilePath: $('mobile-path').value.trim(),
          homeLink: $('home-link').value.trim(),
          method: $('method').value,
        };
        const settings = await invoke('profile_save', { profile, previousName: state.selected });
        state.settings = settings || state.settings;
        if (!settings) await reload(name);
        state.selected = name;
        renderPicker();
        fillForm();
        $('language').value = state.settings.language || 'auto';
        $('autostart').checked = Boolean(state.settings.autostart);
        flash($('form-saved'), 'saved', 4000);
      } catch (e) {
        setFormError(e.message);
      }
    });
  }

  function startNew() {
    state.selected = null;
    show('remove-confirm', false);
    show('profile-message', false);
    renderPicker();
    fillForm();
    $('origin').focus();
  }

  function selectProfile() {
    const value = $('profile-select').value;
    state.selected = value === '' ? null : value;
    show('remove-confirm', false);
    show('profile-message', false);
    renderPicker();
    fillForm();
  }

  async function useProfile(event) {
    const name = state.selected;
    if (name === null) return;
    try {
      await busy(event.currentTarget, () => invoke('profile_use', { name }));
      await reload(name);
      renderPicker();
      $('profile-message').textContent = t('ui.settings.profiles.now_using', { name });
      $('profile-message').classList.remove('bad');
      flash($('profile-message'), 'message', 5000);
    } catch (e) {
      $('profile-message').textContent = e.message;
      $('profile-message').classList.add('bad');
      show('profile-message', true);
    }
  }

  function askRemove() {
    const name = state.selected;
    if (name === null) return;
    $('remove-confirm-text').textContent = t('ui.settings.profiles.remove_confirm', { name });
    show('profile-message', false);
    show('remove-confirm', true);
    $('remove-confirm-no').focus();
  }

  async function remove(event) {
    const name = state.selected;
    if (name === null) return;
    try {
      await busy([event.currentTarget, $('remove-confirm-no')], () => invoke('profile_remove', { name }));
      show('remove-confirm', false);
      state.selected = null;
      await reload();
      renderPicker();
      fillForm();
      $('profile-message').textContent = t('ui.settings.profiles.removed', { name });
      $('profile-message').classList.remove('bad');
      flash($('profile-message'), 'message', 5000);
    } catch (e) {
      show('remove-confirm', false);
      $('profile-message').textContent = e.message;
      $('profile-message').classList.add('bad');
      show('profile-message', true);
    }
  }

  async function setLanguage() {
    const select = $('language');
    const language = select.value;
    show('general-error', false);
    try {
      await busy(select, () => invoke('language_set', { language }));
      state.settings.language = language;
      await App.loadStrings();
      applyStrings();
      renderAll();
      try {
        const win = window.__TAURI__ && window.__TAURI__.window;
        if (win && win.getCurrentWindow) await win.getCurrentWindow().setTitle(t('ui.settings.window_title'));
      } catch (_) {
        // Not allowed or not available: the title updates the next time the window opens.
      }
    } catch (e) {
      select.value = state.settings.language || 'auto';
      $('general-error').textContent = e.message;
      show('general-error', true);
    }
  }

  async function setAutostart() {
    const box = $('autostart');
    const enabled = box.checked;
    show('general-error', false);
    try {
      await busy(box, () => invoke('autostart_set', { enabled }));
      state.settings.autostart = enabled;
    } catch (e) {
      box.checked = !enabled;
      $('general-error').textContent = e.message;
      show('general-error', true);
    }
  }

  async function copyHomeLink() {
    const input = $('home-link');
    const text = input.value.trim() || input.placeholder;
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (_) {
      const had = input.value;
      input.value = text;
      input.select();
      try {
        copied = document.execCommand('copy');
      } catch (__) {
        copied = false;
      }
      input.value = had;
    }
    if (copied) {
      const button = $('copy-home-link');
      button.textContent = t('ui.common.copied');
      setTimeout(() => {
        button.textContent = t('ui.common.copy');
      }, 1800);
    }
  }

  function wire() {
    on('profile-select', 'change', selectProfile);
    on('add-profile', 'click', startNew);
    on('use-profile', 'click', useProfile);
    on('remove-profile', 'click', askRemove);
    on('remove-confirm-yes', 'click', remove);
    on('remove-confirm-no', 'click', () => {
      show('remove-confirm', false);
      $('remove-profile').focus();
    });
    on('check-server', 'click', () => checkServer());
    on('origin', 'keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        checkServer();
      }
    });
    on('origin', 'input', () => {
      updateHomePlaceholder();
      renderAuthenticator();
      if (state.check && !sameOrigin(state.check.origin, originInput())) {
        state.check = null;
        renderCheck();
      }
    });
    on('mobile-path', 'input', updateHomePlaceholder);
    on('method', 'change', renderMethodHint);
    on('copy-home-link', 'click', copyHomeLink);
    on('profile-form', 'submit', save);
    on('language', 'change', setLanguage);
    on('autostart', 'change', setAutostart);
  }

  App.boot(async () => {
    wire();
    try {
      await reload();
    } catch (e) {
      $('load-error').textContent = e.message;
      show('load-error', true);
    }
    renderAll();
    fillForm();
  });
})();
