// Trailmark messages: draws the event-triggered messages (docs/messages.md) the server's answers carry: a
// banner (top or bottom, floating or pushing the page down), a post (a card: image, title, body, button) or a
// chat (a short message from a named teammate beside the launcher; Reply opens the contact panel). shim.js
// loads it when an answer first carries messages, from {base}/widget/{app_id}/messages.js (served as
// dist/messages.min.js, built like the shim), and it hands the shim its renderer through
// Intercom('_messages', install).
//
// Each delivery is shown once: its id is kept in localStorage per app (so another tab, or a retried event
// answered with the same delivery, does not show it again), and shown / clicked / dismissed are reported with
// navigator.sendBeacon (fetch keepalive when a beacon is refused); the server counts each once.
//
// Isolation: each message is a <trailmark-message data-trailmark-message="<key>"> whose shadow root holds
// it; all:initial on the host keeps page styles out, and its own styles stay inside. Text is set with
// textContent only; the one exception, a chat from Intercom's POST /messages, carries server-sanitised html
// that is rebuilt here through the same allow-list (p a b i br; links only http/https), never innerHTML.
// Accessibility: a post is a dialog that takes the focus (given back when it closes), banners and chats are
// polite live regions; buttons are <button>s and links <a>s; Escape dismisses the message holding the focus;
// motion only when the visitor has not asked for less (prefers-reduced-motion).
//
// House rules as in shim.js: ES2017 (no ?. or ??), nothing throws into the host page (everything runs
// through the shim's guard), no console.error.
(() => {
  const CSS = ':host{all:initial!important;display:block!important}' +
    '*{box-sizing:border-box;font:15px/1.4 system-ui,sans-serif;color:#1d2433}' +
    '.m{position:fixed;z-index:2147482999;background:#fff;box-shadow:0 4px 24px #0003}' +
    '.banner{left:0;right:0;display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;justify-content:center;' +
    'padding:12px 52px 12px 16px;background:#1f4fb8;box-shadow:none}.banner *{color:#fff}' +
    '.top{top:0}.bottom{bottom:0}.push{position:relative}' +
    '.post{top:50%;left:50%;transform:translate(-50%,-50%);width:420px;max-width:calc(100vw - 32px);' +
    'max-height:90vh;overflow:auto;border-radius:12px;padding:24px}' +
    '.chat{right:20px;bottom:88px;width:300px;max-width:calc(100vw - 40px);border-radius:12px;padding:14px 40px 14px 16px}' +
    '.chat.left{left:20px;right:auto}' +
    'h2{font-size:19px;font-weight:600;margin:0 0 8px}p{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}' +
    'img{display:block;max-width:100%;margin:0 0 12px;border-radius:8px}b.f{display:block;font-size:12px;color:#4a5263}' +
    '.go{display:inline-block;padding:7px 14px;border:0;border-radius:6px;background:#1f4fb8;color:#fff;' +
    'text-decoration:none;cursor:pointer}.post .go,.chat .go{margin-top:14px}.banner .go{background:#fff;color:#1f4fb8}' +
    '.x{position:absolute;top:4px;right:6px;padding:4px 10px;border:0;background:none;font-size:22px;cursor:pointer}' +
    ':focus-visible{outline:2px solid #1f4fb8;outline-offset:2px}.banner :focus-visible{outline-color:#fff}' +
    '@media (prefers-reduced-motion:no-preference){.m{animation:i .25s ease-out}}@keyframes i{from{opacity:0}}';

  // base, app: where and for whom to report; session(): the session token now; guard(fn): fn, unable to
  // throw; open(): the contact panel with a new message (Intercom('showNewMessage')); left(): whether the
  // launcher sits on the left (alignment), as a chat sits beside it. The renderer it returns draws a list
  // of deliveries, and with false (Intercom('shutdown')) removes every message it drew.
  // The admin's live preview (server/static/message_preview.js) installs it too, with no app (nothing is
  // reported) and into: the element to draw in instead of the page's body.
  //
  // Floating banners at the same edge stack (the second below the first at the top, above it at the
  // bottom) rather than one waiting for the other's dismissal: each delivery is counted sent when the
  // answer carries it, and a waiting one would never show if the visitor left first, or at all behind a
  // banner that cannot be dismissed. Each is placed again when one closes and when the window resizes.
  const install = ({ base, app, session, guard, open, left, into }) => {
    const d = document;
    // A constructed style sheet where the browser has them: a page's CSP that forbids inline styles (the
    // admin's does) does not apply to it. Otherwise a <style> in each shadow root.
    let sheet;
    try {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    } catch (e) {
      sheet = 0;
    }
    const on = []; // [host, box, edge of a floating banner or 0] of each message on the page
    const lay = () => {
      const at = { top: 0, bottom: 0 };
      on.forEach(([, box, edge]) => {
        if (edge) {
          box.style[edge] = at[edge] + 'px';
          at[edge] += box.offsetHeight;
        }
      });
    };
    const drop = (o) => {
      o[0].remove();
      on.splice(on.indexOf(o), 1);
      lay();
    };
    addEventListener('resize', guard(lay));
    const KEY = 'trailmark-shown-' + app;
    const here = []; // shown on this page (storage may be full or forbidden)
    const shown = () => {
      try {
        return here.concat(JSON.parse(localStorage.getItem(KEY)) || []);
      } catch (e) {
        return here;
      }
    };
    const http = (u) => typeof u == 'string' && /^https?:\/\//i.test(u);

    const report = (m, what) => {
      if (!app) return;
      const url = base + '/messenger/web/messages/' + m.id + '/' + what;
      const body = JSON.stringify({ app_id: app, session: session() });
      let queued;
      try {
        queued = navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
      } catch (e) {
        // No beacon here: fetch below.
      }
      if (!queued) fetch(url, { method: 'POST', body, keepalive: true }).catch(() => 0);
    };

    const el = (parent, tag, cls, text) => {
      const e = d.createElement(tag);
      if (cls) e.className = cls;
      if (text != null) e.textContent = text;
      parent.appendChild(e);
      return e;
    };

    // The server-sanitised html of a POST /messages chat, rebuilt node by node through the allow-list: text
    // as text, p a b i br as new elements (a link keeps only an http(s) href), other elements' text only,
    // script and style dropped. DOMParser's document is inert: nothing in it runs or loads.
    const rich = (to, html) => {
      const walk = (from, into) => from.childNodes.forEach((n) => {
        const tag = n.nodeName;
        if (n.nodeType == 3) {
          into.append(n.data);
        } else if (/^(P|A|B|I|BR)$/.test(tag)) {
          const e = el(into, tag);
          const href = n.getAttribute('href');
          if (tag == 'A' && http(href)) {
            e.href = href;
            e.rel = 'noopener noreferrer nofollow';
            e.target = '_blank';
          }
          walk(n, e);
        } else if (n.nodeType == 1 && !/^(SCRIPT|STYLE)$/.test(tag)) {
          walk(n, into);
        }
      });
      walk(new DOMParser().parseFromString(html, 'text/html').body, to);
    };

    const show = (m) => {
      const kind = m.kind;
      const o = m.banner || {};
      const closable = kind != 'banner' || o.dismissible !== false;
      if (!/^(banner|post|chat)$/.test(kind) || shown().indexOf(m.id) > -1) return;
      here.push(m.id);
      try {
        localStorage.setItem(KEY, JSON.stringify(shown().slice(0, 100)));
      } catch (e) {
        // Remembered for this page only.
      }
      const host = d.createElement('trailmark-message');
      host.setAttribute('data-trailmark-message', m.key);
      const root = host.attachShadow({ mode: 'open' });
      if (sheet) root.adoptedStyleSheets = [sheet];
      else el(root, 'style', 0, CSS);
      const edge = o.position == 'bottom' ? 'bottom' : 'top';
      const box = el(root, 'div', 'm ' + kind + (kind == 'banner' ? ' ' + edge + (o.style == 'push' ? ' push' : '') :
        kind == 'chat' && left() ? ' left' : ''));
      const back = d.activeElement;
      const item = [host, box, kind == 'banner' && o.style != 'push' && edge];
      const close = (what) => {
        drop(item);
        report(m, what);
        if (kind == 'post' && back && back.focus) back.focus();
      };
      box.setAttribute('role', kind == 'post' ? 'dialog' : 'region');
      box.setAttribute('aria-label', kind == 'post' ? m.title : kind == 'chat' ? 'Message from ' + m.from : 'Announcement');
      if (kind != 'post') box.setAttribute('aria-live', 'polite');
      box.onkeydown = guard((e) => {
        if (e.key == 'Escape' && closable) close('dismissed');
      });
      if (kind == 'chat') el(box, 'b', 'f', m.from);
      if (kind == 'post') {
        if (http(m.image_url)) {
          const img = el(box, 'img');
          img.alt = '';
          img.src = m.image_url;
        }
        el(box, 'h2', 0, m.title);
      }
      // The html's own paragraphs go in a div (a p inside a p is not HTML).
      const html = kind == 'chat' && typeof m.html == 'string';
      const p = el(box, html ? 'div' : 'p');
      if (html) rich(p, m.html);
      else p.textContent = kind == 'post' ? m.body : m.text;
      const b = m.button;
      if (kind == 'chat') {
        el(box, 'button', 'go', 'Reply').onclick = guard(() => {
          close('clicked');
          open();
        });
      } else if (b && http(b.url)) {
        const a = el(box, 'a', 'go', b.label);
        a.href = b.url;
        a.onclick = guard(() => report(m, 'clicked'));
      }
      if (closable) {
        const x = el(box, 'button', 'x', '\u00d7');
        x.setAttribute('aria-label', 'Dismiss');
        x.onclick = guard(() => close('dismissed'));
      }
      const page = into || d.body || d.documentElement;
      // A pushing banner at the top takes its place in the flow, before the page.
      if (o.style == 'push' && o.position != 'bottom') page.prepend(host);
      else page.appendChild(host);
      on.push(item);
      lay();
      report(m, 'shown');
      if (kind == 'post') (root.querySelector('.x') || box).focus();
    };

    // An answer without messages renders undefined: nothing drawn, nothing removed.
    return (list) => (list === false ? on.slice().forEach(drop) : (list || []).forEach(guard(show)));
  };

  if (window.Intercom) Intercom('_messages', install);
})();
