// 安全审计: pick servers as on the dashboard (category -> application ->
// servers), press 开始监视, and each shell command they report arrives
// over server-sent events, newest on top. Everything from the server is
// inserted with textContent, never as HTML.
(function () {
  'use strict';
  var T = window.OMS_T;

  var $ = function (id) { return document.getElementById(id); };
  var funSel = $('fun-categ'), appSel = $('app-categ'), srvSel = $('servers');
  var watchBtn = $('watch'), clearBtn = $('clear'), pane = $('audit-stream'), statusEl = $('watch-status');
  if (!watchBtn) { return; }

  var maxRows = 1000; // the pane keeps the newest rows only
  var source = null;

  function setStatus(state, text) {
    statusEl.setAttribute('data-state', state);
    statusEl.textContent = text;
    statusEl.className = state === 'error' || state === 'lost' ? 'error' : '';
  }

  function getJSON(url) {
    return fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } }).then(function (resp) {
      return resp.json().catch(function () { return null; }).then(function (data) {
        if (!resp.ok) {
          if (resp.status === 401) { throw new Error(T('js.session_ended')); }
          throw new Error((data && data.error) || ('HTTP ' + resp.status));
        }
        return data;
      });
    });
  }

  function fill(sel, items, placeholder, valueOf, textOf) {
    while (sel.firstChild) { sel.removeChild(sel.firstChild); }
    if (placeholder !== null) {
      var p = document.createElement('option');
      p.value = ''; p.textContent = placeholder;
      sel.appendChild(p);
    }
    items.forEach(function (it) {
      var o = document.createElement('option');
      o.value = String(valueOf(it)); o.textContent = textOf(it);
      sel.appendChild(o);
    });
  }

  funSel.addEventListener('change', function () {
    fill(srvSel, [], null);
    fill(appSel, [], T('dash.choose_app'));
    if (!funSel.value) { return; }
    getJSON('/api/v1/app-categs?limit=500&fun_id=' + encodeURIComponent(funSel.value)).then(function (page) {
      fill(appSel, (page && page.app_categs) || [], T('dash.choose_app'), function (a) { return a.id; }, function (a) { return a.name; });
    }).catch(function (e) { setStatus('error', e.message); });
  });

  appSel.addEventListener('change', function () {
    fill(srvSel, [], null);
    if (!appSel.value) { return; }
    getJSON('/api/v1/servers?limit=500&app_id=' + encodeURIComponent(appSel.value)).then(function (page) {
      fill(srvSel, (page && page.servers) || [], null, function (s) { return s.ip; }, function (s) { return s.name ? s.ip + ' (' + s.name + ')' : s.ip; });
    }).catch(function (e) { setStatus('error', e.message); });
  });

  function span(cls, text) {
    var s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function addRow(r) {
    var row = document.createElement('div');
    row.className = 'audit-row';
    row.setAttribute('data-id', String(r.id));
    row.appendChild(span('ip', r.ip));
    row.appendChild(span('user', r.user));
    row.appendChild(span('at', r.at));
    row.appendChild(span('hash', '#'));
    row.appendChild(span('command', r.command));
    pane.insertBefore(row, pane.firstChild);
    while (pane.childNodes.length > maxRows) { pane.removeChild(pane.lastChild); }
  }

  function hostsChosen() {
    return Array.prototype.map.call(srvSel.selectedOptions, function (o) { return o.value; }).filter(function (v) { return v; });
  }

  function stop() {
    if (source) { source.close(); source = null; }
    watchBtn.textContent = T('omaudit.start');
    watchBtn.setAttribute('data-watching', 'false');
    setStatus('idle', T('omaudit.idle'));
  }

  function start() {
    var hosts = hostsChosen();
    source = new EventSource('/api/v1/omaudit/events?hosts=' + encodeURIComponent(hosts.join(',')));
    watchBtn.textContent = T('omaudit.stop');
    watchBtn.setAttribute('data-watching', 'true');
    var scope = hosts.length ? T('omaudit.watching', { Count: hosts.length }) : T('omaudit.watching_all');
    setStatus('connecting', T('omaudit.connecting'));
    source.addEventListener('open', function () { setStatus('watching', scope); });
    source.addEventListener('row', function (ev) { addRow(JSON.parse(ev.data)); });
    source.addEventListener('error', function () {
      if (!source) { return; }
      if (source.readyState === EventSource.CLOSED) {
        setStatus('lost', T('omaudit.lost'));
        source = null;
        watchBtn.textContent = T('omaudit.start');
        watchBtn.setAttribute('data-watching', 'false');
        return;
      }
      setStatus('reconnecting', T('omaudit.reconnecting'));
    });
  }

  watchBtn.addEventListener('click', function () {
    if (source) { stop(); } else { start(); }
  });
  clearBtn.addEventListener('click', function () {
    while (pane.firstChild) { pane.removeChild(pane.firstChild); }
  });

  getJSON('/api/v1/fun-categs?limit=500').then(function (page) {
    fill(funSel, (page && page.fun_categs) || [], T('dash.choose_fun'), function (c) { return c.id; }, function (c) { return c.name; });
    setStatus('idle', T('omaudit.idle'));
  }).catch(function (e) { setStatus('error', e.message); });
})();
