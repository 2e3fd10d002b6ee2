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
    const pageDocument = document;
    // A constructed style sheet where the browser has them: a page's CSP that forbids inline styles (the
    // admin's does) does not apply to it. Otherwise a <style> in each shadow root.
    let sheet;
    try {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    } catch (error) {
      sheet = 0;
    }
    const drawn = []; // [host, box, edge of a floating banner or 0, whether a pushing banner] of each message
    // Floating banners at the top start below what shows of a pushing banner (in the page's flow, so it
    // scrolls away): they would cover it otherwise. Placed again on scroll while one is drawn.
    const placeBanners = () => {
      const offsets = { top: 0, bottom: 0 };
      drawn.forEach(([, box, , push]) => {
        if (push) offsets.top = Math.max(offsets.top, box.getBoundingClientRect().bottom);
      });
      drawn.forEach(([, box, edge]) => {
        if (edge) {
          box.style[edge] = offsets[edge] + 'px';
          offsets[edge] += box.offsetHeight;
        }
      });
    };
    const remove = (entry) => {
      entry[0].remove();
      drawn.splice(drawn.indexOf(entry), 1);
      placeBanners();
    };
    addEventListener('resize', guard(placeBanners));
    addEventListener('scroll', guard(() => drawn.some((entry) => entry[3]) && placeBanners()), { passive: true });
    const SHOWN_KEY = 'trailmark-shown-' + app;
    const shownOnThisPage = []; // storage may be full or forbidden
    const shownIds = () => {
      try {
        return shownOnThisPage.concat(JSON.parse(localStorage.getItem(SHOWN_KEY)) || []);
      } catch (error) {
        return shownOnThisPage;
      }
    };
    const isHttpUrl = (value) => typeof value == 'string' && /^https?:\/\//i.test(value);

    const report = (message, outcome) => {
      if (!app) return;
      const url = base + '/messenger/web/messages/' + message.id + '/' + outcome;
      // Named body: fetch's option is written shorthand.
      const body = JSON.stringify({ app_id: app, session: session() });
      let beaconQueued;
      try {
        beaconQueued = navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
      } catch (error) {
        // No beacon here: fetch below.
      }
      if (!beaconQueued) fetch(url, { method: 'POST', body, keepalive: true }).catch(() => 0);
    };

    const addElement = (parent, tag, className, text) => {
      const element = pageDocument.createElement(tag);
      if (className) element.className = className;
      if (text != null) element.textContent = text;
      parent.appendChild(element);
      return element;
    };

    // The server-sanitised html of a POST /messages chat, rebuilt node by node through the allow-list: text
    // as text, p a b i br as new elements (a link keeps only an http(s) href), other elements' text only,
    // script and style dropped. DOMParser's document is inert: nothing in it runs or loads.
    const appendSanitised = (target, html) => {
      const copyAllowed = (source, destination) => source.childNodes.forEach((node) => {
        const tag = node.nodeName;
        if (node.nodeType == 3) {
          destination.append(node.data);
        } else if (/^(P|A|B|I|BR)$/.test(tag)) {
          const element = addElement(destination, tag);
          const href = node.getAttribute('href');
          if (tag == 'A' && isHttpUrl(href)) {
            element.href = href;
            element.rel = 'noopener noreferrer nofollow';
            element.target = '_blank';
          }
          copyAllowed(node, element);
        } else if (node.nodeType == 1 && !/^(SCRIPT|STYLE)$/.test(tag)) {
          copyAllowed(node, destination);
        }
      });
      copyAllowed(new DOMParser().parseFromString(html, 'text/html').body, target);
    };

    const show = (message) => {
      const kind = message.kind;
      const banner = message.banner || {};
      const closable = kind != 'banner' || banner.dismissible !== false;
      if (!/^(banner|post|chat)$/.test(kind) || shownIds().indexOf(message.id) > -1) return;
      shownOnThisPage.push(message.id);
      try {
        localStorage.setItem(SHOWN_KEY, JSON.stringify(shownIds().slice(0, 100)));
      } catch (error) {
        // Remembered for this page only.
      }
      const host = pageDocument.createElement('trailmark-message');
      host.setAttribute('data-trailmark-message', message.key);
      const root = host.attachShadow({ mode: 'open' });
      if (sheet) root.adoptedStyleSheets = [sheet];
      else addElement(root, 'style', 0, CSS);
      const edge = banner.position == 'bottom' ? 'bottom' : 'top';
      const box = addElement(root, 'div', 'm ' + kind +
        (kind == 'banner' ? ' ' + edge + (banner.style == 'push' ? ' push' : '')
          : kind == 'chat' && left() ? ' left' : ''));
      const focusBefore = pageDocument.activeElement;
      const pushes = kind == 'banner' && banner.style == 'push' && edge == 'top';
      const entry = [host, box, kind == 'banner' && banner.style != 'push' && edge, pushes];
      const close = (outcome) => {
        remove(entry);
        report(message, outcome);
        if (kind == 'post' && focusBefore && focusBefore.focus) focusBefore.focus();
      };
      box.setAttribute('role', kind == 'post' ? 'dialog' : 'region');
      box.setAttribute('aria-label',
        kind == 'post' ? message.title : kind == 'chat' ? 'Message from ' + message.from : 'Announcement');
      if (kind != 'post') box.setAttribute('aria-live', 'polite');
      box.onkeydown = guard((keydown) => {
        if (keydown.key == 'Escape' && closable) close('dismissed');
      });
      if (kind == 'chat') addElement(box, 'b', 'f', message.from);
      if (kind == 'post') {
        if (isHttpUrl(message.image_url)) {
          const image = addElement(box, 'img');
          image.alt = '';
          image.src = message.image_url;
        }
        addElement(box, 'h2', 0, message.title);
      }
      // The html's own paragraphs go in a div (a p inside a p is not HTML).
      const isRichChat = kind == 'chat' && typeof message.html == 'string';
      const textBox = addElement(box, isRichChat ? 'div' : 'p');
      if (isRichChat) appendSanitised(textBox, message.html);
      else textBox.textContent = kind == 'post' ? message.body : message.text;
      const button = message.button;
      if (kind == 'chat') {
        addElement(box, 'button', 'go', 'Reply').onclick = guard(() => {
          close('clicked');
          open();
        });
      } else if (button && isHttpUrl(button.url)) {
        const link = addElement(box, 'a', 'go', button.label);
        link.href = button.url;
        link.onclick = guard(() => report(message, 'clicked'));
      }
      if (closable) {
        const dismissButton = addElement(box, 'button', 'x', '\u00d7');
        dismissButton.setAttribute('aria-label', 'Dismiss');
        dismissButton.onclick = guard(() => close('dismissed'));
      }
      const container = into || pageDocument.body || pageDocument.documentElement;
      // A pushing banner at the top takes its place in the flow, before the page.
      if (pushes) container.prepend(host);
      else container.appendChild(host);
      drawn.push(entry);
      placeBanners();
      report(message, 'shown');
      if (kind == 'post') (root.querySelector('.x') || box).focus();
    };

    // An answer without messages renders undefined: nothing drawn, nothing removed.
    return (list) => (list === false ? drawn.slice().forEach(remove) : (list || []).forEach(guard(show)));
  };

  if (window.Intercom) Intercom('_messages', install);
})();
