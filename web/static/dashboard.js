// OMServer dashboard: function category -> application -> servers (or the
// whole application or category) -> module -> parameters -> Run. The
// server's dry run of the request is confirmed in a dialog, then the output
// pane fills per host from server-sent events (see hosts.js). Everything
// from the server is inserted with textContent, never as HTML, except a
// module's caption_html, which the server sanitised (internal/caption) to
// a small formatting subset.
(function () {
  'use strict';
  var T = window.OMS_T, api = window.OMS.api;
  var $ = function (id) { return document.getElementById(id); };
  var funSel = $('fun-categ'), appSel = $('app-categ'), srvSel = $('servers');
  var modSel = $('module'), caption = $('module-caption'), form = $('param-form');
  var runBtn = $('run'), cancelBtn = $('cancel'), output = $('output');
  var statusEl = $('run-status'), showHost = $('show-hostname');
  var search = $('server-search'), countEl = $('server-count');
  if (!funSel) { return; }
  var canRun = !runBtn.disabled;

  var servers = [];          // servers of the chosen application
  var serversLoaded = false; // servers holds a loaded application's list
  var modules = {};          // module id -> module
  var current = null;        // {id, source, view}
  var loadSeq = 0;           // the latest server list request (older answers are dropped)

  function setStatus(text, state) {
    statusEl.textContent = text;
    statusEl.className = state === 'error' || state === 'lost' ? 'error' : 'run-state-' + state;
    statusEl.setAttribute('data-state', state);
  }

  function fill(sel, items, placeholder, valueOf, textOf) {
    while (sel.firstChild) { sel.removeChild(sel.firstChild); }
    var frag = document.createDocumentFragment();
    if (placeholder !== null) {
      var p = document.createElement('option');
      p.value = ''; p.textContent = placeholder;
      frag.appendChild(p);
    }
    items.forEach(function (it) {
      var o = document.createElement('option');
      o.value = String(valueOf(it)); o.textContent = textOf(it);
      frag.appendChild(o);
    });
    sel.appendChild(frag);
  }

  function serverText(s) {
    if (showHost.checked) { return s.name || s.ip; }
    return s.name ? s.ip + ' (' + s.name + ')' : s.ip;
  }

  function targetMode() {
    var r = document.querySelector('input[name="target"]:checked');
    return r ? r.value : 'hosts';
  }

  function updateCount() {
    var mode = targetMode();
    $('host-picker').classList.toggle('disabled', mode !== 'hosts');
    srvSel.disabled = search.disabled = $('select-all').disabled = $('select-none').disabled = mode !== 'hosts';
    if (mode === 'app') {
      countEl.textContent = appSel.value ? T('dash.target_app_count', { Count: servers.length }) : '';
      return;
    }
    if (mode === 'fun') { countEl.textContent = ''; return; }
    countEl.textContent = serversLoaded ? T('dash.selected', { Count: srvSel.selectedOptions.length, Total: servers.length }) : '';
  }

  function renderServers() {
    var chosen = {};
    Array.prototype.forEach.call(srvSel.selectedOptions, function (o) { chosen[o.value] = true; });
    while (srvSel.firstChild) { srvSel.removeChild(srvSel.firstChild); }
    var frag = document.createDocumentFragment();
    servers.forEach(function (s) {
      var o = document.createElement('option');
      o.value = s.ip; o.textContent = serverText(s);
      if (chosen[s.ip]) { o.selected = true; }
      frag.appendChild(o);
    });
    if (serversLoaded && servers.length === 0) {
      var none = document.createElement('option');
      none.disabled = true; none.value = '';
      none.textContent = T('dash.no_servers');
      frag.appendChild(none);
    }
    srvSel.appendChild(frag);
    searched = false;
    applySearch();
  }

  // applySearch hides the servers that do not match the search words (all
  // of them, in the address, the name or the OS). Options are touched only
  // when their state changes: a 5,000-server list costs no relayout.
  var searched = false;
  function applySearch() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length === 0 && !searched) { updateCount(); return; }
    searched = words.length > 0;
    var byIP = {};
    servers.forEach(function (s) { byIP[s.ip] = s; });
    Array.prototype.forEach.call(srvSel.options, function (o) {
      var s = byIP[o.value];
      if (!s) { return; }
      var hay = (s.ip + ' ' + (s.name || '') + ' ' + (s.os || '')).toLowerCase();
      var hide = !words.every(function (w) { return hay.indexOf(w) >= 0; });
      if (o.hidden !== hide) { o.hidden = hide; }
    });
    updateCount();
  }

  // pages reads every item of a paged list (a plain array, or {<key>,
  // next}), following next up to max items.
  function pages(url, key, max) {
    var all = [];
    var page = function (u) {
      return api('GET', u).then(function (data) {
        var list = Array.isArray(data) ? data : ((data && data[key]) || []);
        all = all.concat(list);
        if (data && !Array.isArray(data) && data.next && all.length < max) { return page(data.next); }
        return all;
      });
    };
    return page(url);
  }

  function loadFun() {
    return pages('/api/v1/fun-categs?limit=500', 'fun_categs', 5000).then(function (list) {
      fill(funSel, list, T('dash.choose_fun'), function (c) { return c.id; }, function (c) { return c.name; });
    });
  }

  // loadServers reads every server of an application, following the
  // API's pages (a plain array, or {servers, next}).
  function loadServers(appID) {
    var seq = ++loadSeq;
    return pages('/api/v1/servers?limit=500&app_id=' + encodeURIComponent(appID), 'servers', 10000).then(function (list) {
      if (seq !== loadSeq) { return; } // another application was chosen meanwhile
      servers = list; serversLoaded = true; renderServers();
    });
  }

  funSel.addEventListener('change', function () {
    servers = []; serversLoaded = false; loadSeq++; renderServers();
    fill(appSel, [], T('dash.choose_app'), null, null);
    if (!funSel.value) { return; }
    pages('/api/v1/app-categs?limit=500&fun_id=' + encodeURIComponent(funSel.value), 'app_categs', 5000).then(function (apps) {
      fill(appSel, apps, apps.length ? T('dash.choose_app') : T('dash.no_apps'),
        function (a) { return a.id; }, function (a) { return a.name; });
    }).catch(function (e) { setStatus(e.message, 'error'); });
  });

  appSel.addEventListener('change', function () {
    servers = []; serversLoaded = false; loadSeq++; renderServers();
    if (!appSel.value) { return; }
    loadServers(appSel.value).catch(function (e) { setStatus(e.message, 'error'); });
  });

  showHost.addEventListener('change', renderServers);
  search.addEventListener('input', applySearch);
  srvSel.addEventListener('change', updateCount);
  $('target-mode').addEventListener('change', updateCount);
  $('select-all').addEventListener('click', function () {
    Array.prototype.forEach.call(srvSel.options, function (o) { if (!o.hidden && !o.disabled) { o.selected = true; } });
    updateCount();
  });
  $('select-none').addEventListener('click', function () {
    Array.prototype.forEach.call(srvSel.options, function (o) { o.selected = false; });
    updateCount();
  });

  function loadModules() {
    return api('GET', '/api/v1/modules?runnable=1').then(function (list) {
      modules = {};
      (list || []).forEach(function (m) { modules[m.id] = m; });
      fill(modSel, list || [], T('dash.choose_module'), function (m) { return m.id; }, function (m) { return m.id + ' ' + m.name; });
    });
  }

  // renderParams draws the module's form from its declared schema.
  function renderParams(m) {
    while (form.firstChild) { form.removeChild(form.firstChild); }
    caption.innerHTML = m ? (m.caption_html || '') : '';
    if (!m) { return; }
    (m.params || []).forEach(function (p) {
      var input, label = document.createElement('label');
      label.textContent = p.label || p.name;
      label.htmlFor = 'param-' + p.name;
      if (p.type === 'select') {
        input = document.createElement('select');
        (p.options || []).forEach(function (opt) {
          var o = document.createElement('option');
          o.value = opt.value; o.textContent = opt.label || opt.value;
          if (opt.value === p.default) { o.selected = true; }
          input.appendChild(o);
        });
      } else if (p.type === 'boolean') {
        input = document.createElement('input');
        input.type = 'checkbox';
        input.value = p.value || 'on';
        input.checked = p.default !== undefined && p.default !== '' && p.default === p.value;
      } else if (p.type === 'fixed') {
        input = document.createElement('input');
        input.type = 'hidden';
        input.value = p.value || '';
        label = null;
      } else if (p.type === 'text' && p.multiline) {
        input = document.createElement('textarea');
        input.rows = 3;
        if (p.max_length) { input.maxLength = p.max_length; }
        input.value = p.default || '';
      } else {
        input = document.createElement('input');
        input.type = p.type === 'number' ? 'number' : 'text';
        if (p.max_length) { input.maxLength = p.max_length; }
        if (p.type === 'number') {
          if (p.min !== undefined && p.min !== null) { input.min = p.min; }
          if (p.max !== undefined && p.max !== null) { input.max = p.max; }
        }
        if (p.pattern) { input.pattern = p.pattern; }
        input.value = p.default || '';
      }
      if (p.required) { input.required = true; }
      input.name = p.name; input.id = 'param-' + p.name;
      if (label) { form.appendChild(label); }
      form.appendChild(input);
    });
  }

  modSel.addEventListener('change', function () { renderParams(modules[modSel.value]); });

  function paramValues() {
    var params = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) { return; }
      if (el.type === 'checkbox') { params[el.name] = el.checked ? el.value : ''; return; }
      params[el.name] = el.value;
    });
    return params;
  }

  // request is what Run asks for, or a message saying what is missing.
  // rolloutRequest reads the optional rollout fields: null when none is
  // set, a message when one is not understood. The master narrows the
  // module's rollout with it, never widens it.
  function rolloutRequest() {
    var ro = {}, any = false, bad = null;
    var countOrPercent = function (id, countKey, percentKey, label) {
      var raw = $(id).value.trim();
      if (!raw) { return; }
      var m = /^([0-9]{1,5})(%?)$/.exec(raw);
      if (!m || parseInt(m[1], 10) < 1 || (m[2] && parseInt(m[1], 10) > 100)) {
        bad = bad || T('dash.ro_bad', { Field: label });
        return;
      }
      ro[m[2] ? percentKey : countKey] = parseInt(m[1], 10);
      any = true;
    };
    countOrPercent('ro-batch', 'batch_size', 'batch_percent', T('dash.ro_batch'));
    countOrPercent('ro-failures', 'max_failures', 'max_failure_percent', T('dash.ro_failures'));
    if (bad) { return bad; }
    if ($('ro-canary').checked) { ro.canary = true; any = true; }
    if ($('ro-confirm').checked) { ro.canary_confirm = true; any = true; }
    var wait = $('ro-wait').value.trim();
    if (wait) { ro.canary_wait = wait; any = true; } // the server checks the duration
    return any ? ro : null;
  }

  function request() {
    var mod = modSel.value;
    if (!mod) { return T('dash.need_module'); }
    var body = { module_id: parseInt(mod, 10), hosts: [], params: paramValues() };
    var ro = rolloutRequest();
    if (typeof ro === 'string') { return ro; }
    if (ro) { body.rollout = ro; }
    switch (targetMode()) {
      case 'app':
        if (!appSel.value) { return T('dash.need_app'); }
        body.app_ids = [parseInt(appSel.value, 10)];
        break;
      case 'fun':
        if (!funSel.value) { return T('dash.need_fun'); }
        body.fun_ids = [parseInt(funSel.value, 10)];
        break;
      default:
        body.hosts = Array.prototype.map.call(srvSel.selectedOptions, function (o) { return o.value; });
        if (body.hosts.length === 0) { return T('dash.need_server'); }
    }
    return body;
  }

  function finish(end) {
    if (!current) { return; }
    setStatus(window.OMS.endText(end, current.view), end.status);
    runBtn.disabled = !canRun; cancelBtn.disabled = true;
    current = null;
  }

  function start(body, plan, confirmed) {
    body.confirmed_hosts = confirmed;
    runBtn.disabled = true;
    setStatus(T('js.starting'), 'starting');
    api('POST', '/api/v1/runs', body).then(function (res) {
      var view = new window.OMS.View({ output: output, progress: $('progress'), progressWrap: $('run-progress'),
        progressText: $('progress-text'), summary: $('run-summary'), rollout: $('rollout'), canContinue: canRun });
      $('rollout').hidden = true;
      view.clear();
      current = { id: res.run_id, source: null, view: view };
      output.setAttribute('data-run-id', res.run_id);
      var link = $('run-link');
      link.href = '/runs/' + encodeURIComponent(res.run_id);
      link.hidden = false;
      view.start({ hosts: plan.hosts });
      setStatus(T('runstate.running'), 'running');
      cancelBtn.disabled = false;
      current.source = window.OMS.follow(view, res.run_id, finish, function (state, msg) {
        if (!current || current.id !== res.run_id) { return; }
        if (state === 'live') { setStatus(T('runstate.running'), 'running'); return; }
        setStatus(msg, state);
        if (state === 'lost') {
          // Nothing more will arrive here: let the operator go on.
          runBtn.disabled = !canRun; cancelBtn.disabled = true;
          current = null;
        }
      });
    }).catch(function (e) {
      runBtn.disabled = !canRun;
      setStatus(e.message, 'error');
    });
  }

  // ask dry-runs the request and, once confirmed, starts it.
  function ask() {
    if (runBtn.disabled) { return; }
    if (form.reportValidity && !form.reportValidity()) { return; }
    var body = request();
    if (typeof body === 'string') { setStatus(body, 'error'); return; }
    var dry = JSON.parse(JSON.stringify(body));
    dry.dry_run = true;
    runBtn.disabled = true;
    setStatus(T('js.checking'), 'checking');
    api('POST', '/api/v1/runs', dry).then(function (plan) {
      runBtn.disabled = !canRun;
      setStatus(T('js.confirm_pending'), 'confirm');
      window.OMS.confirmRun(plan, function (confirmed) { start(body, plan, confirmed); });
    }).catch(function (e) {
      runBtn.disabled = !canRun;
      setStatus(e.message, 'error');
    });
  }

  runBtn.addEventListener('click', ask);
  // Enter in a parameter field asks too (the dialog still confirms).
  form.addEventListener('submit', function (ev) { ev.preventDefault(); ask(); });
  form.addEventListener('keydown', function (ev) {
    // With several fields a form has no implicit submission: do it here.
    if (ev.key === 'Enter' && !ev.isComposing && (ev.target.tagName === 'SELECT' || ev.target.tagName === 'INPUT')) {
      ev.preventDefault();
      ask();
    }
  });
  $('confirm-dialog').addEventListener('close', function () {
    if (statusEl.getAttribute('data-state') === 'confirm') { setStatus(T('js.not_started'), 'idle'); }
  });

  cancelBtn.addEventListener('click', function () {
    if (!current) { return; }
    var runID = current.id;
    cancelBtn.disabled = true;
    api('POST', '/api/v1/runs/' + encodeURIComponent(runID) + '/cancel').then(function () {
      // The run may have ended (and said so) before this answer came.
      if (current && current.id === runID) { setStatus(T('js.cancelling'), 'cancelling'); }
    }).catch(function (e) {
      if (current && current.id === runID) { setStatus(e.message, 'error'); }
    });
  });

  cancelBtn.disabled = true;
  fill(appSel, [], T('dash.choose_app'), null, null);
  updateCount();
  Promise.all([loadFun(), loadModules()]).then(function () {
    setStatus(T('js.idle'), 'idle');
  }).catch(function (e) { setStatus(e.message, 'error'); });
})();
