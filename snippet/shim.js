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
  const call = (fn, ...a) => {
    try {
      fn(...a);
    } catch (e) {
      warn(e);
    }
  };
  // A JSON snapshot: later changes by the page do not leak in.
  const copy = (o) => (o && typeof o == 'object' ? JSON.parse(json(o)) : {});
  // Settings that only style or place the messenger: never sent as person attributes (protocol.md, ping).
  const MESSENGER_KEYS = /^(app_id|api_base|alignment|z_index|hide_(default_launcher|notifications)|custom_launcher_selector|(horizontal|vertical)_padding|(action|background|link)_color|theme_mode|session_duration|installation_type|last_request_at)$/;
  const IDENTITY_KEYS = /^(user_id|email|user_hash|intercom_user_jwt)$/;
  const hasIdentity = (s) => Object.keys(s).some((k) => IDENTITY_KEYS.test(k));

  let base = '';
  let appId = '';

  // Cookies (protocol.md): intercom-id-{app} holds the device token, intercom-session-{app} the session
  // token. The shim never builds a token; it keeps what the server returns.
  const cookieName = (kind) => 'intercom-' + kind + '-' + appId;
  // Tokens are URL-safe base64 and dots (itsdangerous): no cookie encoding needed.
  const cookie = (kind) => {
    const n = cookieName(kind) + '=';
    const c = d.cookie.split('; ').find((x) => !x.indexOf(n));
    return c ? c.slice(n.length) : null;
  };
  const setCookie = (kind, v, days) => {
    d.cookie = cookieName(kind) + '=' + v + ';path=/;max-age=' + days * 86400 +
      ';SameSite=Lax' + (location.protocol == 'https:' ? ';Secure' : '');
  };

  // Events the server has not confirmed, oldest first, as sent: {id, event_name, created_at, metadata?}.
  // Persisted in localStorage so that a reload resends them. No token is stored with them: they go out
  // with the session of the moment, and shutdown leaves nothing identifying behind.
  let Q = [];
  const save = () => {
    try {
      localStorage.setItem('trailmark-q-' + appId, json(Q));
    } catch (e) {
      // Storage full or forbidden: the queue lives in memory only.
    }
  };
  // At most 100 events wait; the oldest go first.
  const trim = () => Q.splice(0, Q.length - 100);
  // crypto.randomUUID needs a secure context; plain-http sites get a Math.random v4 uuid.
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : 'xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx'.replace(/x/g, () => (Math.random() * 16 | 0).toString(16)));

  // Boolean flags start undefined (false). epoch counts shutdowns: a ping answer from before one is stale.
  let booted, bootJSON, busy, needPing, anonymous, timer;
  let fails = 0;
  let authFails = 0;
  let settings = {};
  let epoch = 0;
  let updates = [];
  let readyFns = [];
  const hooks = {};
  const on = (kind) => (fn) => (hooks[kind] = hooks[kind] || []).push(fn);

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
    clearTimeout(timer);
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
    const gen = epoch;
    const anon = anonymous;
    const user = {};
    for (const k in settings) {
      if (!MESSENGER_KEYS.test(k) && !(anon && IDENTITY_KEYS.test(k))) user[k] = settings[k];
    }
    const [st, j, ra] = await post('ping', json({ app_id: appId, device: cookie('id'),
      session: cookie('session'), user, page: location.href, referrer: d.referrer }));
    // A shutdown happened meanwhile: this answer names someone we must forget.
    if (gen != epoch) return 1;
    if (st == 200) {
      fails = 0;
      if (j.device) setCookie('id', j.device, 270);
      if (j.session) setCookie('session', j.session, 7);
      (j.warnings || []).forEach((x) => warn(x));
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
    const s = cookie('session');
    if (!s || !Q.length) return;
    const batch = Q.slice(0, 50);
    const [st, j, ra] = await post('events', json({ app_id: appId, session: s, events: batch }));
    if (st == 401) {
      // invalid_identity, nothing stored: drop the session, ping for a fresh one, resend.
      setCookie('session', '', 0);
      needPing = true;
      return authFails++ ? retry(ra, authFails) : 1;
    }
    if (transient(st)) return retry(ra);
    Q = Q.filter((e) => batch.indexOf(e) < 0);
    save();
    if (st == 200) {
      fails = authFails = 0;
      // Validation talks back: say which event lost what, and why.
      (j.results || []).forEach((r) => {
        const dm = (r.dropped_metadata || []).map((x) => x.key + ' (' + x.reason + ')').join(', ');
        const why = r.status == 'dropped' ? 'dropped: ' + r.reason : dm && 'metadata dropped: ' + dm;
        if (why) warn('event "' + (batch.find((x) => x.id == r.id) || r).event_name + '" ' + why);
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
    const s = cookie('session');
    if (s && Q.length) {
      navigator.sendBeacon(base + '/messenger/web/events',
        new Blob([json({ app_id: appId, session: s, events: Q })], { type: 'text/plain' }));
    }
  };

  const api = {
    boot(s) {
      s = copy(s);
      // Loaders often queue a boot and also leave intercomSettings set: the same boot runs once.
      if (booted && json(s) == bootJSON) return;
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
      // Intercom's documented throttle, silent like Intercom's: 20 updates per 30 minutes, reset by a page load.
      const now = Date.now();
      updates = updates.filter((t) => now - t < 18e5);
      if (updates.length > 19) return;
      updates.push(now);
      needPing = true;
      soon();
    },
    shutdown() {
      if (booted) beacon();
      setCookie('id', '', 0);
      setCookie('session', '', 0);
      epoch++;
      settings = {};
      bootJSON = null;
      booted = Intercom.booted = needPing = false;
    },
    trackEvent(name, metadata) {
      if (typeof name != 'string' || !name.trim() || metadata != null && (typeof metadata != 'object' || Array.isArray(metadata))) {
        return warn('trackEvent takes a name and an optional metadata object, not', name, metadata);
      }
      const e = { id: uuid(), event_name: name, created_at: Math.floor(Date.now() / 1000) };
      if (metadata) e.metadata = copy(metadata);
      Q.push(e);
      trim();
      save();
      soon();
    },
    getVisitorId: () => (cookie('id') || '').split('.')[0] || null,
    whoami: () => ({ app_id: appId, visitor_id: api.getVisitorId(), user_id: settings.user_id || null,
      email: settings.email || null }),
    ready(fn) {
      if (typeof fn == 'function') booted ? call(fn) : readyFns.push(fn);
    },
    // Stored for the contact panel (a later issue), which fires them.
    onShow: on('show'),
    onHide: on('hide'),
    onUserEmailSupplied: on('email'),
    onActivatorClick: on('activator'),
    onUnreadCountChange(fn) {
      on('unread')(fn);
      call(fn, 0);
    },
  };
  // Accepted silently for now. The contact panel (a later issue) replaces show and showNewMessage here.
  ('reattach_activator show hide showMessages showNewMessage showSpace showArticle showNews showTicket ' +
    'showConversation startConversation startTour startSurvey startChecklist hideNotifications setAuthTokens')
    .split(' ').forEach((n) => { api[n] = () => {}; });

  function Intercom(command, ...args) {
    try {
      if ({}.hasOwnProperty.call(api, command)) return api[command](...args);
      warn('unknown command ignored:', String(command));
    } catch (e) {
      warn(String(command), e);
    }
  }

  try {
    // Loaded twice (two snippets, a second script tag): the first copy stays in charge.
    if (w.Intercom && 'booted' in w.Intercom) return;
    const settings0 = w.intercomSettings || {};
    // Where we came from: our own script URL up to /widget/ (loaders such as @intercom/messenger-js-sdk
    // overwrite intercomSettings.api_base with Intercom's host, so api_base is only the last resort).
    const m = [d.currentScript, d.querySelector('script[src*="/widget/"]')]
      .map((s) => /^(.*?)\/widget\/([^/?#]*)/.exec(s && s.src)).find(Boolean) || ['', settings0.api_base || ''];
    base = m[1].replace(/\/+$/, '');
    appId = '' + (settings0.app_id || m[2] || '');
    try {
      Q = [].concat(JSON.parse(localStorage.getItem('trailmark-q-' + appId)) || []);
      trim();
    } catch (e) {
      // Unreadable storage counts as empty.
    }
    // The loader's stub holds early calls as Arguments objects in .q (with or without a .c).
    const queued = Array.from((w.Intercom || {}).q || []);
    Intercom.booted = false;
    w.Intercom = Intercom;
    // pagehide only: unload and beforeunload break the back/forward cache.
    w.addEventListener('pagehide', () => {
      try {
        if (booted) beacon();
      } catch (e) {
        // Never in the way of the page going away.
      }
    });
    if (settings0.app_id) Intercom('boot', settings0);
    queued.forEach((a) => Intercom(...a));
  } catch (e) {
    warn('failed to start:', e);
  }
})();
