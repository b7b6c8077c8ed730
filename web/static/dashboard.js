// OMServer dashboard: category -> application -> servers -> module -> params
// -> Run, then the output pane fills per host from server-sent events.
// Everything from the server is inserted with textContent, never as HTML,
// except a module's caption_html, which the server sanitised
// (internal/caption) to a small formatting subset.
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var funSel = $('fun-categ'), appSel = $('app-categ'), srvSel = $('servers');
  var modSel = $('module'), caption = $('module-caption'), form = $('param-form');
  var runBtn = $('run'), cancelBtn = $('cancel'), output = $('output');
  var statusEl = $('run-status'), showHost = $('show-hostname');
  if (!funSel) { return; }

  var servers = [];   // servers of the chosen application
  var serversLoaded = false; // servers holds a loaded application's list
  var modules = {};   // module id -> module
  var current = null; // {id, source, hosts}

  function api(method, url, body) {
    var opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!resp.ok) {
          var msg = (data && data.error) ? data.error : ('HTTP ' + resp.status);
          if (resp.status === 401) { msg = 'your session has ended: reload the page and log in again'; }
          throw new Error(msg);
        }
        return data;
      });
    });
  }

  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? 'error' : '';
    statusEl.setAttribute('data-state', isError ? 'error' : text.split(' ')[0]);
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

  function serverText(s) {
    if (showHost.checked) { return s.name || s.ip; }
    return s.name ? s.ip + ' (' + s.name + ')' : s.ip;
  }

  function renderServers() {
    var chosen = {};
    Array.prototype.forEach.call(srvSel.selectedOptions, function (o) { chosen[o.value] = true; });
    fill(srvSel, servers, null, function (s) { return s.ip; }, serverText);
    Array.prototype.forEach.call(srvSel.options, function (o) { o.selected = !!chosen[o.value]; });
    if (serversLoaded && servers.length === 0) {
      var none = document.createElement('option');
      none.disabled = true; none.value = '';
      none.textContent = '(no servers in this application: add them on the Inventory page)';
      srvSel.appendChild(none);
    }
  }

  function loadFun() {
    return api('GET', '/api/v1/fun-categs?limit=500').then(function (page) {
      fill(funSel, (page && page.fun_categs) || [], '<-请选择功能类别->', function (c) { return c.id; }, function (c) { return c.name; });
    });
  }

  funSel.addEventListener('change', function () {
    servers = []; serversLoaded = false; renderServers();
    fill(appSel, [], '<-请选择应用类别->', null, null);
    if (!funSel.value) { return; }
    api('GET', '/api/v1/app-categs?limit=500&fun_id=' + encodeURIComponent(funSel.value)).then(function (page) {
      var apps = (page && page.app_categs) || [];
      fill(appSel, apps, apps.length ? '<-请选择应用类别->' : '(no applications in this category)',
        function (a) { return a.id; }, function (a) { return a.name; });
    }).catch(function (e) { setStatus(e.message, true); });
  });

  appSel.addEventListener('change', function () {
    servers = []; serversLoaded = false; renderServers();
    if (!appSel.value) { return; }
    api('GET', '/api/v1/servers?limit=500&app_id=' + encodeURIComponent(appSel.value)).then(function (page) {
      servers = (page && page.servers) || []; serversLoaded = true; renderServers();
    }).catch(function (e) { setStatus(e.message, true); });
  });

  showHost.addEventListener('change', renderServers);

  function loadModules() {
    return api('GET', '/api/v1/modules').then(function (list) {
      modules = {};
      (list || []).forEach(function (m) { modules[m.id] = m; });
      fill(modSel, list || [], '请选择功能模块...', function (m) { return m.id; }, function (m) { return m.id + ' ' + m.name; });
    });
  }

  function renderParams(m) {
    while (form.firstChild) { form.removeChild(form.firstChild); }
    caption.innerHTML = m ? (m.caption_html || '') : '';
    if (!m) { return; }
    (m.params || []).forEach(function (p) {
      var label = document.createElement('label');
      label.textContent = p.label || p.name;
      label.htmlFor = 'param-' + p.name;
      form.appendChild(label);
      var input;
      if (p.type === 'select') {
        input = document.createElement('select');
        (p.options || []).forEach(function (opt) {
          var o = document.createElement('option');
          o.value = opt.value; o.textContent = opt.label || opt.value;
          if (opt.value === p.default) { o.selected = true; }
          input.appendChild(o);
        });
      } else {
        input = document.createElement('input');
        input.type = p.type === 'number' ? 'number' : 'text';
        if (p.max_length) { input.maxLength = p.max_length; }
        if (p.type === 'number') {
          if (p.min !== undefined && p.min !== null) { input.min = p.min; }
          if (p.max !== undefined && p.max !== null) { input.max = p.max; }
        }
        input.value = p.default || '';
      }
      input.name = p.name; input.id = 'param-' + p.name;
      form.appendChild(input);
    });
  }

  modSel.addEventListener('change', function () { renderParams(modules[modSel.value]); });
  form.addEventListener('submit', function (ev) { ev.preventDefault(); });

  function finish(end) {
    if (!current) { return; }
    setStatus(end.status + (end.error ? ': ' + end.error : '') + ' (' + window.OMS.summary(output) + ')',
      end.status === 'failed' || end.status === 'interrupted');
    statusEl.setAttribute('data-state', end.status);
    runBtn.disabled = false; cancelBtn.disabled = true;
    current = null;
  }

  runBtn.addEventListener('click', function () {
    var mod = modSel.value;
    var hosts = Array.prototype.map.call(srvSel.selectedOptions, function (o) { return o.value; });
    if (!mod) { setStatus('choose a module first', true); return; }
    if (hosts.length === 0) { setStatus('choose at least one server', true); return; }
    var params = {};
    Array.prototype.forEach.call(form.elements, function (el) { if (el.name) { params[el.name] = el.value; } });
    runBtn.disabled = true;
    while (output.firstChild) { output.removeChild(output.firstChild); }
    setStatus('starting…', false);
    api('POST', '/api/v1/runs', { module_id: parseInt(mod, 10), hosts: hosts, params: params }).then(function (res) {
      current = { id: res.run_id, source: null };
      output.setAttribute('data-run-id', res.run_id);
      var link = $('run-link');
      link.href = '/runs/' + encodeURIComponent(res.run_id);
      link.hidden = false;
      hosts.forEach(function (ip) {
        var s = servers.filter(function (x) { return x.ip === ip; })[0];
        window.OMS.pending(output, ip, s ? s.name : '');
      });
      setStatus('running', false);
      cancelBtn.disabled = false;
      current.source = window.OMS.follow(output, res.run_id, finish, function (state, msg) {
        if (!current || current.id !== res.run_id) { return; }
        if (state === 'live') { setStatus('running', false); return; }
        setStatus(msg, true);
        statusEl.setAttribute('data-state', state);
        if (state === 'lost') {
          // Nothing more will arrive here: let the operator go on.
          runBtn.disabled = false; cancelBtn.disabled = true;
          current = null;
        }
      });
    }).catch(function (e) {
      runBtn.disabled = false;
      setStatus(e.message, true);
    });
  });

  cancelBtn.addEventListener('click', function () {
    if (!current) { return; }
    var runID = current.id;
    cancelBtn.disabled = true;
    api('POST', '/api/v1/runs/' + encodeURIComponent(runID) + '/cancel').then(function () {
      // The run may have ended (and said so) before this answer came.
      if (current && current.id === runID) { setStatus('cancelling…', false); }
    }).catch(function (e) {
      if (current && current.id === runID) { setStatus(e.message, true); }
    });
  });

  cancelBtn.disabled = true;
  Promise.all([loadFun(), loadModules()]).then(function () {
    setStatus('idle', false);
  }).catch(function (e) { setStatus(e.message, true); });
})();
