// Trailmark shim, served at {base}/widget/{app_id}. It replaces the loader's queueing stub with the real
// window.Intercom, boots from window.intercomSettings, replays the queued calls, and sends pings and events.
// Wire protocol: docs/protocol.md. JS API and loaders: shared intercom-api.md sections 7-9.
//
// Served with full-line // comments, indentation and blank lines stripped (strip_for_serving in
// bench/snippet_size.py), so: only full-line // comments, no block comments, no comment after code,
// no template literal spanning lines. Budget: 3 KB gzipped as served (python bench/snippet_size.py).
//
// House rule: nothing here throws into the host page, logs console.error or leaves a rejected promise.
// The entry points (the Intercom function, the timer, pagehide, start-up) catch; post() never rejects.
(() => {
  'use strict';
  const w = window;
  const d = document;
  const warn = (...a) => console.warn('[Trailmark]', ...a);
  const warned = {};
  const warnOnce = (m) => warned[m] || warn(warned[m] = m);
  const call = (fn, ...a) => {
    try {
      fn(...a);
    } catch (e) {
      warn('callback failed:', e);
    }
  };
  // A JSON snapshot (later changes by the page do not leak in); a Date becomes Unix seconds (*_date, created_at).
  const copy = (o) => (o && typeof o == 'object' ? JSON.parse(JSON.stringify(o, function (k, v) {
    return this[k] instanceof Date ? Math.floor(this[k] / 1000) : v;
  })) : {});
  const words = (s) => s.split(' ');
  // Settings that only style or place the messenger: never sent as person attributes (protocol.md, ping).
  const MESSENGER_KEYS = words('app_id api_base alignment hide_default_launcher custom_launcher_selector ' +
    'horizontal_padding vertical_padding action_color background_color link_color z_index theme_mode ' +
    'messenger_style_id hide_notifications session_duration installation_type last_request_at auth_tokens');
  const IDENTITY_KEYS = words('user_id email user_hash intercom_user_jwt');
  const hasIdentity = (s) => IDENTITY_KEYS.some((k) => k in s);

  let settings0 = {};
  let base = '';
  let appId = '';
  // Where we came from: our own script URL up to /widget/ (loaders such as @intercom/messenger-js-sdk
  // overwrite intercomSettings.api_base with Intercom's host, so api_base is only the last resort).
  const locate = () => {
    settings0 = w.intercomSettings || {};
    const srcOf = (s) => (s && s.src && s.src.indexOf('/widget/') > -1 ? s.src : '');
    const src = srcOf(d.currentScript) || srcOf(d.querySelector('script[src*="/widget/"]'));
    const at = src.indexOf('/widget/');
    base = (src ? src.slice(0, at) : String(settings0.api_base || '')).replace(/\/+$/, '');
    appId = String(settings0.app_id || (src ? src.slice(at + 8).split(/[/?#]/)[0] : ''));
  };

  // Cookies (protocol.md): intercom-id-{app} holds the device token, intercom-session-{app} the session
  // token. The shim never builds a token; it keeps what the server returns.
  const cookieName = (kind) => 'intercom-' + kind + '-' + appId;
  const getCookie = (kind) => {
    try {
      const n = cookieName(kind) + '=';
      const c = d.cookie.split('; ').find((x) => !x.indexOf(n));
      return c ? decodeURIComponent(c.slice(n.length)) : null;
    } catch (e) {
      return null;
    }
  };
  const setCookie = (kind, v, days) => {
    d.cookie = cookieName(kind) + '=' + encodeURIComponent(v) + ';path=/;max-age=' + days * 86400 +
      ';SameSite=Lax' + (location.protocol == 'https:' ? ';Secure' : '');
  };

  // Events the server has not confirmed, oldest first, persisted in localStorage so a reload resends them.
  // Each is {id, event_name, created_at, metadata?, s}: s is the session token it was sent with, once sent.
  let Q = [];
  let loaded = false;
  const storeKey = () => 'trailmark-q-' + appId;
  const save = () => {
    try {
      if (loaded) Q.length ? localStorage.setItem(storeKey(), JSON.stringify(Q)) : localStorage.removeItem(storeKey());
    } catch (e) {
      // Storage full or forbidden: the queue lives in memory only.
    }
  };
  // At most 100 events wait; the oldest go first.
  const trim = () => Q.splice(0, Q.length - 100);
  const loadQueue = () => {
    if (loaded || !appId) return;
    loaded = true;
    try {
      const old = JSON.parse(localStorage.getItem(storeKey())) || [];
      Q = old.filter((e) => e.id && e.event_name && !Q.some((x) => x.id == e.id)).concat(Q);
    } catch (e) {
      // Unreadable storage counts as empty.
    }
    trim();
    save();
  };
  const wire = (e) => ({ id: e.id, event_name: e.event_name, created_at: e.created_at, metadata: e.metadata });
  // crypto.randomUUID needs a secure context; plain-http sites get the same from getRandomValues.
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID() : '10000000-1000-4000-8000-100000000000'
    .replace(/[018]/g, (c) => (c ^ crypto.getRandomValues(new Uint8Array(1))[0] & 15 >> c / 4).toString(16)));

  let booted = false;
  let bootJSON = null;
  let settings = {};
  let visitorId = null;
  let busy = false;
  let needPing = false;
  let anonymous = false;
  let timer = 0;
  let fails = 0;
  let authFails = 0;
  let generation = 0;
  let updates = [];
  let readyFns = [];
  const hooks = {};

  // One POST, JSON as text/plain: a CORS simple request, no preflight. Resolves to [status, json,
  // Retry-After]; status 0 is a network error. Never rejects. keepalive caps bodies at 64 KB.
  const post = async (path, body) => {
    try {
      const r = await fetch(base + '/messenger/web/' + path, { method: 'POST', body, keepalive: body.length < 6e4 });
      return [r.status, await r.json().catch(() => ({})) || {}, r.headers.get('Retry-After')];
    } catch (e) {
      return [0, {}];
    }
  };
  const json = JSON.stringify;
  const transient = (st) => !st || st == 408 || st == 429 || st > 499;
  const refusal = (st, j) => '(' + st + ') ' + (((j.errors || [])[0] || {}).message || '');
  // 1 s, 2 s, 4 s ... capped at 60 s, or the server's Retry-After (seconds). Ends the pump loop.
  const retry = (ra, n = ++fails) => {
    timer = setTimeout(pump, (ra > 0 ? ra : Math.min(60, 2 ** (n - 1))) * 1000);
  };
  // Calls made in the same tick share one request; while backing off, new work waits for the retry.
  const soon = () => timer || (timer = setTimeout(pump, 0));

  // The single sender: one request at a time, a pending ping before any event. Each step returns
  // true to go on, or nothing when there is nothing to do or a retry is scheduled.
  async function pump() {
    timer = 0;
    if (busy) return;
    busy = true;
    try {
      while (booted && await (needPing ? ping() : send()));
    } catch (e) {
      warn(e);
    }
    busy = false;
  }

  async function ping() {
    needPing = false;
    const gen = generation;
    const anon = anonymous;
    const user = {};
    for (const k in settings) {
      if (MESSENGER_KEYS.indexOf(k) < 0 && !(anon && IDENTITY_KEYS.indexOf(k) > -1)) user[k] = settings[k];
    }
    const [st, j, ra] = await post('ping', json({ app_id: appId, device: getCookie('id'),
      session: getCookie('session'), user, page: location.href, referrer: d.referrer || null }));
    // A shutdown happened meanwhile: this answer names someone we must forget.
    if (gen != generation) return 1;
    if (st == 200) {
      fails = 0;
      if (j.device) setCookie('id', j.device, 270);
      if (j.session) setCookie('session', j.session, 7);
      visitorId = j.visitor_id || visitorId;
      [].concat(j.warnings || []).forEach((x) => warn(x));
    } else if (transient(st)) {
      needPing = true;
      return retry(ra);
    } else {
      // e.g. 401 when identity verification is enforced: warn, carry on as an anonymous visitor.
      warn('ping refused ' + refusal(st, j));
      if (!anon && hasIdentity(settings)) anonymous = needPing = true;
    }
    return 1;
  }

  async function send() {
    const cur = getCookie('session');
    const s = Q.length && (Q[0].s || cur);
    if (!s) return;
    const batch = Q.filter((e) => (e.s || cur) == s).slice(0, 50);
    batch.forEach((e) => { e.s = s; });
    save();
    const [st, j, ra] = await post('events', json({ app_id: appId, session: s, events: batch.map(wire) }));
    if (st == 401) {
      // invalid_identity, nothing stored: drop that session, ping for a fresh one, resend.
      Q.forEach((e) => { if (e.s == s) e.s = null; });
      save();
      if (getCookie('session') == s) {
        setCookie('session', '', 0);
        needPing = true;
      }
      return authFails++ ? retry(ra, authFails) : 1;
    }
    if (transient(st)) return retry(ra);
    Q = Q.filter((e) => batch.indexOf(e) < 0);
    save();
    if (st == 200) {
      fails = authFails = 0;
      // Validation talks back: say which event lost what, and why.
      (j.results || []).forEach((r) => {
        const e = batch.find((x) => x.id == r.id) || r;
        const dm = r.dropped_metadata || [];
        if (r.status == 'dropped') warn('event "' + e.event_name + '" dropped:', r.reason);
        if (dm.length) warn('event "' + e.event_name + '" metadata dropped:', dm.map((x) => x.key + ' (' + x.reason + ')').join(', '));
      });
    } else {
      // 400/403/404/413/422: refused as a whole, nothing stored, resending cannot help.
      warn('events refused ' + refusal(st, j) + ':', batch.map((e) => e.event_name).join(', '));
    }
    return 1;
  }

  // Send everything now, without waiting for an answer (pagehide, shutdown). The events stay queued:
  // a beacon's outcome is unknowable, the next page resends them, the server counts each client id once.
  const beacon = () => {
    const cur = getCookie('session');
    const groups = {};
    Q.forEach((e) => {
      e.s = e.s || cur;
      if (e.s) (groups[e.s] = groups[e.s] || []).push(wire(e));
    });
    save();
    for (const s in groups) {
      navigator.sendBeacon(base + '/messenger/web/events',
        new Blob([json({ app_id: appId, session: s, events: groups[s] })], { type: 'text/plain' }));
    }
  };

  const commands = {
    boot(s) {
      s = copy(s);
      // Loaders often queue a boot and also leave intercomSettings set: the same boot runs once.
      if (booted && json(s) == bootJSON) return;
      appId = appId || String(s.app_id || '');
      loadQueue();
      bootJSON = json(s);
      settings = s;
      anonymous = false;
      booted = Intercom.booted = needPing = true;
      soon();
      readyFns.splice(0).forEach((fn) => call(fn));
    },
    update(s) {
      if (!booted) return;
      s = copy(s);
      settings = Object.assign({}, settings, s);
      if (hasIdentity(s)) anonymous = false;
      // Intercom's documented throttle: 20 updates per 30 minutes, reset by a page load.
      const now = Date.now();
      updates = updates.filter((t) => now - t < 18e5);
      if (updates.length > 19) return warnOnce('update throttled: at most 20 per 30 minutes');
      updates.push(now);
      needPing = true;
      soon();
    },
    shutdown() {
      if (booted) beacon();
      setCookie('id', '', 0);
      setCookie('session', '', 0);
      Q.forEach((e) => { e.s = null; });
      save();
      generation++;
      settings = {};
      bootJSON = visitorId = null;
      booted = Intercom.booted = needPing = false;
    },
    trackEvent(name, metadata) {
      if (typeof name != 'string' || !name.trim()) return warn('trackEvent needs an event name, got', name);
      const e = { id: uuid(), event_name: name, created_at: Math.floor(Date.now() / 1000) };
      if (metadata && typeof metadata == 'object' && !Array.isArray(metadata)) e.metadata = copy(metadata);
      else if (metadata != null) warn('metadata of "' + name + '" is not an object; sent without it');
      Q.push(e);
      trim();
      save();
      soon();
    },
    getVisitorId: () => (getCookie('id') || '').split('.')[0] || visitorId,
    whoami: () => ({ app_id: appId, visitor_id: commands.getVisitorId(), user_id: settings.user_id || null,
      email: settings.email || null }),
    ready(fn) {
      if (typeof fn == 'function') booted ? call(fn) : readyFns.push(fn);
    },
    onUnreadCountChange(fn) {
      commands.onShow(fn, 'unread');
      call(fn, 0);
    },
    // Stored for the contact panel (a later issue), which fires them.
    onShow(fn, kind = 'show') {
      if (typeof fn == 'function') (hooks[kind] = hooks[kind] || []).push(fn);
    },
    onHide: (fn) => commands.onShow(fn, 'hide'),
    onUserEmailSupplied: (fn) => commands.onShow(fn, 'email'),
    onActivatorClick: (fn) => commands.onShow(fn, 'activator'),
  };
  // Accepted silently for now. The contact panel (a later issue) replaces show and showNewMessage here.
  words('reattach_activator show hide showMessages showNewMessage showSpace showArticle showNews showTicket ' +
    'showConversation startConversation startTour startSurvey startChecklist hideNotifications setAuthTokens')
    .forEach((n) => { commands[n] = () => {}; });

  function Intercom(command, ...args) {
    try {
      if ({}.hasOwnProperty.call(commands, command)) return commands[command](...args);
      warnOnce('unknown command ' + String(command) + ' ignored');
    } catch (e) {
      warn('Intercom(' + String(command) + ') failed:', e);
    }
  }

  try {
    // Loaded twice (two snippets, a second script tag): the first copy stays in charge.
    if (w.Intercom && w.Intercom.trailmark) return;
    locate();
    // The loader's stub holds early calls as Arguments objects in .q (with or without a .c).
    const queued = Array.from((w.Intercom || {}).q || []);
    Intercom.booted = false;
    Intercom.trailmark = true;
    w.Intercom = Intercom;
    loadQueue();
    // pagehide only: unload and beforeunload break the back/forward cache.
    w.addEventListener('pagehide', () => {
      try {
        if (booted) beacon();
      } catch (e) {
        // Never in the way of the page going away.
      }
    });
    if (settings0.app_id) Intercom('boot', settings0);
    queued.forEach((a) => {
      try {
        Intercom(...a);
      } catch (e) {
        warn('bad queued call', e);
      }
    });
  } catch (e) {
    warn('failed to start:', e);
  }
})();
