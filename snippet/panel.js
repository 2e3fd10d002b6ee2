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
    const pageDocument = document;
    // host: the element in the page; byId: by id in its shadow root; focusBeforeOpen: what had the focus on open.
    let host, byId, launcher, form, thanks, focusBeforeOpen;

    const build = () => {
      host = pageDocument.createElement('trailmark-messenger');
      const root = host.attachShadow({ mode: 'open' });
      root.innerHTML = HTML;
      byId = (id) => root.getElementById(id);
      launcher = byId('l');
      form = byId('f');
      thanks = byId('t');
      launcher.onclick = guard(() => {
        fire('activator');
        ui('flip');
      });
      byId('x').onclick = guard(() => ui(false));
      byId('w').onkeydown = guard((keydown) => keydown.key == 'Escape' && ui(false));
      form.onsubmit = guard(submit);
      (pageDocument.body || pageDocument.documentElement).appendChild(host);
    };

    // The server names the first bad field (400, error.list): its message goes under that field, which
    // is marked invalid and focused. Other errors go under the button. No argument: clear them all.
    // fieldIndex: 0 email, 1 message, -1 neither (under the button), 3 no error.
    const showError = (error) => {
      const fieldIndex = error ? ['email', 'message'].indexOf(error.field) : 3;
      form.querySelectorAll('small').forEach((slot, slotIndex) => {
        slot.textContent = slotIndex == (fieldIndex < 0 ? 2 : fieldIndex) ? error.message : '';
      });
      [form.email, form.message].forEach((field, index) => {
        field.setAttribute('aria-invalid', index == fieldIndex);
        if (index == fieldIndex) field.focus();
      });
    };

    const submit = (submitEvent) => {
      submitEvent.preventDefault();
      const button = byId('s');
      showError();
      button.disabled = true;
      send(form.email.value, form.message.value, (status, answer) => {
        button.disabled = false;
        if (status == 200) {
          // The shim now holds the lead's tokens: later events land on the lead.
          // A first message: thanks, then the thread; later ones: the thread shows them, the form stays.
          const isFirstMessage = (answer.conversation || {}).new;
          form.message.value = '';
          form.hidden = isFirstMessage;
          thanks.hidden = !isFirstMessage;
          (isFirstMessage ? thanks : form.message).focus();
          fire('email');
          thread(showThread);
        } else {
          showError(status && status < 500 && (answer.errors || [])[0] || { message: 'Not sent. Please try again.' });
        }
      });
    };

    // The latest conversation, oldest message first; text only (textContent), never markup. A contact
    // known by email writes without giving it again.
    const showThread = (status, answer) => {
      const conversation = status == 200 && (answer.conversations || [])[0];
      const list = byId('m');
      list.textContent = '';
      (conversation ? conversation.parts : []).forEach((part) => {
        const item = pageDocument.createElement('li');
        const author = pageDocument.createElement('b');
        item.className = part.from;
        author.textContent = part.from == 'team' ? part.name || 'Team' : 'You';
        item.append(author, part.body);
        list.appendChild(item);
      });
      list.hidden = !conversation;
      if (conversation) list.scrollTop = 1e6;
      byId('el').hidden = !!answer.email_known;
      form.email.required = !answer.email_known;
    };

    // open: true shows, false hides, 'flip' flips, undefined only follows boot, update and shutdown.
    // text: showNewMessage's prefill, which also brings back the form after a sent message.
    const ui = (open, text) => {
      const isBooted = booted();
      const currentSettings = settings();
      if (!host) {
        if (!isBooted) return;
        build();
      }
      const panel = byId('p');
      const wasOpen = !panel.hidden;
      if (open == 'flip') open = !wasOpen;
      if (!isBooted) open = false;
      launcher.hidden = !!currentSettings.hide_default_launcher;
      const unreadCount = unread();
      byId('b').textContent = unreadCount;
      byId('b').hidden = !unreadCount;
      launcher.setAttribute('aria-label', unreadCount ? 'Contact us: ' + unreadCount + ' unread' : 'Contact us');
      byId('w').className = currentSettings.alignment == 'left' ? 'left' : '';
      if (typeof text == 'string') {
        form.message.value = text;
        form.hidden = false;
        thanks.hidden = true;
      }
      if (!form.email.value) form.email.value = currentSettings.email || '';
      if (open === true) {
        if (!wasOpen) focusBeforeOpen = pageDocument.activeElement;
        panel.hidden = false;
        launcher.setAttribute('aria-expanded', true);
        if (!wasOpen) thread(showThread);
        (form.hidden ? thanks : form.email.value ? form.message : form.email).focus();
        if (!wasOpen) fire('show');
      } else if (open === false && wasOpen) {
        panel.hidden = true;
        launcher.setAttribute('aria-expanded', false);
        (launcher.hidden && focusBeforeOpen || launcher).focus();
        fire('hide');
      }
      // Shutdown: the next visitor gets a fresh panel, without what this one typed.
      if (!isBooted) {
        host.remove();
        host = 0;
      }
    };
    return ui;
  };

  if (window.Intercom) Intercom('_panel', install);
})();
