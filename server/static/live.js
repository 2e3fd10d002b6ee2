// The live view: reads /admin/live/stream (server-sent events) and puts each event at the top of the table.
// Text only (textContent): event names, metadata and contact names are never markup.
(function () {
  'use strict';
  var table = document.getElementById('live-table');
  if (!table || !window.EventSource) return;
  var rows = document.getElementById('live-rows');
  var state = document.getElementById('live-state');
  var MAX_ROWS = 500;

  function cell(row, text, href) {
    var td = document.createElement('td');
    if (href) {
      var a = document.createElement('a');
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function show(event) {
    var c = event.contact;
    var row = document.createElement('tr');
    row.className = 'live-row';
    row.setAttribute('data-event-id', event.id);
    var when = cell(row, new Date(event.created_at * 1000).toLocaleTimeString());
    when.title = new Date(event.created_at * 1000).toISOString();
    cell(row, event.event_name, '/admin/events/' + encodeURIComponent(event.event_name));
    cell(row, c.name || c.email || c.user_id || (c.role + ' ' + c.id.slice(0, 8)),
         '/admin/contacts/' + encodeURIComponent(c.id));
    var role = cell(row, '');
    var badge = document.createElement('span');
    badge.className = 'badge badge-' + c.role;
    badge.textContent = c.role;
    role.appendChild(badge);
    var md = Object.keys(event.metadata).slice(0, 4).map(function (k) {
      var v = event.metadata[k];
      return k + ': ' + (typeof v === 'object' && v !== null ? (v.value || v.url || JSON.stringify(v)) : v);
    });
    cell(row, md.join(' · ')).className = 'muted small';
    rows.insertBefore(row, rows.firstChild);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
  }

  var source = new EventSource(table.getAttribute('data-stream'));
  source.onopen = function () { state.textContent = 'live'; };
  source.onerror = function () { state.textContent = 'reconnecting…'; };
  source.onmessage = function (m) { show(JSON.parse(m.data)); };
})();
