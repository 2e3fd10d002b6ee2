// Trailmark admin: a message page's live preview. The document being edited is drawn by the Messenger's own
// renderer (snippet/messages.js, loaded after this file from /widget/{app_id}/messages.js, the very file the
// shim loads) inside a frame that stands for the visitor's page, again at each edit. Placeholders such as
// {{event.type}} are shown as written: they are filled per contact and event when the message is sent.
// Nothing is reported (no app is given): a preview is never counted as shown, clicked or dismissed.
(function () {
  'use strict';
  var frame = document.getElementById('message-preview');
  var source = document.getElementById('document');
  var note = document.getElementById('message-preview-note');
  if (!frame || !source || !note) return;
  var render = null;
  var count = 0;
  var timer = 0;
  var guard = function (fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        return undefined;
      }
    };
  };
  // What the server hands the renderer for a delivery (server/messenger_messages.py, for_browser), from the
  // document as written.
  function delivery(doc) {
    var c = doc.content || {};
    count += 1;
    return { id: 'preview-' + count, key: String(doc.key || 'preview'), kind: doc.kind, text: c.text,
             title: c.title, body: c.body, image_url: c.image_url, button: c.button, banner: doc.banner || {},
             from: (doc.chat || {}).from };
  }
  function draw() {
    if (!render) return;
    var doc;
    try {
      doc = JSON.parse(source.value);
    } catch (e) {
      note.textContent = 'The document is not valid JSON: the preview shows the last valid one.';
      return;
    }
    if (!doc || typeof doc !== 'object') return;
    note.textContent = '';
    var back = document.activeElement;
    render(false);
    render([delivery(doc)]);
    // A post takes the focus when it shows: not away from the teammate typing.
    if (back && back !== document.activeElement && back.focus) back.focus();
  }
  // messages.js hands its renderer over as it does to the shim: Intercom('_messages', install).
  window.Intercom = function (command, install) {
    if (command !== '_messages') return;
    render = install({ base: '', app: '', session: function () { return ''; }, guard: guard,
                       open: function () {}, left: function () { return false; }, into: frame });
    draw();
  };
  source.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(draw, 250);
  });
})();
