// The output pane of a run, shared by the dashboard and the run page.
//
// Hosts with identical results (status, exit code, error, output) form one
// group: "37 hosts · ok" with the output shown once, then its hosts by
// address (numerically). The smallest groups — the outliers — come first.
// While the run goes on, hosts that print show their lines as they arrive
// (group "running"), the others wait (group "waiting").
//
// Every event costs O(log n) work (a binary search in one group and one DOM
// insertion); counts, progress and group order are redrawn at most once a
// frame. Nothing is ever rescanned per event. Events from the stream are
// queued and applied in slices of a few milliseconds, so a burst of
// thousands of results never blocks the page: a 5,000-host run stays
// responsive (see BenchmarkDashboard5000Hosts). Everything from the server
// is inserted as text, never HTML.
(function () {
  'use strict';
  var T = window.OMS_T;

  // Display order of statuses: failures first, success last.
  var ORDER = ['failed', 'timeout', 'unreachable', 'cancelled', 'skipped', 'noresult', 'running', 'pending', 'ok'];
  var RANK = {};
  ORDER.forEach(function (s, i) { RANK[s] = i; });
  // A host's live lines kept in the page (the stored output has its own cap).
  var LIVE_CAP = 64 * 1024;
  // Host lists longer than this start collapsed.
  var OPEN_MAX = 10;
  // Time slice for applying queued events before yielding to the page.
  var SLICE_MS = 8;

  // ipKey makes addresses sort numerically as strings: IPv4 as four
  // zero-padded octets, IPv6 as eight zero-padded groups (after IPv4),
  // anything else after both, as text.
  function ipKey(ip) {
    var m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
    if (m) {
      return '4' + [m[1], m[2], m[3], m[4]].map(function (o) { return ('00' + o).slice(-3); }).join('.');
    }
    if (ip.indexOf(':') >= 0 && /^[0-9a-fA-F:]+$/.test(ip)) {
      var parts = ip.split('::');
      var head = parts[0] ? parts[0].split(':') : [];
      var tail = parts.length > 1 && parts[1] ? parts[1].split(':') : [];
      var fill = [];
      for (var i = head.length + tail.length; i < 8; i++) { fill.push('0'); }
      return '6' + head.concat(fill, tail).map(function (g) { return ('0000' + g.toLowerCase()).slice(-4); }).join(':');
    }
    return '9' + ip;
  }

  // bisect returns where key goes in the sorted array keys.
  function bisect(keys, key) {
    var lo = 0, hi = keys.length;
    while (lo < hi) {
      var mid = (lo + hi) >>> 1;
      if (keys[mid] < key) { lo = mid + 1; } else { hi = mid; }
    }
    return lo;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function stateText(status) { return T('hoststate.' + status); }

  // summaryText lists counts in display order: "1 failed, 2 ok".
  function summaryText(counts) {
    return ORDER.filter(function (s) { return counts[s] > 0; }).map(function (s) {
      return T('summary.item', { Count: counts[s], State: stateText(s) });
    }).join(', ');
  }

  // View is one run's pane. parts: {output, progress, progressText, summary}.
  function View(parts) {
    this.p = parts;
    this.hosts = new Map();   // ip -> host
    this.groups = new Map();  // key -> group
    this.order = [];          // groups in their current DOM order
    this.counts = {};
    this.total = 0;
    this.finished = 0;
    this.started = false;
    this.ended = false;
    this.dirty = false;
  }

  View.prototype.group = function (key, status, r) {
    var g = this.groups.get(key);
    if (g) { return g; }
    g = { key: key, status: status, keys: [], els: [], userToggled: false };
    g.el = el('div', 'group status-' + status);
    g.el.setAttribute('data-status', status);
    g.head = el('div', 'group-head');
    g.el.appendChild(g.head);
    if (r) {
      g.exit = r.exit_code;
      g.error = r.error || '';
      if (r.stdout) { g.el.appendChild(el('pre', 'stdout', r.stdout + (r.stdout_truncated ? '\n' + T('run.truncated') : ''))); }
      if (r.stderr) { g.el.appendChild(el('pre', 'stderr', r.stderr + (r.stderr_truncated ? '\n' + T('run.truncated') : ''))); }
    }
    g.list = el('details', 'group-hosts');
    g.list.open = true;
    g.listHead = el('summary');
    g.list.appendChild(g.listHead);
    g.listHead.addEventListener('click', function () { g.userToggled = true; });
    g.el.appendChild(g.list);
    this.groups.set(key, g);
    this.order.push(g);
    this.p.output.appendChild(g.el);
    return g;
  };

  // place puts a host's element into group g at its address's position.
  View.prototype.place = function (h, g) {
    if (h.group === g) { return; }
    this.unplace(h);
    g.el.hidden = false;
    var i = bisect(g.keys, h.key);
    g.keys.splice(i, 0, h.key);
    g.els.splice(i, 0, h.el);
    g.list.insertBefore(h.el, i + 1 < g.els.length ? g.els[i + 1] : null);
    h.group = g;
    this.touch();
  };

  View.prototype.unplace = function (h) {
    var g = h.group;
    if (!g) { return; }
    var i = bisect(g.keys, h.key);
    if (g.els[i] !== h.el) { i = g.els.indexOf(h.el); } // equal keys (one address written two ways)
    if (i >= 0) {
      g.keys.splice(i, 1);
      g.els.splice(i, 1);
    }
    h.el.remove();
    h.group = null;
    if (g.keys.length === 0) {
      if (g.keep && !this.ended) { g.el.hidden = true; return; } // reused: hosts keep starting to print
      this.groups.delete(g.key);
      g.el.remove();
      this.order.splice(this.order.indexOf(g), 1);
    }
  };

  View.prototype.setStatus = function (h, status) {
    if (h.status) { this.counts[h.status]--; }
    h.status = status;
    this.counts[status] = (this.counts[status] || 0) + 1;
    h.el.className = 'host-result status-' + status;
    h.el.setAttribute('data-status', status);
  };

  // start shows every host of the run as waiting; later calls (a stream
  // that reconnected) change nothing.
  View.prototype.start = function (run) {
    if (this.started) { return; }
    this.started = true;
    var list = (run.hosts || []).map(function (x) { return { ip: x.ip, name: x.name || '', key: ipKey(x.ip) }; });
    list.sort(function (a, b) { return a.key < b.key ? -1 : a.key > b.key ? 1 : 0; });
    this.total = list.length;
    var g = this.group('pending', 'pending');
    g.keep = true;
    g.list.open = list.length <= OPEN_MAX; // a long closed list costs no layout
    var frag = document.createDocumentFragment();
    for (var i = 0; i < list.length; i++) {
      var h = list[i];
      if (this.hosts.has(h.ip)) { continue; }
      h.el = el('div');
      h.el.setAttribute('data-host', h.ip);
      h.head = el('span', 'host-head', h.ip + (h.name ? ' (' + h.name + ')' : ''));
      h.el.appendChild(h.head);
      this.setStatus(h, 'pending');
      this.hosts.set(h.ip, h);
      g.keys.push(h.key);
      g.els.push(h.el);
      h.group = g;
      frag.appendChild(h.el);
    }
    g.list.appendChild(frag);
    this.touch();
  };

  // output appends a chunk of a host's output as it was printed.
  View.prototype.output = function (o) {
    var h = o && o.host && this.hosts.get(o.host.ip);
    if (!h || h.done) { return; }
    if (h.status === 'pending') {
      this.setStatus(h, 'running');
      var g = this.group('running', 'running');
      g.keep = true;
      this.place(h, g);
    }
    if (!h.live) {
      h.live = el('pre', 'live');
      h.liveBytes = 0;
      h.el.appendChild(h.live);
    }
    if (h.liveBytes >= LIVE_CAP) { return; }
    var data = String(o.data || '');
    if (h.liveBytes + data.length > LIVE_CAP) {
      data = data.slice(0, LIVE_CAP - h.liveBytes) + '\n' + T('run.live_truncated');
    }
    h.liveBytes += data.length;
    var span = o.stream === 'stderr' ? el('span', 'stderr', data) : document.createTextNode(data);
    h.live.appendChild(span);
  };

  // result closes a host: its element moves to the group of identical
  // results. A second result for a host is ignored.
  View.prototype.result = function (r) {
    var h = r && r.host && this.hosts.get(r.host.ip);
    if (!h || h.done) { return; }
    h.done = true;
    this.finished++;
    if (h.live) { h.live.remove(); h.live = null; }
    var status = r.status;
    var key = [status, r.exit_code, r.error || '', r.stdout || '', r.stderr || '', !!r.stdout_truncated, !!r.stderr_truncated].join('\u0000');
    this.setStatus(h, status);
    var head = h.ip + (h.name ? ' (' + h.name + ')' : '');
    if (r.duration_ns) { head += ' · ' + (r.duration_ns / 1e9).toFixed(2) + 's'; }
    h.head.textContent = head;
    this.place(h, this.group('r' + key, status, r));
  };

  // done marks the hosts still waiting or printing as without a result.
  View.prototype.done = function () {
    if (this.ended) { return; }
    this.ended = true;
    if (this.p.rollout) { this.p.rollout.hidden = true; }
    var self = this;
    var left = [];
    ['running', 'pending'].forEach(function (k) {
      var g = self.groups.get(k);
      if (g) { left = left.concat(g.els.slice()); }
    });
    left.forEach(function (e) {
      var h = self.hosts.get(e.getAttribute('data-host'));
      if (h.live) { h.live.remove(); h.live = null; }
      self.setStatus(h, 'noresult');
      self.place(h, self.group('noresult', 'noresult'));
    });
    ['running', 'pending'].forEach(function (k) {
      var g = self.groups.get(k);
      if (g && g.keys.length === 0) {
        self.groups.delete(k);
        g.el.remove();
        self.order.splice(self.order.indexOf(g), 1);
      }
    });
    this.redraw();
  };

  View.prototype.touch = function () {
    if (this.dirty) { return; }
    this.dirty = true;
    var self = this;
    window.requestAnimationFrame(function () { self.redraw(); });
  };

  // redraw updates what depends on all hosts: group heads and order,
  // progress, per-status counts.
  View.prototype.redraw = function () {
    this.dirty = false;
    var order = this.order.slice();
    order.sort(function (a, b) {
      return (a.keys.length - b.keys.length) || (RANK[a.status] - RANK[b.status]) || (a.keys[0] < b.keys[0] ? -1 : 1);
    });
    for (var i = 0; i < order.length; i++) {
      var g = order[i], n = g.keys.length;
      var head = T('group.hosts', { Count: n }) + ' · ' + stateText(g.status);
      if (typeof g.exit === 'number' && g.exit >= 0) { head += ' · exit ' + g.exit; }
      if (g.error) { head += ' · ' + g.error; }
      if (g.head.textContent !== head) { g.head.textContent = head; }
      var lh = T('group.show_hosts', { Count: n });
      if (g.listHead.textContent !== lh) { g.listHead.textContent = lh; }
      g.el.setAttribute('data-count', String(n));
      if (!g.userToggled) {
        var open = n <= OPEN_MAX || g.status === 'running';
        if (g.list.open !== open) { g.list.open = open; }
      }
      var prev = i === 0 ? null : order[i - 1].el;
      if (g.el.previousElementSibling !== prev) {
        // Out of place: put it right after its predecessor.
        this.p.output.insertBefore(g.el, prev ? prev.nextSibling : this.p.output.firstChild);
      }
    }
    this.order = order;
    var p = this.p;
    if (p.progress) {
      p.progress.max = Math.max(this.total, 1);
      p.progress.value = this.finished;
      if (p.progressWrap) { p.progressWrap.hidden = false; }
    }
    if (p.progressText) { p.progressText.textContent = T('run.progress', { Done: this.finished, Count: this.total }); }
    if (p.summary) {
      var frag = document.createDocumentFragment();
      var counts = this.counts;
      ORDER.forEach(function (s) {
        if (counts[s] > 0) {
          var c = el('span', 'count status-' + s, stateText(s) + ' ' + counts[s]);
          c.setAttribute('data-status', s);
          frag.appendChild(c);
        }
      });
      while (p.summary.firstChild) { p.summary.removeChild(p.summary.firstChild); }
      p.summary.appendChild(frag);
    }
  };

  // batch shows where a rollout stands (parts.rollout): the batch that
  // runs, or the pause after the canary batch, with a Continue button
  // (parts.canContinue) when the pause waits for an operator.
  View.prototype.batch = function (b, runID) {
    var box = this.p.rollout;
    if (!box || this.ended) { return; }
    while (box.firstChild) { box.removeChild(box.firstChild); }
    var state = !b.paused ? 'running' : (b.confirm ? 'waiting' : 'paused');
    box.setAttribute('data-state', state);
    box.setAttribute('data-batch', b.index + '/' + b.count);
    var until = b.until ? new Date(b.until).toLocaleString(window.OMS_LANG || undefined) : '';
    var text = el('span', 'rollout-text', T('rollout.' + state, { Index: b.index, Count: b.count, Hosts: b.hosts, Until: until }));
    box.appendChild(text);
    if (state === 'waiting' && this.p.canContinue) {
      var btn = el('button', 'rollout-continue', T('rollout.continue'));
      btn.type = 'button';
      btn.id = 'rollout-continue';
      btn.addEventListener('click', function () {
        btn.disabled = true;
        text.textContent = T('rollout.continuing');
        window.OMS.api('POST', '/api/v1/runs/' + encodeURIComponent(runID) + '/continue').catch(function (e) {
          text.textContent = T('rollout.continue_refused') + ' ' + e.message;
          btn.disabled = false;
        });
      });
      box.appendChild(btn);
    }
    box.hidden = false;
  };

  View.prototype.summary = function () { return summaryText(this.counts); };

  View.prototype.clear = function () {
    while (this.p.output.firstChild) { this.p.output.removeChild(this.p.output.firstChild); }
    if (this.p.summary) { this.p.summary.textContent = ''; }
  };

  // follow streams a run's events into view; onDone gets the end. onState,
  // if given, hears 'reconnecting' (the stream broke and the browser
  // retries), 'live' (it is back) and 'lost' (the browser gave up).
  function follow(view, runID, onDone, onState) {
    var src = new EventSource('/api/v1/runs/' + encodeURIComponent(runID) + '/events');
    var broken = false, ended = false;
    var queue = [], head = 0, pumping = false;
    var tell = function (state, msg) { if (onState) { onState(state, msg); } };
    // apply handles one queued event; the stream's handlers only queue.
    var apply = function (kind, data) {
      var v = JSON.parse(data);
      switch (kind) {
        case 'run': view.start(v); break;
        case 'output': view.output(v); break;
        case 'result': view.result(v); break;
        case 'batch': view.batch(v, runID); break;
        case 'done': view.done(); onDone(v); break;
      }
    };
    var pump = function () {
      var t0 = performance.now();
      while (head < queue.length && performance.now() - t0 < SLICE_MS) {
        var item = queue[head];
        queue[head++] = null;
        apply(item[0], item[1]);
      }
      if (head < queue.length) {
        setTimeout(pump, 0); // yield: input and painting go first
        return;
      }
      queue = []; head = 0; pumping = false;
    };
    var push = function (kind) {
      return function (ev) {
        queue.push([kind, ev.data]);
        if (!pumping) { pumping = true; setTimeout(pump, 0); }
      };
    };
    ['run', 'output', 'result', 'batch'].forEach(function (k) { src.addEventListener(k, push(k)); });
    src.addEventListener('done', function (ev) {
      ended = true;
      src.close();
      push('done')(ev);
    });
    src.addEventListener('open', function () {
      if (broken) { broken = false; tell('live', ''); }
    });
    src.addEventListener('error', function () {
      if (ended) { return; }
      if (src.readyState === EventSource.CLOSED) {
        ended = true;
        tell('lost', T('js.stream_lost'));
        return;
      }
      broken = true;
      tell('reconnecting', T('js.reconnecting'));
    });
    return src;
  }

  // endText is a finished run's status line: "failed (2 failed, 1 ok)".
  function endText(end, view) {
    var s = T('runstate.' + end.status);
    if (end.error) { s += ': ' + end.error; }
    var sum = view.summary();
    return sum ? s + ' (' + sum + ')' : s;
  }

  window.OMS = window.OMS || {};
  window.OMS.View = View;
  window.OMS.follow = follow;
  window.OMS.endText = endText;
  window.OMS.ipKey = ipKey;
  window.OMS.api = function (method, url, body) {
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
          if (resp.status === 401) { msg = T('js.session_ended'); }
          throw new Error(msg);
        }
        return data;
      });
    });
  };
})();
