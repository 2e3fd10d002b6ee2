// Trailmark contact panel: the launcher button and the small form through which a visitor leaves an email
// and a message and becomes a lead (lifecycle issue; docs/protocol.md, conversations). shim.js loads it
// when first needed, from {base}/widget/{app_id}/panel.js (served as dist/panel.min.js, built like the
// shim), and it hands the shim its ui(open, text) through Intercom('_panel', install).
//
// Isolation: everything lives in a shadow root. all:initial on the host (important, so that page rules
// on the host lose too) cuts inherited fonts and colours; the page's selectors do not reach in.
// Accessibility: real <label>s and <button>s; the launcher says aria-expanded / aria-controls; the panel is
// role=dialog with a name; focus moves into it on open and back to the launcher (or to what had the focus,
// when there is no launcher) on close; Escape closes; a server error sits under its field, which gets
// aria-invalid and the focus.
//
// House rules as in shim.js: ES2017 (no ?. or ??), nothing throws into the host page (the DOM handlers
// go through the shim's guard), no console.error.
(() => {
  const HTML = '<style>:host{all:initial!important}' +
    '*{font:15px/1.4 system-ui,sans-serif;color:#1d2433;box-sizing:border-box}[hidden]{display:none!important}' +
    '#l,#p{position:fixed;bottom:20px;right:20px;z-index:2147483000}.left>*{left:20px;right:auto}' +
    '#l{width:56px;height:56px;border:0;border-radius:50%;background:#1f6feb;cursor:pointer;' +
    'box-shadow:0 2px 10px #0003}' +
    '#p{bottom:88px;width:320px;max-width:calc(100vw - 40px);padding:20px;background:#fff;border-radius:12px;' +
    'box-shadow:0 8px 40px #0003}h2{font-size:18px;font-weight:600;margin:0}label{display:block;margin-top:12px}' +
    'input,textarea{display:block;width:100%;margin-top:4px;padding:8px;border:1px solid #8792a8;' +
    'border-radius:6px}textarea{height:96px;resize:vertical}small{display:block;color:#b3261e}' +
    '#s{margin-top:12px;padding:9px 18px;border:0;border-radius:6px;background:#1f6feb;color:#fff;cursor:pointer}' +
    '#x{position:absolute;top:8px;right:12px;border:0;background:none;font-size:22px;cursor:pointer}' +
    '#b{position:absolute;top:-4px;right:-4px;min-width:20px;padding:2px 6px;border-radius:10px;background:#b3261e;' +
    'color:#fff;font-size:12px;font-weight:700}#m{list-style:none;margin:12px 0 0;padding:0;max-height:40vh;' +
    'overflow:auto}#m li{margin:6px 0;padding:8px 10px;border-radius:10px;background:#eef1f6;white-space:pre-wrap;' +
    'overflow-wrap:anywhere}' +
    '#m .team{background:#e3ecff;margin-left:24px}#m b{display:block;font-size:12px;color:#4a5263}</style>' +
    '<div id=w><button id=l aria-label="Contact us" aria-controls=p aria-expanded=false>' +
    '<svg width=28 viewBox="0 0 8 8" fill=#fff><path d="M1 1h6v4H3L1 7z"/></svg><span id=b hidden></span></button>' +
    '<div id=p role=dialog aria-label="Contact us" hidden><button id=x aria-label=Close>\u00d7</button>' +
    '<h2>Contact us</h2><ol id=m aria-label=Conversation hidden></ol><form id=f>' +
    '<label id=el>Your email<input name=email type=email required autocomplete=email aria-describedby=e0></label>' +
    '<small id=e0></small><label>Message<textarea name=message required aria-describedby=e1></textarea>' +
    '</label><small id=e1></small><button id=s>Send</button><small role=alert></small></form>' +
    '<p id=t tabindex=-1 hidden>Thanks! We got your message. Our reply will show here.</p></div></div>';

  // booted(), settings(): the shim's state now; fire(kind): its callbacks; guard(fn): fn, made unable to
  // throw; send(email, message, done(status, json)): first contact, through the shim's sender.
  const install = ({ booted, settings, unread, fire, guard, send, thread }) => {
    const d = document;
    // host: the element in the page; $: by id in its shadow root; back: what had the focus on open.
    let host, $, launcher, form, thanks, back;

    const build = () => {
      host = d.createElement('trailmark-messenger');
      const root = host.attachShadow({ mode: 'open' });
      root.innerHTML = HTML;
      $ = (id) => root.getElementById(id);
      launcher = $('l');
      form = $('f');
      thanks = $('t');
      launcher.onclick = guard(() => {
        fire('activator');
        ui('flip');
      });
      $('x').onclick = guard(() => ui(false));
      $('w').onkeydown = guard((e) => e.key == 'Escape' && ui(false));
      form.onsubmit = guard(submit);
      (d.body || d.documentElement).appendChild(host);
    };

    // The server names the first bad field (400, error.list): its message goes under that field, which
    // is marked invalid and focused. Other errors go under the button. No argument: clear them all.
    const showError = (x) => {
      const i = x ? ['email', 'message'].indexOf(x.field) : 3;
      form.querySelectorAll('small').forEach((slot, k) => {
        slot.textContent = k == (i < 0 ? 2 : i) ? x.message : '';
      });
      [form.email, form.message].forEach((field, k) => {
        field.setAttribute('aria-invalid', k == i);
        if (k == i) field.focus();
      });
    };

    const submit = (e) => {
      e.preventDefault();
      const button = $('s');
      showError();
      button.disabled = true;
      send(form.email.value, form.message.value, (st, j) => {
        button.disabled = false;
        if (st == 200) {
          // The shim now holds the lead's tokens: later events land on the lead.
          // A first message: thanks, then the thread; later ones: the thread shows them, the form stays.
          const first = (j.conversation || {}).new;
          form.message.value = '';
          form.hidden = first;
          thanks.hidden = !first;
          (first ? thanks : form.message).focus();
          fire('email');
          thread(show);
        } else {
          showError(st && st < 500 && (j.errors || [])[0] || { message: 'Not sent. Please try again.' });
        }
      });
    };

    // The latest conversation, oldest message first; text only (textContent), never markup. A contact
    // known by email writes without giving it again.
    const show = (st, j) => {
      const c = st == 200 && (j.conversations || [])[0];
      const list = $('m');
      list.textContent = '';
      (c ? c.parts : []).forEach((x) => {
        const li = d.createElement('li');
        const who = d.createElement('b');
        li.className = x.from;
        who.textContent = x.from == 'team' ? x.name || 'Team' : 'You';
        li.append(who, x.body);
        list.appendChild(li);
      });
      list.hidden = !c;
      if (c) list.scrollTop = 1e6;
      $('el').hidden = !!j.email_known;
      form.email.required = !j.email_known;
    };

    // open: true shows, false hides, 'flip' flips, undefined only follows boot, update and shutdown.
    // text: showNewMessage's prefill, which also brings back the form after a sent message.
    const ui = (open, text) => {
      const on = booted();
      const s = settings();
      if (!host) {
        if (!on) return;
        build();
      }
      const panel = $('p');
      const wasOpen = !panel.hidden;
      if (open == 'flip') open = !wasOpen;
      if (!on) open = false;
      launcher.hidden = !!s.hide_default_launcher;
      const n = unread();
      $('b').textContent = n;
      $('b').hidden = !n;
      launcher.setAttribute('aria-label', n ? 'Contact us: ' + n + ' unread' : 'Contact us');
      $('w').className = s.alignment == 'left' ? 'left' : '';
      if (typeof text == 'string') {
        form.message.value = text;
        form.hidden = false;
        thanks.hidden = true;
      }
      if (!form.email.value) form.email.value = s.email || '';
      if (open === true) {
        if (!wasOpen) back = d.activeElement;
        panel.hidden = false;
        launcher.setAttribute('aria-expanded', true);
        if (!wasOpen) thread(show);
        (form.hidden ? thanks : form.email.value ? form.message : form.email).focus();
        if (!wasOpen) fire('show');
      } else if (open === false && wasOpen) {
        panel.hidden = true;
        launcher.setAttribute('aria-expanded', false);
        (launcher.hidden && back || launcher).focus();
        fire('hide');
      }
      // Shutdown: the next visitor gets a fresh panel, without what this one typed.
      if (!on) {
        host.remove();
        host = 0;
      }
    };
    return ui;
  };

  if (window.Intercom) Intercom('_panel', install);
})();
