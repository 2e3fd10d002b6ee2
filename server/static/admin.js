// Trailmark admin: small progressive enhancements. Every page works without this file.
(function () {
  'use strict';
  // Ask before destructive actions (archive, undo, convert).
  document.addEventListener('submit', function (e) {
    var button = e.submitter || e.target.querySelector('[data-confirm]');
    var text = button && button.getAttribute('data-confirm');
    if (text && !window.confirm(text)) e.preventDefault();
  });
  // The workspace picker switches on change; its button is only needed without JavaScript.
  document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
    select.addEventListener('change', function () { select.form.submit(); });
  });
  document.documentElement.classList.add('js');
})();
