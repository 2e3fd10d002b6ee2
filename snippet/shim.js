// Trailmark shim, served at {base}/widget/{app_id}. It replaces the loader's queueing stub with the real
// window.Intercom, boots from window.intercomSettings, replays the queued calls, sends pings and events,
// and loads the contact panel (panel.js: launcher, show/showNewMessage/hide) through which a visitor
// becomes a lead.
// Wire protocol: docs/protocol.md. JS API (the Intercom calls it answers) and loaders: docs/api.md.
//
// This readable file is the source of truth. The server serves dist/shim.min.js, built from it by
// `npm --prefix snippet run build` (terser, ES2017); tests/test_snippet.py fails when the dist is stale.
// ES2017 only (no ?. or ??): terser does not transpile. Budget: 3.5 KB gzipped as served
// (python bench/snippet_size.py).
//
// Page views (docs/protocol.md, "Page views"): the page at boot and each SPA navigation (history.pushState /
// replaceState, popstate), one per new URL, queued and sent like events (a client id each, so a resend counts
// once). Never before consent; not at all once a ping answer says the workspace switched them off.
//
// Consent (docs/privacy.md): ok says whether this page may set cookies, write storage and send. The
// server writes the workspace's consent settings into CONSENT below when it serves this file, so they
// are known before anything happens; without consent_required, ok starts true.
//
// House rule: nothing here throws into the host page, logs console.error or leaves a rejected promise.
// The entry points (the Intercom function, the timer, pagehide, DOM handlers, start-up) catch;
// post() never rejects.
(() => {
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
  const IDENTITY_KEYS = /^(user_id|email|user_hash|intercom_user_jwt)$/;
  const hasIdentity = (s) => Object.keys(s).some((k) => IDENTITY_KEYS.test(k));

  let base = '';
  let appId = '';
  // ok: consent given (or not needed); gpc: the browser's Global Privacy Control / Do Not Track, when honoured.
  let ok, gpc;

  // Cookies (protocol.md): intercom-id-{app} holds the device token, intercom-session-{app} the session
  // token. The shim never builds a token; it keeps what the server returns.
  const cookieName = (kind) => 'intercom-' + kind + '-' + appId;
  // Tokens are URL-safe base64 and dots (itsdangerous): no cookie encoding needed.
  const cookie = (kind) => {
    const n = cookieName(kind) + '=';
    const c = d.cookie.split('; ').find((x) => !x.indexOf(n));
    return c ? c.slice(n.length) : null;
  };
  // Without consent no cookie is set; deleting one (days 0: shutdown, refusal) is always allowed.
  const setCookie = (kind, v, days) => {
    if (ok || !days) {
      d.cookie = cookieName(kind) + '=' + v + ';path=/;max-age=' + days * 86400 +
        ';SameSite=Lax' + (location.protocol == 'https:' ? ';Secure' : '');
    }
  };

  // Events the server has not confirmed, oldest first, as sent: {id, event_name, created_at, metadata?}.
  // Persisted in localStorage so that a reload resends them. No token is stored with them: they go out
  // with the session of the moment, and shutdown leaves nothing identifying behind.
  // Without consent the queue lives in memory only.
  let Q = [];
  const qKey = () => 'trailmark-q-' + appId;
  const save = () => {
    try {
      if (ok) localStorage.setItem(qKey(), json(Q));
    } catch (e) {
      // Storage full or forbidden: the queue lives in memory only.
    }
  };
  // At most 100 events wait; the oldest go first.
  const trim = () => Q.splice(0, Q.length - 100);
  // 128 random bits (getRandomValues, unlike randomUUID, works on plain-http sites too).
  const uuid = () => crypto.getRandomValues(new Uint32Array(4)).join('-');
  const enqueue = (e) => {
    e.id = uuid();
    e.created_at = Math.floor(Date.now() / 1000);
    Q.push(e);
    trim();
    save();
    soon();
  };
  // pv: page views wanted (until a ping answer says otherwise); seen: the URL last recorded, which is also
  // the next SPA page view's referrer.
  let pv = 1;
  let seen;
  const view = () => {
    const url = location.href;
    if (booted && ok && pv && url != seen) {
      enqueue({ type: 'page_view', url, title: d.title, referrer: seen || d.referrer });
      seen = url;
    }
  };

  // Boolean flags start undefined (false). epoch counts shutdowns: a ping answer from before one is stale.
  // convo is the contact panel's pending first contact: [email, message, callback(status, json)].
  let booted, bootJSON, busy, needPing, anonymous, timer, convo;
  let fails = 0;
  // Team replies not read yet (ping answers carry it; reading the thread clears it): the launcher's badge.
  let unread = 0;
  let authFails = 0;
  let settings = {};
  let epoch = 0;
  let updates = [];
  let readyFns = [];
  const hooks = {};
  const on = (kind) => (fn) => (hooks[kind] = hooks[kind] || []).push(fn);
  const fire = (kind, ...a) => (hooks[kind] || []).forEach((fn) => call(fn, ...a));
  // DOM handlers run outside the Intercom function: an exception there would reach the page's onerror.
  const guard = (fn) => (...a) => call(fn, ...a);

  // One POST, JSON as text/plain: a CORS simple request, no preflight. Resolves to [status, json,
  // Retry-After]; status 0 is a network error. Never rejects. keepalive caps bodies at 64 KB.
  const post = async (path, body) => {
    try {
      // Without consent nothing leaves the page (the pump does not even start; this covers every caller).
      if (!ok) throw 0;
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
  // The tokens of a ping or conversations answer go into the first-party cookies (protocol.md).
  const keep = (j) => {
    if (j.device) setCookie('id', j.device, 270);
    if (j.session) setCookie('session', j.session, 7);
  };

  // The single sender: one request at a time; a pending ping first (a first contact must name the
  // visitor the cookies hold), then the contact panel's message, then events. Each step returns true to
  // go on, or nothing when there is nothing to do or a retry is scheduled.
  async function pump() {
    timer = 0;
    if (busy) return;
    busy = true;
    try {
      // Nothing is sent without consent: the work waits in memory for Intercom('consent', 'granted').
      while (booted && ok && await (needPing ? ping() : convo ? talk() : send()));
    } catch (e) {
      warn(e);
    }
    busy = false;
    // The ping failed (server down, backing off) or a shutdown came first: the panel says so at once
    // rather than waiting for a retry; the visitor can send again.
    if (convo) call(convo[2], 0, {});
    convo = 0;
  }

  async function ping() {
    needPing = false;
    const gen = epoch;
    const anon = anonymous;
    const user = {};
    for (const k in settings) {
      // Messenger-only keys (alignment, colours ...) go too: the server ignores them (protocol.md, ping).
      if (!(anon && IDENTITY_KEYS.test(k))) user[k] = settings[k];
    }
    const [st, j, ra] = await post('ping', json({ app_id: appId, device: cookie('id'),
      session: cookie('session'), user, page: location.href, referrer: d.referrer }));
    // A shutdown happened meanwhile: this answer names someone we must forget.
    if (gen != epoch) return 1;
    if (st == 200) {
      fails = 0;
      keep(j);
      pv = j.page_views !== false;
      (j.warnings || []).forEach((x) => warn(x));
      setUnread(j.unread);
      render(j.messages);
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
    const gen = epoch;
    const [st, j, ra] = await post('events', json({ app_id: appId, session: s, events: batch, page: location.href }));
    if (st == 401) {
      // invalid_identity, nothing stored: drop the session, ping for a fresh one, resend.
      setCookie('session', '', 0);
      needPing = true;
      return authFails++ ? retry(ra, authFails) : 1;
    }
    if (transient(st)) return retry(ra);
    // What the server settled, to forget: every event it answered (accepted, duplicate, dropped, refused).
    let gone = batch;
    if (st == 200) {
      fails = authFails = 0;
      // Validation talks back: say which event lost what, and why.
      const ids = (j.results || []).map((r) => {
        const dm = (r.dropped_metadata || []).map((x) => x.key + ' (' + x.reason + ')').join(', ');
        const why = r.reason ? r.status + ': ' + r.reason : dm && 'metadata dropped: ' + dm;
        const e = batch.find((x) => x.id == r.id) || r;
        // A page view dropped because the workspace switched them off is no mistake of the page's.
        if (why && !e.url) warn('event "' + e.event_name + '" ' + why);
        return r.id;
      });
      if (j.results) gone = batch.filter((e) => ids.indexOf(e.id) > -1);
      // Not for a contact a shutdown forgot meanwhile.
      if (gen == epoch) render(j.messages);
    } else {
      // 400/403/404/413/422: nothing stored, resending the same cannot help. An error naming one event
      // (field events[i]...) drops that one and the others go again; otherwise the whole batch goes.
      const m = /^events\[(\d+)\]/.exec(((j.errors || [])[0] || {}).field);
      if (m && batch[m[1]]) gone = [batch[m[1]]];
      warn('events refused ' + refusal(st, j) + ':', gone.map((e) => e.event_name).join(', '));
    }
    Q = Q.filter((e) => gone.indexOf(e) < 0);
    save();
    return 1;
  }

  // First contact from the contact panel (protocol.md, conversations): the answer's session names the
  // lead the visitor became, so later events land on it. Not retried: the panel shows the outcome.
  async function talk() {
    const [email, message, done] = convo;
    const gen = epoch;
    convo = 0;
    const [st, j] = await post('conversations', json({ app_id: appId, device: cookie('id'),
      session: cookie('session'), email, message }));
    if (gen == epoch) {
      if (st == 200) keep(j);
      call(done, st, j);
    }
    return 1;
  }

  // Send everything now, without waiting for an answer (pagehide, shutdown). The events stay queued:
  // a beacon's outcome is unknowable, the next page resends them, the server counts each client id once.
  const beacon = () => {
    const s = cookie('session');
    if (ok && s && Q.length) {
      navigator.sendBeacon(base + '/messenger/web/events',
        new Blob([json({ app_id: appId, session: s, events: Q, page: location.href })], { type: 'text/plain' }));
    }
  };

  // The launcher and the contact panel (first contact, lifecycle issue) are panel.js, loaded when first
  // needed: at boot unless hide_default_launcher is set, else when the page opens the panel. Pages that
  // only track never download it, and this file stays within its budget (snippet/README.md).
  // ui(open, text): open true shows the panel, false hides it, 'flip' flips it, undefined only follows
  // boot, update and shutdown (launcher side and visibility); text is showNewMessage's prefill.
  // Until panel.js hands over its own ui, this one loads it (once; again after a failed load).
  const load = (name, failed) => {
    const s = d.createElement('script');
    s.src = base + '/widget/' + appId + '/' + name + '.js';
    s.onerror = () => {
      failed();
      warn(name + ' not loaded');
    };
    d.head.appendChild(s);
  };
  let wanted;
  let ui = (open, text) => {
    if (booted && ok && (open || open === undefined && !settings.hide_default_launcher)) {
      if (!wanted) load('panel', () => (wanted = 0));
      if (open || !wanted) wanted = [open, text];
    } else if (open === false && wanted) {
      // hide() before panel.js arrived: it must not open when it does.
      wanted = [false];
    }
  };
  // Event-triggered messages (docs/messages.md) are drawn by messages.js, loaded when an answer first carries
  // some; it hands over its renderer through Intercom('_messages', install). Until then they wait here.
  let waiting;
  let render = (list) => {
    if (list && list.length) {
      if (!waiting) load('messages', () => (waiting = 0));
      waiting = (waiting || []).concat(list);
    }
  };
  const setUnread = (n) => {
    n |= 0;
    if (n != unread) {
      unread = n;
      fire('unread', n);
      ui();
    }
  };
  const activate = () => {
    fire('activator');
    ui('flip');
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
      view();
      ui();
      readyFns.splice(0).forEach((fn) => call(fn));
    },
    update(s) {
      if (!booted) return;
      s = copy(s);
      settings = Object.assign({}, settings, s);
      ui();
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
      seen = 0;
      settings = {};
      bootJSON = null;
      booted = Intercom.booted = needPing = false;
      // Intercom's shutdown closes the Messenger: panel.js removes it, the next visitor gets a fresh one;
      // the messages shown, or waiting for messages.js, go too (render(false) clears them).
      ui();
      if (waiting) waiting = [];
      render(false);
    },
    trackEvent(name, metadata) {
      if (typeof name != 'string' || !name.trim() || metadata != null && (typeof metadata != 'object' || Array.isArray(metadata))) {
        return warn('trackEvent(name, metadata?) got', name, metadata);
      }
      const e = { event_name: name };
      if (metadata) e.metadata = copy(metadata);
      enqueue(e);
    },
    // The page's consent manager calls this on every page load: 'granted' sends what waited (ping,
    // events) and lets cookies and storage be written; anything else drops the waiting events and
    // removes the cookies and the stored queue. GPC/DNT, when honoured, keep it refused.
    consent(v) {
      ok = v == 'granted' && !gpc;
      if (ok) {
        save();
        ui();
        soon();
        // The page being viewed now, with consent; nothing of it was recorded before.
        view();
      } else {
        Q = [];
        clearTimeout(timer);
        timer = 0;
        setCookie('id', '', 0);
        setCookie('session', '', 0);
        try {
          localStorage.removeItem(qKey());
        } catch (e) {
          // Forbidden storage holds nothing of ours.
        }
      }
    },
    getVisitorId: () => (cookie('id') || '').split('.')[0] || null,
    whoami: () => ({ app_id: appId, visitor_id: api.getVisitorId(), user_id: settings.user_id || null,
      email: settings.email || null }),
    ready(fn) {
      if (typeof fn == 'function') booted ? call(fn) : readyFns.push(fn);
    },
    show: () => ui(true),
    showMessages: () => ui(true),
    showNewMessage: (text) => ui(true, typeof text == 'string' ? text : ''),
    hide: () => ui(false),
    // panel.js hands over its ui here, and reaches the shim through what it is given: booted and
    // settings, fire (onShow, onHide, onUserEmailSupplied, onActivatorClick), guard (for its DOM handlers)
    // and send (first contact goes through the pump: after any pending ping, never two requests at once).
    _panel(install) {
      ui = install({ booted: () => booted, settings: () => settings, unread: () => unread, fire, guard,
        send(email, message, done) {
          convo = [email, message, done];
          // Now, even while backing off: someone is waiting for the answer.
          clearTimeout(timer);
          timer = setTimeout(pump, 0);
        },
        // The contact's conversations with the team's replies (read-only: no need to queue behind the pump).
        async thread(done) {
          const [st, j] = await post('thread', json({ app_id: appId, session: cookie('session') }));
          if (st == 200) setUnread(0);
          call(done, st, j);
        } });
      ui(...wanted || []);
    },
    // messages.js reports shown/clicked/dismissed itself (sendBeacon), with what it is given here; left():
    // the launcher's side (alignment), which a chat sits beside.
    _messages(install) {
      render = install({ base, app: appId, session: () => cookie('session'), guard, open: api.showNewMessage,
        left: () => settings.alignment == 'left' });
      render(waiting);
    },
    onShow: on('show'),
    onHide: on('hide'),
    onUserEmailSupplied: on('email'),
    onActivatorClick: on('activator'),
    onUnreadCountChange(fn) {
      on('unread')(fn);
      call(fn, unread);
    },
  };
  function Intercom(command, ...args) {
    try {
      if ({}.hasOwnProperty.call(api, command)) return api[command](...args);
      // Accepted silently: Messenger features Trailmark does not have (showSpace, startTour,
      // hideNotifications, setAuthTokens, reattach_activator ...). Anything else is a mistake: warn.
      if (!/^(show|start|hide|setAuth|reattach_)/.test(command)) warn('unknown command ignored:', String(command));
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
    // Filled in by the server for the workspace (server/snippet.py); this default is what a copy of the
    // file served elsewhere does.
    const CONSENT = JSON.parse('{"consent_required":false,"honour_gpc":false}');
    const n = navigator;
    gpc = CONSENT.honour_gpc && (n.globalPrivacyControl || n.doNotTrack == '1');
    ok = !CONSENT.consent_required && !gpc;
    try {
      Q = [].concat(JSON.parse(localStorage.getItem(qKey())) || []);
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
    // SPA navigations: after the page's own call (which may throw, as it would without us), and a tick
    // later, once the page's router has set the new title.
    const nav = () => setTimeout(guard(view));
    ['pushState', 'replaceState'].forEach((k) => {
      const f = history[k];
      history[k] = function (...a) {
        const r = f.apply(this, a);
        nav();
        return r;
      };
    });
    w.addEventListener('popstate', nav);
    // custom_launcher_selector: any element matching it, now or added later, opens the panel.
    d.addEventListener('click', guard((e) => {
      const sel = settings.custom_launcher_selector;
      if (booted && sel && e.target.closest && e.target.closest(sel)) activate();
    }));
    if (settings0.app_id) Intercom('boot', settings0);
    queued.forEach((a) => Intercom(...a));
  } catch (e) {
    warn('failed to start:', e);
  }
})();
