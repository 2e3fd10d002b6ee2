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
// Consent (docs/privacy.md): consentGiven says whether this page may set cookies, write storage and send.
// The server writes the workspace's consent settings into CONSENT below when it serves this file, so they
// are known before anything happens; without consent_required, consentGiven starts true.
//
// House rule: nothing here throws into the host page, logs console.error or leaves a rejected promise.
// The entry points (the Intercom function, the timer, pagehide, DOM handlers, start-up) catch;
// post() never rejects.
(() => {
  // Local aliases: the minifier shortens these names, never the globals themselves.
  const pageWindow = window;
  const pageDocument = document;
  const warn = (...details) => console.warn('[Trailmark]', ...details);
  const callSafely = (fn, ...args) => {
    try {
      fn(...args);
    } catch (error) {
      warn(error);
    }
  };
  // A JSON snapshot: later changes by the page do not leak in.
  const snapshot = (value) => (value && typeof value == 'object' ? JSON.parse(toJson(value)) : {});
  const IDENTITY_KEYS = /^(user_id|email|user_hash|intercom_user_jwt)$/;
  const hasIdentity = (fields) => Object.keys(fields).some((key) => IDENTITY_KEYS.test(key));

  let base = '';
  let appId = '';
  // consentGiven: consent given (or not needed); optedOutByBrowser: the browser's Global Privacy Control /
  // Do Not Track, when honoured.
  let consentGiven, optedOutByBrowser;

  // Cookies (protocol.md): intercom-id-{app} holds the device token, intercom-session-{app} the session
  // token. The shim never builds a token; it keeps what the server returns.
  const cookieName = (kind) => 'intercom-' + kind + '-' + appId;
  // Tokens are URL-safe base64 and dots (itsdangerous): no cookie encoding needed.
  const readCookie = (kind) => {
    const prefix = cookieName(kind) + '=';
    const entry = pageDocument.cookie.split('; ').find((candidate) => !candidate.indexOf(prefix));
    return entry ? entry.slice(prefix.length) : null;
  };
  // Without consent no cookie is set; deleting one (days 0: shutdown, refusal) is always allowed.
  const setCookie = (kind, value, days) => {
    if (consentGiven || !days) {
      pageDocument.cookie = cookieName(kind) + '=' + value + ';path=/;max-age=' + days * 86400 +
        ';SameSite=Lax' + (location.protocol == 'https:' ? ';Secure' : '');
    }
  };

  // Events the server has not confirmed, oldest first, as sent: {id, event_name, created_at, metadata?}.
  // Persisted in localStorage so that a reload resends them. No token is stored with them: they go out
  // with the session of the moment, and shutdown leaves nothing identifying behind.
  // Without consent the queue lives in memory only.
  let queue = [];
  const queueStorageKey = () => 'trailmark-q-' + appId;
  const saveQueue = () => {
    try {
      if (consentGiven) localStorage.setItem(queueStorageKey(), toJson(queue));
    } catch (error) {
      // Storage full or forbidden: the queue lives in memory only.
    }
  };
  // At most 100 events wait; the oldest go first.
  const trimQueue = () => queue.splice(0, queue.length - 100);
  // 128 random bits (getRandomValues, unlike randomUUID, works on plain-http sites too).
  const randomId = () => crypto.getRandomValues(new Uint32Array(4)).join('-');
  const enqueue = (event) => {
    event.id = randomId();
    event.created_at = Math.floor(Date.now() / 1000);
    queue.push(event);
    trimQueue();
    saveQueue();
    pumpSoon();
  };
  // pageViewsWanted: until a ping answer says otherwise; lastPageUrl: the URL last recorded, which is also
  // the next SPA page view's referrer.
  let pageViewsWanted = 1;
  let lastPageUrl;
  const recordPageView = () => {
    // Named url: the event's property is written shorthand.
    const url = location.href;
    if (booted && consentGiven && pageViewsWanted && url != lastPageUrl) {
      enqueue({ type: 'page_view', url, title: pageDocument.title, referrer: lastPageUrl || pageDocument.referrer });
      lastPageUrl = url;
    }
  };

  // Boolean flags start undefined (false). shutdowns counts shutdowns: an answer from before one is stale.
  // pendingContact is the contact panel's first contact, not sent yet: [email, message, callback(status, json)].
  let booted, bootJson, pumping, needPing, anonymous, pumpTimer, pendingContact;
  let failures = 0;
  // Team replies not read yet (ping answers carry it; reading the thread clears it): the launcher's badge.
  let unread = 0;
  let authFailures = 0;
  let settings = {};
  let shutdowns = 0;
  let updateTimes = [];
  let readyCallbacks = [];
  const listeners = {};
  const subscribe = (kind) => (fn) => (listeners[kind] = listeners[kind] || []).push(fn);
  const fire = (kind, ...args) => (listeners[kind] || []).forEach((fn) => callSafely(fn, ...args));
  // DOM handlers run outside the Intercom function: an exception there would reach the page's onerror.
  const guard = (fn) => (...args) => callSafely(fn, ...args);

  // One POST, JSON as text/plain: a CORS simple request, no preflight. Resolves to [status, json,
  // Retry-After]; status 0 is a network error. Never rejects. keepalive caps bodies at 64 KB.
  const post = async (path, body) => {
    try {
      // Without consent nothing leaves the page (the pump does not even start; this covers every caller).
      if (!consentGiven) throw 0;
      const response = await fetch(base + '/messenger/web/' + path,
        { method: 'POST', body, keepalive: body.length < 6e4 });
      return [response.status, await response.json().catch(() => ({})) || {}, response.headers.get('Retry-After')];
    } catch (error) {
      return [0, {}];
    }
  };
  const toJson = JSON.stringify;
  const isTransient = (status) => !status || status == 408 || status == 429 || status > 499;
  const refusalText = (status, answer) => '(' + status + ') ' + (((answer.errors || [])[0] || {}).message || '');
  // 1 s, 2 s, 4 s ... capped at 60 s, or the server's Retry-After (seconds). Ends the pump loop.
  const retryLater = (retryAfter, attempt = ++failures) => {
    clearTimeout(pumpTimer);
    pumpTimer = setTimeout(pump, (retryAfter > 0 ? retryAfter : Math.min(60, 2 ** (attempt - 1))) * 1000);
  };
  // Calls made in the same tick share one request; while backing off, new work waits for the retry.
  const pumpSoon = () => pumpTimer || (pumpTimer = setTimeout(pump, 0));
  // The tokens of a ping or conversations answer go into the first-party cookies (protocol.md).
  const keepTokens = (answer) => {
    if (answer.device) setCookie('id', answer.device, 270);
    if (answer.session) setCookie('session', answer.session, 7);
  };

  // The single sender: one request at a time; a pending ping first (a first contact must name the
  // visitor the cookies hold), then the contact panel's message, then events. Each step returns true to
  // go on, or nothing when there is nothing to do or a retry is scheduled.
  async function pump() {
    pumpTimer = 0;
    if (pumping) return;
    pumping = true;
    try {
      // Nothing is sent without consent: the work waits in memory for Intercom('consent', 'granted').
      while (booted && consentGiven && await (needPing ? ping() : pendingContact ? sendFirstContact() : sendEvents()));
    } catch (error) {
      warn(error);
    }
    pumping = false;
    // The ping failed (server down, backing off) or a shutdown came first: the panel says so at once
    // rather than waiting for a retry; the visitor can send again.
    if (pendingContact) callSafely(pendingContact[2], 0, {});
    pendingContact = 0;
  }

  async function ping() {
    needPing = false;
    const shutdownsBefore = shutdowns;
    const asAnonymous = anonymous;
    // Named user: the request's property is written shorthand.
    const user = {};
    for (const key in settings) {
      // Messenger-only keys (alignment, colours ...) go too: the server ignores them (protocol.md, ping).
      if (!(asAnonymous && IDENTITY_KEYS.test(key))) user[key] = settings[key];
    }
    const [status, answer, retryAfter] = await post('ping', toJson({ app_id: appId, device: readCookie('id'),
      session: readCookie('session'), user, page: location.href, referrer: pageDocument.referrer }));
    // A shutdown happened meanwhile: this answer names someone we must forget.
    if (shutdownsBefore != shutdowns) return 1;
    if (status == 200) {
      failures = 0;
      keepTokens(answer);
      pageViewsWanted = answer.page_views !== false;
      (answer.warnings || []).forEach((warning) => warn(warning));
      setUnread(answer.unread);
      renderMessages(answer.messages);
    } else if (isTransient(status)) {
      needPing = true;
      return retryLater(retryAfter);
    } else {
      // e.g. 401 when identity verification is enforced: warn, carry on as an anonymous visitor.
      warn('ping refused ' + refusalText(status, answer));
      if (!asAnonymous && hasIdentity(settings)) anonymous = needPing = true;
    }
    return 1;
  }

  async function sendEvents() {
    const session = readCookie('session');
    if (!session || !queue.length) return;
    const batch = queue.slice(0, 50);
    const shutdownsBefore = shutdowns;
    const [status, answer, retryAfter] = await post('events',
      toJson({ app_id: appId, session, events: batch, page: location.href }));
    if (status == 401) {
      // invalid_identity, nothing stored: drop the session, ping for a fresh one, resend.
      setCookie('session', '', 0);
      needPing = true;
      return authFailures++ ? retryLater(retryAfter, authFailures) : 1;
    }
    if (isTransient(status)) return retryLater(retryAfter);
    // What the server settled, to forget: every event it answered (accepted, duplicate, dropped, refused).
    let settled = batch;
    if (status == 200) {
      failures = authFailures = 0;
      // Validation talks back: say which event lost what, and why.
      const answeredIds = (answer.results || []).map((result) => {
        const droppedKeys = (result.dropped_metadata || []).map((dropped) => dropped.key + ' (' + dropped.reason + ')')
          .join(', ');
        const problem = result.reason ? result.status + ': ' + result.reason
          : droppedKeys && 'metadata dropped: ' + droppedKeys;
        const event = batch.find((sent) => sent.id == result.id) || result;
        // A page view dropped because the workspace switched them off is no mistake of the page's.
        if (problem && !event.url) warn('event "' + event.event_name + '" ' + problem);
        return result.id;
      });
      if (answer.results) settled = batch.filter((event) => answeredIds.indexOf(event.id) > -1);
      // Not for a contact a shutdown forgot meanwhile.
      if (shutdownsBefore == shutdowns) renderMessages(answer.messages);
    } else {
      // 400/403/404/413/422: nothing stored, resending the same cannot help. An error naming one event
      // (field events[i]...) drops that one and the others go again; otherwise the whole batch goes.
      const namedEvent = /^events\[(\d+)\]/.exec(((answer.errors || [])[0] || {}).field);
      if (namedEvent && batch[namedEvent[1]]) settled = [batch[namedEvent[1]]];
      warn('events refused ' + refusalText(status, answer) + ':', settled.map((event) => event.event_name).join(', '));
    }
    queue = queue.filter((event) => settled.indexOf(event) < 0);
    saveQueue();
    return 1;
  }

  // First contact from the contact panel (protocol.md, conversations): the answer's session names the
  // lead the visitor became, so later events land on it. Not retried: the panel shows the outcome.
  async function sendFirstContact() {
    // Named email and message: the request's properties are written shorthand.
    const [email, message, done] = pendingContact;
    const shutdownsBefore = shutdowns;
    pendingContact = 0;
    const [status, answer] = await post('conversations', toJson({ app_id: appId, device: readCookie('id'),
      session: readCookie('session'), email, message }));
    if (shutdownsBefore == shutdowns) {
      if (status == 200) keepTokens(answer);
      callSafely(done, status, answer);
    }
    return 1;
  }

  // Send everything now, without waiting for an answer (pagehide, shutdown). The events stay queued:
  // a beacon's outcome is unknowable, the next page resends them, the server counts each client id once.
  const flushByBeacon = () => {
    const session = readCookie('session');
    if (consentGiven && session && queue.length) {
      navigator.sendBeacon(base + '/messenger/web/events',
        new Blob([toJson({ app_id: appId, session, events: queue, page: location.href })], { type: 'text/plain' }));
    }
  };

  // The launcher and the contact panel (first contact, lifecycle issue) are panel.js, loaded when first
  // needed: at boot unless hide_default_launcher is set, else when the page opens the panel. Pages that
  // only track never download it, and this file stays within its budget (snippet/README.md).
  // ui(open, text): open true shows the panel, false hides it, 'flip' flips it, undefined only follows
  // boot, update and shutdown (launcher side and visibility); text is showNewMessage's prefill.
  // Until panel.js hands over its own ui, this one loads it (once; again after a failed load) and keeps
  // in panelRequest the [open, text] it is to start with.
  const loadScript = (name, onFailure) => {
    const script = pageDocument.createElement('script');
    script.src = base + '/widget/' + appId + '/' + name + '.js';
    script.onerror = () => {
      onFailure();
      warn(name + ' not loaded');
    };
    pageDocument.head.appendChild(script);
  };
  let panelRequest;
  let ui = (open, text) => {
    if (booted && consentGiven && (open || open === undefined && !settings.hide_default_launcher)) {
      if (!panelRequest) loadScript('panel', () => (panelRequest = 0));
      if (open || !panelRequest) panelRequest = [open, text];
    } else if (open === false && panelRequest) {
      // hide() before panel.js arrived: it must not open when it does.
      panelRequest = [false];
    }
  };
  // Event-triggered messages (docs/messages.md) are drawn by messages.js, loaded when an answer first carries
  // some; it hands over its renderer through Intercom('_messages', install). Until then they wait here.
  let waitingMessages;
  let renderMessages = (list) => {
    if (list && list.length) {
      if (!waitingMessages) loadScript('messages', () => (waitingMessages = 0));
      waitingMessages = (waitingMessages || []).concat(list);
    }
  };
  const setUnread = (count) => {
    count |= 0;
    if (count != unread) {
      unread = count;
      fire('unread', count);
      ui();
    }
  };
  const activatorClicked = () => {
    fire('activator');
    ui('flip');
  };

  const api = {
    boot(bootSettings) {
      bootSettings = snapshot(bootSettings);
      // Loaders often queue a boot and also leave intercomSettings set: the same boot runs once.
      if (booted && toJson(bootSettings) == bootJson) return;
      bootJson = toJson(bootSettings);
      settings = bootSettings;
      anonymous = false;
      booted = Intercom.booted = needPing = true;
      pumpSoon();
      recordPageView();
      ui();
      readyCallbacks.splice(0).forEach((callback) => callSafely(callback));
    },
    update(changes) {
      if (!booted) return;
      changes = snapshot(changes);
      settings = Object.assign({}, settings, changes);
      ui();
      if (hasIdentity(changes)) anonymous = false;
      // Intercom's documented throttle, silent like Intercom's: 20 updates per 30 minutes, reset by a page load.
      const now = Date.now();
      updateTimes = updateTimes.filter((time) => now - time < 18e5);
      if (updateTimes.length > 19) return;
      updateTimes.push(now);
      needPing = true;
      pumpSoon();
    },
    shutdown() {
      if (booted) flushByBeacon();
      setCookie('id', '', 0);
      setCookie('session', '', 0);
      shutdowns++;
      lastPageUrl = 0;
      settings = {};
      bootJson = null;
      booted = Intercom.booted = needPing = false;
      // Intercom's shutdown closes the Messenger: panel.js removes it, the next visitor gets a fresh one;
      // the messages shown, or waiting for messages.js, go too (renderMessages(false) clears them).
      ui();
      if (waitingMessages) waitingMessages = [];
      renderMessages(false);
    },
    trackEvent(name, metadata) {
      if (typeof name != 'string' || !name.trim() || metadata != null && (typeof metadata != 'object' || Array.isArray(metadata))) {
        return warn('trackEvent(name, metadata?) got', name, metadata);
      }
      const event = { event_name: name };
      if (metadata) event.metadata = snapshot(metadata);
      enqueue(event);
    },
    // The page's consent manager calls this on every page load: 'granted' sends what waited (ping,
    // events) and lets cookies and storage be written; anything else drops the waiting events and
    // removes the cookies and the stored queue. GPC/DNT, when honoured, keep it refused.
    consent(decision) {
      consentGiven = decision == 'granted' && !optedOutByBrowser;
      if (consentGiven) {
        saveQueue();
        ui();
        pumpSoon();
        // The page being viewed now, with consent; nothing of it was recorded before.
        recordPageView();
      } else {
        queue = [];
        clearTimeout(pumpTimer);
        pumpTimer = 0;
        setCookie('id', '', 0);
        setCookie('session', '', 0);
        try {
          localStorage.removeItem(queueStorageKey());
        } catch (error) {
          // Forbidden storage holds nothing of ours.
        }
      }
    },
    getVisitorId: () => (readCookie('id') || '').split('.')[0] || null,
    whoami: () => ({ app_id: appId, visitor_id: api.getVisitorId(), user_id: settings.user_id || null,
      email: settings.email || null }),
    ready(callback) {
      if (typeof callback == 'function') booted ? callSafely(callback) : readyCallbacks.push(callback);
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
          pendingContact = [email, message, done];
          // Now, even while backing off: someone is waiting for the answer.
          clearTimeout(pumpTimer);
          pumpTimer = setTimeout(pump, 0);
        },
        // The contact's conversations with the team's replies (read-only: no need to queue behind the pump).
        async thread(done) {
          const [status, answer] = await post('thread', toJson({ app_id: appId, session: readCookie('session') }));
          if (status == 200) setUnread(0);
          callSafely(done, status, answer);
        } });
      ui(...panelRequest || []);
    },
    // messages.js reports shown/clicked/dismissed itself (sendBeacon), with what it is given here; left():
    // the launcher's side (alignment), which a chat sits beside.
    _messages(install) {
      renderMessages = install({ base, app: appId, session: () => readCookie('session'), guard,
        open: api.showNewMessage, left: () => settings.alignment == 'left' });
      renderMessages(waitingMessages);
    },
    onShow: subscribe('show'),
    onHide: subscribe('hide'),
    onUserEmailSupplied: subscribe('email'),
    onActivatorClick: subscribe('activator'),
    onUnreadCountChange(fn) {
      subscribe('unread')(fn);
      callSafely(fn, unread);
    },
  };
  function Intercom(command, ...args) {
    try {
      if ({}.hasOwnProperty.call(api, command)) return api[command](...args);
      // Accepted silently: Messenger features Trailmark does not have (showSpace, startTour,
      // hideNotifications, setAuthTokens, reattach_activator ...). Anything else is a mistake: warn.
      if (!/^(show|start|hide|setAuth|reattach_)/.test(command)) warn('unknown command ignored:', String(command));
    } catch (error) {
      warn(String(command), error);
    }
  }

  try {
    // Loaded twice (two snippets, a second script tag): the first copy stays in charge.
    if (pageWindow.Intercom && 'booted' in pageWindow.Intercom) return;
    const pageSettings = pageWindow.intercomSettings || {};
    // Where we came from: our own script URL up to /widget/ (loaders such as @intercom/messenger-js-sdk
    // overwrite intercomSettings.api_base with Intercom's host, so api_base is only the last resort).
    // [whole match, base, app id].
    const scriptUrlParts = [pageDocument.currentScript, pageDocument.querySelector('script[src*="/widget/"]')]
      .map((script) => /^(.*?)\/widget\/([^/?#]*)/.exec(script && script.src)).find(Boolean) ||
      ['', pageSettings.api_base || ''];
    base = scriptUrlParts[1].replace(/\/+$/, '');
    appId = '' + (pageSettings.app_id || scriptUrlParts[2] || '');
    // Filled in by the server for the workspace (server/snippet.py); this default is what a copy of the
    // file served elsewhere does.
    const CONSENT = JSON.parse('{"consent_required":false,"honour_gpc":false}');
    const browser = navigator;
    optedOutByBrowser = CONSENT.honour_gpc && (browser.globalPrivacyControl || browser.doNotTrack == '1');
    consentGiven = !CONSENT.consent_required && !optedOutByBrowser;
    try {
      queue = [].concat(JSON.parse(localStorage.getItem(queueStorageKey())) || []);
      trimQueue();
    } catch (error) {
      // Unreadable storage counts as empty.
    }
    // The loader's stub holds early calls as Arguments objects in .q (with or without a .c).
    const queuedCalls = Array.from((pageWindow.Intercom || {}).q || []);
    Intercom.booted = false;
    pageWindow.Intercom = Intercom;
    // pagehide only: unload and beforeunload break the back/forward cache.
    pageWindow.addEventListener('pagehide', () => {
      try {
        if (booted) flushByBeacon();
      } catch (error) {
        // Never in the way of the page going away.
      }
    });
    // SPA navigations: after the page's own call (which may throw, as it would without us), and a tick
    // later, once the page's router has set the new title.
    const afterNavigation = () => setTimeout(guard(recordPageView));
    ['pushState', 'replaceState'].forEach((method) => {
      const original = history[method];
      history[method] = function (...args) {
        const result = original.apply(this, args);
        afterNavigation();
        return result;
      };
    });
    pageWindow.addEventListener('popstate', afterNavigation);
    // custom_launcher_selector: any element matching it, now or added later, opens the panel.
    pageDocument.addEventListener('click', guard((click) => {
      const selector = settings.custom_launcher_selector;
      if (booted && selector && click.target.closest && click.target.closest(selector)) activatorClicked();
    }));
    if (pageSettings.app_id) Intercom('boot', pageSettings);
    queuedCalls.forEach((queuedCall) => Intercom(...queuedCall));
  } catch (error) {
    warn('failed to start:', error);
  }
})();
